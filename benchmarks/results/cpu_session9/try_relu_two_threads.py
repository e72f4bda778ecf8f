"""ReLU's forward and backward split over minirect's threads, against the step without.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \\
        python benchmarks/results/cpu_session9/try_relu_two_threads.py 22

Rounds alternate between the plain fast path (one thread) and the split one;
prints the median step of each and the ratio plain / split per round.
"""

import functools
import pathlib
import statistics
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))     # benchmarks/
import ab_fast_path  # noqa: E402  (time_steps: the median of a few steps)
import bench_step  # noqa: E402

from minirect.accel import rectifiers, threads  # noqa: E402
from minirect.functional import activations  # noqa: E402
from minirect.train import training_step  # noqa: E402

SMALL = 2**16           # arrays below this size stay on one thread
plain_forward, plain_backward = activations.ReLU.forward, rectifiers.ReLU.backward


def in_bands(n, part):
    threads.run_parallel([functools.partial(part, s, e) for s, e in threads.split(n, threads.workers())])


def split_backward(self, gy):
    (y,) = self.saved
    if gy.ndim < 2 or gy.size < SMALL:
        return gy * (y > 0)
    out = np.empty_like(gy)
    in_bands(gy.shape[0], lambda s, e: np.multiply(gy[s:e], y[s:e] > 0, out=out[s:e]))
    return out


def split_forward(self, x):
    if x.ndim < 2 or x.size < SMALL:
        return plain_forward(self, x)
    out = np.empty_like(x)
    in_bands(x.shape[0], lambda s, e: np.maximum(x[s:e], 0, out=out[s:e]))
    self.save_for_backward(out)
    return out


net = sys.argv[1] if len(sys.argv) > 1 else "22"
model, opt, x, y = bench_step.build_minirect(bench_step.NETS[net], "cpu")
step = training_step(model, opt)
for _ in range(2):
    step(x, y)
medians = {"plain": [], "split": []}
for _round in range(5):
    for case in ("plain", "split"):
        rectifiers.ReLU.backward = split_backward if case == "split" else plain_backward
        rectifiers.ReLU.forward = split_forward if case == "split" else plain_forward
        medians[case].append(ab_fast_path.time_steps(lambda: step(x, y), 5))
ratios = [a / b for a, b in zip(medians["plain"], medians["split"])]
print(net, {k: round(1e3 * statistics.median(v), 1) for k, v in medians.items()},
      "plain/split", round(statistics.median(ratios), 3), [round(r, 3) for r in ratios])
