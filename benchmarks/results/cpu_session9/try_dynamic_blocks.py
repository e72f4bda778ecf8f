"""Blocks handed out one chunk at a time, each chunk its own partial weight-gradient sum
(added in chunk order, so the result does not depend on which thread ran what), against
accel's static halves. A/B in the training step, alternating rounds.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \\
        python benchmarks/results/cpu_session9/try_dynamic_blocks.py 22 [CHUNKS_PER_WORKER]

CHUNKS_PER_WORKER 0 (the default): one chunk per block.
"""
import functools
import pathlib
import queue
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))     # benchmarks/
import ab_fast_path  # noqa: E402  (time_steps: the median of a few steps)
import bench_step  # noqa: E402

from minirect import backend  # noqa: E402
from minirect.accel import shifted_windows as sw, threads  # noqa: E402
from minirect.train import training_step  # noqa: E402

static_pass = sw.shifted_pass
PER_WORKER = int(sys.argv[2]) if len(sys.argv) > 2 else 0     # chunks per worker; 0: one per block


def dynamic_pass(a, kernel, padding, kernels=None, bias=None, partner=None):
    parts = threads.workers() if threads.applies(a) else 1
    if parts == 1:
        return static_pass(a, kernel, padding, kernels, bias, partner)
    xp = backend.get_array_module(a)
    out = None
    if kernels is not None:
        OH, OW = sw.ShiftedWindows.output_size(a, kernel, padding)
        out = xp.empty((a.shape[0], kernels.shape[0], OH, OW), dtype=a.dtype)
    first = sw.ShiftedWindows(a, kernel, padding, workers=parts)
    blocks = first.blocks
    n_chunks = len(blocks) if PER_WORKER == 0 else min(len(blocks), PER_WORKER * parts)
    chunks = threads.split(len(blocks), n_chunks)
    todo = queue.SimpleQueue()
    for i in range(len(chunks)):
        todo.put(i)
    partial_corrs = [None] * len(chunks)
    windows = [first] + [sw.ShiftedWindows(a, kernel, padding, workers=parts) for _ in range(parts - 1)]

    def worker(w):
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            s, e = chunks[i]
            partial_corrs[i] = sw._pass_blocks(w, blocks[s:e], a, kernels, bias, partner, out)
    threads.run_parallel([functools.partial(worker, w) for w in windows])
    corr = None
    if partner is not None:
        corr = partial_corrs[0]
        for c in partial_corrs[1:]:
            corr = corr + c
    return out, corr


net = sys.argv[1]
model, opt, x, y = bench_step.build_minirect(bench_step.NETS[net], "cpu")
step = training_step(model, opt)
for _ in range(2):
    step(x, y)
medians = {"static": [], "dynamic": []}
for _round in range(5):
    for case in ("static", "dynamic"):
        sw.shifted_pass = dynamic_pass if case == "dynamic" else static_pass
        medians[case].append(ab_fast_path.time_steps(lambda: step(x, y), 5))
sw.shifted_pass = static_pass
ratios = [a / b for a, b in zip(medians["static"], medians["dynamic"])]
print(f"net {net}, chunks per worker {PER_WORKER or 'one per block'}:",
      {k: round(1e3 * statistics.median(v), 1) for k, v in medians.items()},
      "static/dynamic", round(statistics.median(ratios), 3), [round(r, 3) for r in ratios])
