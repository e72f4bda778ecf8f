import sys
sys.path.insert(0, "/work/main/benchmarks")
import bench_step, numpy as np
import minirect.functional as F
from minirect import autograd
for net in ("22", "30"):
    model, opt, x, y = bench_step.build_minirect(bench_step.NETS[net], "cpu")
    loss = F.softmax_cross_entropy(model(x), y)
    order = autograd._topological_order(loss.creator)
    saved, held = {}, {}
    for fn in order:
        for a in fn.saved or ():
            if isinstance(a, np.ndarray):
                base = a if a.base is None else a.base
                saved[id(base)] = base.nbytes
        for t in fn.inputs:
            if t.creator is not None:
                a = t.data; base = a if a.base is None else a.base
                held[id(base)] = base.nbytes
    only_held = sum(v for k, v in held.items() if k not in saved)
    print(f"net {net}: saved arrays {sum(saved.values())/2**20:.0f} MB, arrays held only as graph inputs {only_held/2**20:.0f} MB")
