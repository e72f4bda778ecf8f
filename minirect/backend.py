"""The backend layer: the only module in minirect that imports NumPy or CuPy.

Everything above this file asks *here* for the array module (``xp``) that owns
its arrays, so one piece of code runs on NumPy (CPU) and CuPy (GPU):

    xp = array_module(x, w)      # the standard's namespace of x and w, never a silent mix
    y = xp.maximum(x, 0)

The teaching core computes with the Python array API standard's functions
only, so it also runs on any conforming library (array_api_strict's fake
device in the tests, PyTorch through array-api-compat); docs/gpu.md, "The
array API".

What lives here:

* array-module lookup from arrays and tensors, with a ``TypeError`` naming the
  op and both array types when NumPy and CuPy arrays meet;
* devices: ``cuda_available()``, the default device switch ``use("cuda")`` and
  explicit moves (``to_device``, ``to_numpy``);
* the default dtype (float32) and the random generator behind ``seed`` (one per thread);
* ``matmul``, through which every GEMM goes (so that a recorded CUDA graph
  can route them to cuBLAS: ``minirect.accel``, the speed-only layer, which
  also gets its array module from here);
* the fast-path registry and its switch: ``minirect.accel`` registers its
  faster, equal mechanisms here by name; the reference code asks
  ``fast_path(name, ...)`` in one dispatch line and never imports accel.

CuPy is imported lazily, on first need, so ``import minirect`` never fails or
slows down on a machine without it.
"""

import contextlib
import importlib
import os
import threading

import array_api_compat
import numpy

DEFAULT_DTYPE = numpy.float32

GPU_INSTALL_HINT = (
    "Install the GPU extra with the CuPy wheel that matches your CUDA version, "
    "e.g. `pip install -e \".[gpu]\"` (CUDA 12: cupy-cuda12x, CUDA 13: "
    "cupy-cuda13x; see docs/gpu.md), and check that `nvidia-smi` sees a GPU."
)

_cupy_module = None        # the imported cupy module, once looked up
_cupy_checked = False      # whether we already tried to import it
_default_device = "cpu"


class _Random(threading.local):
    """One generator per thread, so runs in threads (a Dask worker's) draw as they would alone."""
    def __init__(self):
        self.generator = numpy.random.default_rng(0)


_random = _Random()


# ----------------------------------------------------------------------------
# CuPy, imported on demand
# ----------------------------------------------------------------------------

def _cupy():
    """Return the cupy module, or None when it cannot be imported."""
    global _cupy_module, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            _cupy_module = importlib.import_module("cupy")
        except Exception:  # ImportError, or a broken CUDA install
            _cupy_module = None
    return _cupy_module


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    cp = _cupy()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _require_cuda():
    if not cuda_available():
        reason = "CuPy is not installed" if _cupy() is None else "CuPy sees no CUDA device"
        raise RuntimeError(f"device 'cuda' was requested but {reason}. {GPU_INSTALL_HINT}")
    return _cupy()


# ----------------------------------------------------------------------------
# Array-module lookup
# ----------------------------------------------------------------------------

def unwrap(a):
    """The backend array behind a Tensor (or the object itself)."""
    return getattr(a, "data", a) if hasattr(a, "_is_minirect_tensor") else a


def is_cupy_array(a) -> bool:
    # Checked by module name so that we never import cupy just to ask.
    return type(a).__module__.startswith("cupy")


def _library(a) -> str:
    """'numpy', 'cupy', or the top module of another array library ('array_api_strict', 'torch')."""
    foreign = not isinstance(a, (numpy.ndarray, numpy.generic)) and array_api_compat.is_array_api_obj(a)
    return type(a).__module__.split(".")[0] if foreign or is_cupy_array(a) else "numpy"


def get_array_module(*arrays, op: str = "operation"):
    """Return ``numpy`` or ``cupy``: the module owning the given arrays (for
    another array library: its standard namespace, from array-api-compat).

    Tensors are unwrapped; Python scalars and ``None`` are ignored. Mixing NumPy
    and CuPy arrays raises a ``TypeError`` that names ``op`` and both types,
    because a silent copy between host and device is never what a user wants.
    """
    found = None
    for a in arrays:
        a = unwrap(a)
        if a is None or isinstance(a, (int, float, bool)):
            continue
        kind = _library(a)
        if found is None:
            found = (kind, a)
        elif kind != found[0]:
            raise TypeError(
                f"{op}: cannot mix a {type(found[1]).__module__}.{type(found[1]).__name__} "
                f"and a {type(a).__module__}.{type(a).__name__}; move both to one device "
                "first with .to('cpu') or .to('cuda')."
            )
    if found is None or found[0] in ("numpy", "cupy"):
        return _cupy() if found is not None and found[0] == "cupy" else numpy
    return array_api_compat.array_namespace(found[1])


def array_module(*arrays, op: str = "operation"):
    """The namespace the teaching core computes with, for the given arrays.

    Fast paths on: ``numpy`` or ``cupy`` (as ``get_array_module``). Off: the
    array API standard's namespace of the arrays (``array_api_compat.array_namespace``;
    for NumPy it wraps NumPy's own functions, so results are bit-identical).
    """
    xp = get_array_module(*arrays, op=op)
    if xp is numpy or xp is _cupy_module:
        return xp if _fast_on else importlib.import_module("array_api_compat." + xp.__name__)
    return xp


def device_of(array):
    """'cuda' for a CuPy array, 'cpu' for NumPy; another library's array: its device object."""
    array = unwrap(array)
    kind = _library(array)
    return {"cupy": "cuda", "numpy": "cpu"}.get(kind) or array_api_compat.device(array)


# ----------------------------------------------------------------------------
# Devices
# ----------------------------------------------------------------------------

def _check_device(device):
    if not isinstance(device, str):     # another library's device (array_api_strict.Device("device1"))
        return device
    device = device.lower()
    if device in ("cuda", "cuda:0", "gpu", "cpu"):
        return "cpu" if device == "cpu" else "cuda"
    if device.startswith("cuda:") and device[5:].isdigit():    # minirect uses one GPU: cuda:0
        raise ValueError(f"device {device!r}: minirect computes on one GPU, 'cuda' (= 'cuda:0'); to "
                         f"use GPU {device[5:]}, run with CUDA_VISIBLE_DEVICES={device[5:]}")
    raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")


def use(device: str) -> None:
    """Set the default device ('cpu' or 'cuda') for new tensors and parameters."""
    global _default_device
    device = _check_device(device)
    if device == "cuda":
        _require_cuda()
    _default_device = device


def default_device() -> str:
    return _default_device


@contextlib.contextmanager
def using(device: str):
    """Temporarily change the default device: ``with minirect.using('cuda'): ...``."""
    previous = _default_device
    use(device)
    try:
        yield
    finally:
        use(previous)


def module_for(device: str | None = None):
    """The array module for a device name (default: the current default)."""
    device = _check_device(device or _default_device)
    if not isinstance(device, str):     # another library's device: that library's module
        return importlib.import_module(type(device).__module__.split(".")[0])
    return _require_cuda() if device == "cuda" else numpy


def to_device(array, device):
    """Copy an array to 'cpu' (NumPy), 'cuda' (CuPy) or another library's device
    (through the host); no copy if already there."""
    device = _check_device(device)
    if isinstance(device, str):
        return _require_cuda().asarray(array) if device == "cuda" else to_numpy(array)
    # the library too: torch.device("cpu") == "cpu" holds, but a NumPy array is no torch tensor
    same = _library(array) == module_for(device).__name__ and device_of(array) == device
    return array if same else module_for(device).asarray(to_numpy(array), device=device)


def to_numpy(array):
    """A NumPy array with the same values (a host copy for CuPy arrays and other devices)."""
    if _library(array) not in ("numpy", "cupy"):
        host = array_api_compat.array_namespace(array).__array_namespace_info__().default_device()
        array = array_api_compat.to_device(array, host)
    return array.get() if is_cupy_array(array) else numpy.asarray(array)


def asarray(value, dtype=None, device: str | None = None):
    """Make a backend array on ``device`` (where it already lives when None).

    Existing NumPy/CuPy arrays keep their dtype unless ``dtype`` is given.
    Python data (floats, lists) becomes float32 rather than NumPy's float64;
    integers and booleans keep their kind (labels stay integers).
    """
    if isinstance(value, numpy.generic):      # NumPy scalars keep their dtype
        value = numpy.asarray(value)
    if is_cupy_array(value) or array_api_compat.is_array_api_obj(value):     # NumPy, CuPy, torch, ...
        arr = value if device is None else to_device(value, device)
        xp = get_array_module(arr)
        return arr if dtype is None else xp.asarray(arr, dtype=getattr(xp, numpy.dtype(dtype).name))
    host = numpy.asarray(value, dtype=dtype)
    if dtype is None and host.dtype == numpy.float64:
        host = host.astype(DEFAULT_DTYPE)
    return to_device(host, device or _default_device)


def zeros(shape, dtype=None, device=None):
    """Zeros of ``dtype`` (default float32) on ``device`` (default: the default device)."""
    return asarray(numpy.zeros(shape, dtype or DEFAULT_DTYPE), device=device or _default_device)


# ----------------------------------------------------------------------------
# dtypes
# ----------------------------------------------------------------------------

def dtype(name) -> numpy.dtype:
    """A NumPy dtype object (CuPy uses the same dtype objects; another library's
    dtype, e.g. array_api_strict.float32, is named by the last part of its name)."""
    try:
        return numpy.dtype(name)
    except TypeError:
        return numpy.dtype(str(name).rsplit(".", 1)[-1])


def dtype_in(xp, name):
    """The dtype ``name`` ('float32', a NumPy dtype, ...) as the namespace ``xp`` spells it."""
    return getattr(xp, dtype(name).name)


def is_float(array) -> bool:
    return dtype(array.dtype).kind == "f"


def broadcast_shapes(*shapes) -> tuple:
    """The shape arrays of ``shapes`` broadcast to (NumPy's rule, also CuPy's);
    ValueError when they do not broadcast."""
    return numpy.broadcast_shapes(*shapes)


# ----------------------------------------------------------------------------
# Randomness: one generator per thread, on the host
# ----------------------------------------------------------------------------

def seed(s: int) -> None:
    """Seed minirect's random generator (initial weights, dropout, shuffling) in this
    thread; a new thread starts from ``seed(0)``'s state.

    Initial weights are drawn on the host from one NumPy ``Generator`` and then
    moved, so a model seeded the same way starts from identical weights on CPU
    and GPU.
    """
    _random.generator = numpy.random.default_rng(s)


def random_uniform(shape, like):
    """U[0, 1) float32 samples from this thread's generator, on the device of
    ``like`` (dropout masks). On a GPU they are drawn on the host and copied;
    the fast path ``uniform`` (accel/gpu_random.py) draws them in GPU memory instead."""
    if (fast := fast_path("uniform", like)) is not None:       # accel/gpu_random.py
        return fast.uniform(shape)
    return to_device(_random.generator.random(shape, dtype=numpy.float32), device_of(like))


def generator() -> numpy.random.Generator:
    """This thread's NumPy Generator behind ``seed``."""
    return _random.generator


def private_generator(s: int) -> numpy.random.Generator:
    """A separate seeded Generator that leaves ``generator()`` untouched."""
    return numpy.random.default_rng(s)


def get_rng_state() -> dict:
    """The generator's state, for checkpoints."""
    return _random.generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _random.generator.bit_generator.state = state


# ----------------------------------------------------------------------------
# Helpers that differ between NumPy and CuPy
# ----------------------------------------------------------------------------

def on_device_of(array) -> dict:
    """The ``device=`` keyword that makes a new array (``xp.zeros(..., **on_device_of(x))``)
    on ``array``'s device: none for NumPy/CuPy (their current device), the array's
    device for other libraries (array_api_strict's device1 refuses a silent mix)."""
    return {} if _library(array) in ("numpy", "cupy") else {"device": array_api_compat.device(array)}


def contiguous(array):
    """A C-ordered copy for NumPy/CuPy (so later GEMMs see one layout, bit for bit as
    before); other libraries' arrays as they are: the standard has no memory layout."""
    return get_array_module(array).ascontiguousarray(array) if _library(array) in ("numpy", "cupy") else array


def synchronize(xp=None) -> None:
    """Wait for queued GPU work (for timing); a no-op on the CPU."""
    cp = _cupy_module
    if cp is not None and (xp is None or xp is cp):
        cp.cuda.Device().synchronize()


def versions() -> dict:
    """Versions and devices, for notebooks' first cell and bug reports."""
    info = {"numpy": numpy.__version__, "cupy": None, "cuda_available": cuda_available()}
    cp = _cupy()
    if cp is not None:
        info["cupy"] = cp.__version__
    return info


# ----------------------------------------------------------------------------
# Matrix products
# ----------------------------------------------------------------------------

recording_matmul = None    # set by accel.cuda_graphs while it records a CUDA graph


def matmul(a, b):
    """``a @ b``: every GEMM of minirect (conv, linear, ``@``) goes through here.

    While a CUDA graph is being recorded, ``accel.cuda_graphs`` routes the
    product to cuBLAS directly (CuPy refuses cuBLAS calls during capture).
    """
    if recording_matmul is not None:
        return recording_matmul(a, b)
    fast = fast_path("matmul", a, b)      # CPU: on minirect's threads, BLAS on one each (accel/threads.py)
    return fast.matmul(a, b) if fast else a @ b


# ----------------------------------------------------------------------------
# Fast paths: registered from above (minirect.accel), asked for by name
# ----------------------------------------------------------------------------

FAST_PATHS = {}     # name -> implementation (with ``applies(...)``), filled by minirect.accel
_fast_on = os.environ.get("MINIRECT_FAST_PATHS", "1").strip().lower() not in ("0", "false", "no", "off")


def register_fast_path(name: str, implementation):
    """Offer ``implementation`` as the fast path ``name`` (done by minirect.accel on import).
    It must have ``applies(*args) -> bool`` and compute what the reference computes."""
    FAST_PATHS[name] = implementation


def fast_path(name: str, *args):
    """The dispatch line's question: the fast path ``name`` if the switch is on,
    one is registered and it ``applies(*args)``; None: run the reference code."""
    path = FAST_PATHS.get(name) if _fast_on else None
    return path if path is not None and path.applies(*args) else None


def fast_paths_enabled() -> bool:
    """Whether the fast paths are on (``MINIRECT_FAST_PATHS=0`` at import: off)."""
    return _fast_on


class fast_paths:  # noqa: N801  (lower case: used like a function)
    """Switch every fast path on or off: ``minirect.fast_paths(False)``, or
    ``with minirect.fast_paths(False): ...`` for a block (then restored)."""

    def __init__(self, enabled: bool):
        global _fast_on
        if enabled not in (True, False):          # a string such as "0" would count as True
            raise TypeError(f"fast_paths takes True or False, got {enabled!r}")
        self.previous, _fast_on = _fast_on, bool(enabled)

    def __enter__(self): return self

    def __exit__(self, *exc_info):
        global _fast_on
        _fast_on = self.previous
