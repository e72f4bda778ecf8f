"""minirect.accel: the speed-only mechanisms, each beside the reference it replaces.

A student can skip this package. The code that defines every result is the
plain code in ``minirect/functional``, ``minirect/optim.py``,
``minirect/backend.py`` and ``minirect/train.py``; what lives here computes the
same numbers faster and is proven equal to the reference by
tests/test_accel.py. It plugs into the core from above: on import it
registers each path with the core's registry (``backend.register_fast_path``),
and the reference code asks for it by name in one dispatch line,
``backend.fast_path(name, ...)``. The core never imports this package.

    name           module              what it does                          (asked for by)
    conv2d         shifted_windows.py  stride-1 conv2d without im2col's copies  (functional.conv.Conv2d)
    max_pool2d     pooling.py          max pooling without stacked taps, its    (functional.max_pool2d)
                                       gradient as products with the masks
    spp_level      pooling.py          SPP as one gather, bins padded for       (functional.conv.spp)
                                       CUDA graphs, winners as small integers
    relu           rectifiers.py       ReLU's backward as gy · [y > 0]          (functional.relu)
    sgd_momentum   fused_sgd.py        SGD's update as one GPU kernel           (optim.SGD)
    uniform        gpu_random.py       dropout's numbers drawn in GPU memory    (functional.linear.Dropout)
    gpu_training   gpu_training.py     the GPU's training loop: losses read     (train.fit)
                                       in batches, the step replayed from a
                                       CUDA graph (captured_step.py, cuda_graphs.py, cublas.py)
    matmul         threads.py          every other CPU GEMM in bands on the     (backend.matmul)
                                       same threads, BLAS on one thread each
    (threads.py also shares the shifted-window blocks among CPU cores, for shifted_windows)

The switch: ``minirect.fast_paths(False)`` (a call, or ``with
minirect.fast_paths(False): ...``), or ``MINIRECT_FAST_PATHS=0`` in the
environment when minirect is imported. With it off every op runs the
reference code. ``report()`` lists the paths registered and those that ran.
Timings: docs/benchmarks.md.
"""

from __future__ import annotations

from .. import backend
from ..backend import fast_paths, fast_paths_enabled as enabled  # noqa: F401  (accel.enabled())
from . import fused_sgd, gpu_random, gpu_training, pooling, rectifiers, shifted_windows, threads

PATHS = {"conv2d": shifted_windows, "max_pool2d": pooling.MaxPool2d,
         "spp_level": pooling.SppLevel, "sgd_momentum": fused_sgd, "uniform": gpu_random,
         "gpu_training": gpu_training, "relu": rectifiers.ReLU, "matmul": threads.ParallelMatmul}
_ran = set()        # the names of the paths handed to the reference code (``used``)


def _other_library(arg) -> bool:
    """An array of neither NumPy nor CuPy (PyTorch, array_api_strict): the paths
    here are NumPy/CuPy code, so such arrays always run the reference."""
    return backend._library(backend.unwrap(arg)) not in ("numpy", "cupy")    # not an array: "numpy"


class _Counted:
    """A registered path: the path itself, which notes its name in ``_ran``
    each time it says it applies (so that ``report`` can tell what ran)."""

    def __init__(self, name, path):
        self.name, self.path = name, path

    def applies(self, *args) -> bool:
        if not any(map(_other_library, args)) and self.path.applies(*args):
            _ran.add(self.name)
            return True
        return False

    def __getattr__(self, attribute):          # conv2d, forward, apply, prepare, ...
        return getattr(self.path, attribute)


for _name, _path in PATHS.items():
    backend.register_fast_path(_name, _Counted(_name, _path))


def used(reset: bool = False) -> list[str]:
    """The names of the fast paths that ran (were handed to the reference code)
    since import or the last ``used(reset=True)``, sorted."""
    names = sorted(_ran)
    if reset:
        _ran.clear()
    return names


def report(reset: bool = False) -> str:
    """One line for a run's log: the switch, and which registered fast paths ran,
    e.g. ``fast paths: on; ran: conv2d, max_pool2d, spp_level (registered: ...)``."""
    ran = used(reset)
    state = "on" if enabled() else "off (MINIRECT_FAST_PATHS=0 or minirect.fast_paths(False))"
    return (f"fast paths: {state}; ran: {', '.join(ran) or 'none'} "
            f"(registered: {', '.join(sorted(backend.FAST_PATHS))})")
