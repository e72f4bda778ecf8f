"""Arrays a step's graph keeps alive at the end of the forward pass: those the
backward needs (saved by a function) and those held only as some function's
input tensor (a pre-activation whose ReLU saved its own output).

    python benchmarks/results/cpu_session9/graph_held_arrays.py
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))     # benchmarks/
import bench_step  # noqa: E402

import minirect.functional as F  # noqa: E402
from minirect import autograd  # noqa: E402


def base_of(array):
    return array if array.base is None else array.base


for net in ("22", "30"):
    model, opt, x, y = bench_step.build_minirect(bench_step.NETS[net], "cpu")
    loss = F.softmax_cross_entropy(model(x), y)
    saved, held = {}, {}
    for fn in autograd._topological_order(loss.creator):
        for array in fn.saved or ():
            if isinstance(array, np.ndarray):
                saved[id(base_of(array))] = base_of(array).nbytes
        for tensor in fn.inputs:
            if tensor.creator is not None:
                held[id(base_of(tensor.data))] = base_of(tensor.data).nbytes
    only_held = sum(size for key, size in held.items() if key not in saved)
    print(f"net {net}: saved arrays {sum(saved.values()) / 2**20:.0f} MB, "
          f"arrays held only as graph inputs {only_held / 2**20:.0f} MB")
