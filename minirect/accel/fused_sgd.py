"""SGD's momentum update as one fused GPU kernel.

Accelerates ``minirect.optim.SGD`` (Eq. 4 in plain array ops, the
definition): the same arithmetic, v ← μ v + ε (g + λ w); w ← w − v, but one
kernel launch per parameter instead of six. On a GPU each launch costs about
as much as a small tensor's arithmetic. tests/test_accel.py compares the two.
"""

from __future__ import annotations

from .. import backend
from ..backend import fast_paths_enabled as enabled

_kernel = None


def applies(w) -> bool:
    """The fused kernel runs for CuPy arrays, with the fast paths on."""
    return enabled() and backend.is_cupy_array(w)


def momentum_step(w, g, v, lr: float, momentum: float, weight_decay: float) -> None:
    """v ← μ v + ε (g + λ w); w ← w − v, in place, in one CuPy kernel."""
    scalar = w.dtype.type
    _momentum_kernel(backend.get_array_module(w))(g, scalar(lr), scalar(momentum), scalar(weight_decay), w, v)


def _momentum_kernel(cupy):
    """The CuPy kernel, compiled once, on first use."""
    global _kernel
    if _kernel is None:
        _kernel = cupy.ElementwiseKernel(
            "T g, T lr, T mu, T wd", "T w, T v",
            "v = mu * v + lr * (g + wd * w); w -= v;",
            "minirect_momentum_step")
    return _kernel
