"""Dropout's uniform numbers computed in GPU memory from a (seed, counter) pair.

Accelerates ``backend.random_uniform`` (the definition: numbers from the
shared NumPy generator, copied to the device). Here each call hashes
(seed, counter, element index) into a number and then adds 1 to the
counter, both as GPU kernels: nothing crosses the bus, and a training step
recorded as a CUDA graph (``cuda_graphs``) draws fresh numbers on every
replay, because the counter it reads is advanced inside the graph. The
numbers differ from the host generator's; their distribution is the same
(tests/test_graphs.py checks it on a GPU).
"""

from __future__ import annotations

from .. import backend
from ..backend import fast_paths_enabled as enabled

_state = None           # CuPy uint64 [seed, counter], after the first draw
_seeded_from = None     # the host generator the seed was drawn from
_kernel = None


def applies(like) -> bool:
    """Drawn here for CuPy arrays, with the fast paths on."""
    return enabled() and backend.is_cupy_array(like)


def _reseed_pending() -> bool:
    """True after ``minirect.seed`` (which makes a new host generator)."""
    return _seeded_from is not backend.generator()


def uniform(shape):
    """U[0, 1) float32 samples of ``shape`` on the current GPU."""
    global _state, _seeded_from
    cupy = backend.module_for("cuda")
    if _reseed_pending():
        state = cupy.asarray([int(backend.generator().integers(2**63)), 0], dtype=cupy.uint64)
        if _state is None:
            _state = state
        else:       # in place: a recorded CUDA graph goes on reading this very array
            _state[...] = state
        _seeded_from = backend.generator()
    out = cupy.empty(shape, dtype=cupy.float32)
    _uniform_kernel(cupy)(_state, out)
    _state[1:] += 1
    return out


def state_key():
    """What a recorded graph's random numbers depend on: the address of the
    state array, and whether a reseed is pending (``CapturedStep``)."""
    address = None if _state is None else _state.data.ptr
    return address, _reseed_pending()


def _uniform_kernel(cupy):
    """u = (top 24 bits of a hash of seed, counter, i) / 2^24, exact in float32."""
    global _kernel
    if _kernel is None:
        _kernel = cupy.ElementwiseKernel(
            "raw uint64 state", "float32 u",
            """
            unsigned long long z = state[0] + state[1] * 0xD1B54A32D192ED03ULL
                                   + (unsigned long long)i * 0x9E3779B97F4A7C15ULL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;      // splitmix64's finalizer
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            z = z ^ (z >> 31);
            u = (float)(z >> 40) * (1.0f / 16777216.0f);      // 24 bits: exact in float32, < 1
            """,
            "minirect_uniform")
    return _kernel
