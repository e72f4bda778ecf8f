import sys, time, statistics, functools
sys.path.insert(0, "/work/main/benchmarks")
import numpy as np
import bench_step
import minirect as mr
from minirect.accel import rectifiers, threads
from minirect.train import training_step

plain_bwd = rectifiers.ReLU.backward
def split_bwd(self, gy):
    (y,) = self.saved
    if gy.ndim < 2 or gy.shape[0] < 2 or gy.size < 2**16:
        return gy * (y > 0)
    out = np.empty_like(gy)
    def part(s, e):
        np.multiply(gy[s:e], y[s:e] > 0, out=out[s:e])
    threads.run_parallel([functools.partial(part, s, e) for s, e in threads.split(gy.shape[0], threads.workers())])
    return out
from minirect.functional import activations
plain_fwd = activations.ReLU.forward
def split_fwd(self, x):
    if x.ndim < 2 or x.shape[0] < 2 or x.size < 2**16:
        return plain_fwd(self, x)
    out = np.empty_like(x)
    def part(s, e):
        np.maximum(x[s:e], 0, out=out[s:e])
    threads.run_parallel([functools.partial(part, s, e) for s, e in threads.split(x.shape[0], threads.workers())])
    self.save_for_backward(out)
    return out
print(open("/work/main/minirect/functional/activations.py").read().split("class ReLU")[1][:900])
net = sys.argv[1]
model, opt, x, y = bench_step.build_minirect(bench_step.NETS[net], "cpu")
step = training_step(model, opt)
for _ in range(2): step(x, y)
res = {"plain": [], "split": []}
for r in range(5):
    for case in ("plain", "split"):
        rectifiers.ReLU.backward = split_bwd if case == "split" else plain_bwd
        rectifiers.ReLU.forward = split_fwd if case == "split" else plain_fwd
        ts = []
        for _ in range(5):
            s = time.perf_counter(); step(x, y); ts.append(time.perf_counter() - s)
        res[case].append(statistics.median(ts))
ratios = [a / b for a, b in zip(res["plain"], res["split"])]
print(net, {k: round(1e3 * statistics.median(v), 1) for k, v in res.items()}, "plain/split", round(statistics.median(ratios), 3), [round(r, 3) for r in ratios])
