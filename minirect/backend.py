"""The backend layer: the only module in minirect that imports NumPy or CuPy.

Everything above this file asks *here* for the array module (``xp``) that owns
its arrays, so one piece of code runs on NumPy (CPU) and CuPy (GPU):

    xp = get_array_module(x, w)      # numpy or cupy, never a silent mix
    y = xp.maximum(x, 0)

What lives here:

* array-module lookup from arrays and tensors, with a ``TypeError`` naming the
  op and both array types when NumPy and CuPy arrays meet;
* devices: ``cuda_available()``, the default device switch ``use("cuda")`` and
  explicit moves (``to_device``, ``to_numpy``);
* the default dtype (float32) and the one random generator behind ``seed``.

CuPy is imported lazily, on first need, so ``import minirect`` never fails or
slows down on a machine without it.
"""

from __future__ import annotations

import contextlib
import importlib

import numpy

DEFAULT_DTYPE = numpy.float32
FLOAT_DTYPES = (numpy.float16, numpy.float32, numpy.float64)

GPU_INSTALL_HINT = (
    "Install the GPU extra with the CuPy wheel that matches your CUDA version, "
    "e.g. `pip install -e \".[gpu]\"` (CUDA 12: cupy-cuda12x, CUDA 13: "
    "cupy-cuda13x; see docs/gpu.md), and check that `nvidia-smi` sees a GPU."
)

_cupy_module = None        # the imported cupy module, once looked up
_cupy_checked = False      # whether we already tried to import it
_default_device = "cpu"
_generator = numpy.random.default_rng(0)


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


def get_array_module(*arrays, op: str = "operation"):
    """Return ``numpy`` or ``cupy``: the module owning the given arrays.

    Tensors are unwrapped; Python scalars and ``None`` are ignored. Mixing NumPy
    and CuPy arrays raises a ``TypeError`` that names ``op`` and both types,
    because a silent copy between host and device is never what a user wants.
    """
    found = None
    for a in arrays:
        a = unwrap(a)
        if a is None or isinstance(a, (int, float, bool)):
            continue
        kind = "cupy" if is_cupy_array(a) else "numpy"
        if found is None:
            found = (kind, a)
        elif kind != found[0]:
            raise TypeError(
                f"{op}: cannot mix a {type(found[1]).__module__}.{type(found[1]).__name__} "
                f"and a {type(a).__module__}.{type(a).__name__}; move both to one device "
                "first with .to('cpu') or .to('cuda')."
            )
    if found is not None and found[0] == "cupy":
        return _cupy()
    return numpy


def device_of(array) -> str:
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if is_cupy_array(unwrap(array)) else "cpu"


# ----------------------------------------------------------------------------
# Devices
# ----------------------------------------------------------------------------

def _check_device(device: str) -> str:
    device = str(device).lower()
    if device.startswith("cuda") or device == "gpu":
        return "cuda"
    if device == "cpu":
        return "cpu"
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
    return _require_cuda() if device == "cuda" else numpy


def to_device(array, device: str):
    """Copy an array to 'cpu' (NumPy) or 'cuda' (CuPy); no copy if already there."""
    device = _check_device(device)
    if device == "cuda":
        cp = _require_cuda()
        return cp.asarray(array)
    return to_numpy(array)


def to_numpy(array):
    """A NumPy array with the same values (a host copy for CuPy arrays)."""
    if is_cupy_array(array):
        return array.get()
    return numpy.asarray(array)


def asarray(value, dtype=None, device: str | None = None):
    """Make a backend array on ``device`` (where it already lives when None).

    Existing NumPy/CuPy arrays keep their dtype unless ``dtype`` is given.
    Python data (floats, lists) becomes float32 rather than NumPy's float64;
    integers and booleans keep their kind (labels stay integers).
    """
    if isinstance(value, numpy.generic):      # NumPy scalars keep their dtype
        value = numpy.asarray(value)
    if is_cupy_array(value) or isinstance(value, numpy.ndarray):
        arr = value if device is None else to_device(value, device)
        return arr if dtype is None else get_array_module(arr).asarray(arr, dtype=dtype)
    host = numpy.asarray(value, dtype=dtype)
    if dtype is None and host.dtype == numpy.float64:
        host = host.astype(DEFAULT_DTYPE)
    return module_for(device).asarray(host)


# ----------------------------------------------------------------------------
# dtypes
# ----------------------------------------------------------------------------

def dtype(name) -> numpy.dtype:
    """A NumPy dtype object (CuPy uses the same dtype objects)."""
    return numpy.dtype(name)


def is_float(array) -> bool:
    return numpy.dtype(array.dtype).kind == "f"


# ----------------------------------------------------------------------------
# Randomness: one generator, on the host
# ----------------------------------------------------------------------------

def seed(s: int) -> None:
    """Seed minirect's random generator (initial weights, dropout, shuffling).

    Initial weights are drawn on the host from one NumPy ``Generator`` and then
    moved, so a model seeded the same way starts from identical weights on CPU
    and GPU. Dropout masks on the GPU come from a generator whose state lives
    in GPU memory and is reseeded from the host one at its next draw
    (``random_uniform``), so a training step never copies masks across the bus.
    """
    global _generator, _device_seed_pending
    _generator = numpy.random.default_rng(s)
    _device_seed_pending = True        # the GPU's state is reseeded at its next draw


_device_generator = None       # the GPU's uint64 [seed, counter], after its first draw
_device_seed_pending = True


def random_uniform(shape, like):
    """U[0, 1) float32 samples on the device of ``like`` (dropout masks).

    On the CPU they come from the shared NumPy generator. On a GPU they are
    computed from a (seed, counter) pair that lives in GPU memory: each call
    hashes (seed, counter, element index) into a number and then adds 1 to
    the counter, both as GPU kernels. Nothing crosses the bus, and a training
    step recorded as a CUDA graph (``minirect.graphs``) draws fresh numbers on
    every replay, because the counter it reads is advanced inside the graph.
    """
    global _device_generator, _device_seed_pending
    if not is_cupy_array(like):
        return _generator.random(shape, dtype=numpy.float32)
    cp = _cupy()
    if _device_seed_pending:            # seeded from the host generator after each seed()
        state = cp.asarray([int(_generator.integers(2**63)), 0], dtype=cp.uint64)
        if _device_generator is None:
            _device_generator = state
        else:       # in place: a recorded CUDA graph goes on reading this very array
            _device_generator[...] = state
        _device_seed_pending = False
    out = cp.empty(shape, dtype=cp.float32)
    _uniform_kernel()(_device_generator, out)
    _device_generator[1:] += 1
    return out


_uniform_kernel_cache = None


def device_random_key():
    """What a recorded graph's random numbers depend on: the address of the
    GPU's generator state, and whether a reseed is pending (graphs.py)."""
    address = None if _device_generator is None else _device_generator.data.ptr
    return address, _device_seed_pending


def _uniform_kernel():
    """Counter-based uniform numbers: u = (top 24 bits of a hash of seed, counter, i) / 2^24."""
    global _uniform_kernel_cache
    if _uniform_kernel_cache is None:
        _uniform_kernel_cache = _cupy().ElementwiseKernel(
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
    return _uniform_kernel_cache


def generator() -> numpy.random.Generator:
    """The shared NumPy Generator behind ``seed``."""
    return _generator


def private_generator(s: int) -> numpy.random.Generator:
    """A separate seeded Generator that leaves the shared one untouched."""
    return numpy.random.default_rng(s)


def unravel_index(flat_index: int, shape) -> tuple:
    return tuple(int(i) for i in numpy.unravel_index(flat_index, shape))


def get_rng_state() -> dict:
    """The generator's state, for checkpoints."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state


# ----------------------------------------------------------------------------
# Helpers that differ between NumPy and CuPy
# ----------------------------------------------------------------------------

def scatter_add(target, index, values) -> None:
    """``target[index] += values`` where repeated indices accumulate.

    Plain ``target[index] += values`` keeps only one of the repeated writes on
    both backends; the ufunc method ``add.at`` (NumPy, and CuPy ≥ 13) adds
    them all. Used by indexing's and SPP's backward passes, not by hot paths.
    """
    xp = get_array_module(target)
    if hasattr(xp.add, "at"):
        xp.add.at(target, index, values)
    else:   # older CuPy
        importlib.import_module("cupyx").scatter_add(target, index, values)


def momentum_step(w, g, v, lr: float, momentum: float, weight_decay: float) -> None:
    """One SGD-with-momentum update, in place (the paper's Eq. 4 with decay):

        v ← μ v + ε (g + λ w)
        w ← w − v

    On the CPU these are the plain array ops below. On a GPU the same
    arithmetic runs as one fused elementwise kernel: each op of a small
    tensor costs a kernel launch (≈ 10-20 µs) whatever its size, and this
    turns the six launches per parameter into one (3.4 ms → under 1 ms per
    step of the 22-layer benchmark net). A test compares the two.
    """
    xp = get_array_module(w, g, v, op="SGD")
    if xp is not numpy:
        _fused_momentum_kernel()(g, w.dtype.type(lr), w.dtype.type(momentum),
                                 w.dtype.type(weight_decay), w, v)
        return
    step = lr * (g + weight_decay * w if weight_decay else g)     # ε (g + λ w)
    v *= momentum
    v += step
    w -= v


_momentum_kernel = None


def _fused_momentum_kernel():
    """The CuPy kernel of ``momentum_step`` (compiled once, on first use)."""
    global _momentum_kernel
    if _momentum_kernel is None:
        _momentum_kernel = _cupy().ElementwiseKernel(
            "T g, T lr, T mu, T wd", "T w, T v",
            "v = mu * v + lr * (g + wd * w); w -= v;",
            "minirect_momentum_step")
    return _momentum_kernel


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
# CUDA graphs: GPU work recorded once and replayed (used by minirect.graphs)
# ----------------------------------------------------------------------------

_recording = None      # the GraphRecorder whose record() is running, or None


def matmul(a, b):
    """``a @ b`` of two 2-D arrays: the GEMMs of the conv and linear layers.

    It is plain ``a @ b`` except while a CUDA graph is being recorded. CuPy
    refuses cuBLAS calls during stream capture, but cuBLAS itself records
    fine, so then the product goes to cuBLAS directly (``_DirectCublas``).
    """
    if _recording is None or _recording.blas is None:
        return a @ b
    return _recording.blas.matmul(a, b)


class GraphRecorder:
    """Records GPU work into CUDA graphs and replays them (CuPy only).

    A graph holds the addresses of every array its kernels touch. So all the
    work it records, and the warm-up runs before (``run``), use a private
    stream and a private memory pool: the arrays it allocates, its scratch
    memory among them, can never be given to an array made outside. The
    graph also touches arrays made outside the pool (parameters, momentum
    buffers, the GPU's random state, the cuBLAS workspace); those must stay
    alive and in place, which ``graphs.CapturedStep`` checks before each
    replay (its ``_state_key``).
    The stream is a blocking one, so it waits for work queued on CuPy's
    default stream before it and the default stream waits for it: copying a
    batch in, replaying, and reading the loss out need no extra
    synchronization.
    """

    def __init__(self):
        self._cp = _require_cuda()
        self.stream = self._cp.cuda.Stream(non_blocking=False)
        self.pool = self._cp.cuda.MemoryPool()
        self.blas = None

    @contextlib.contextmanager
    def _private(self):
        with self.stream, self._cp.cuda.using_allocator(self.pool.malloc):
            yield

    def run(self, fn, *args):
        """``fn(*args)``, executed now on the private stream and pool (warm-up:
        compiles the kernels and fills the pool with blocks of the right sizes)."""
        with self._private():
            return fn(*args)

    def record(self, fn, *args):
        """Record ``fn(*args)`` into a graph; nothing is executed. Returns
        (graph, outputs): the outputs are arrays that each replay overwrites."""
        global _recording
        if self.blas is None:
            self.blas = _cublas_for_recording(self._cp, self.stream)
        with self._private():
            self.stream.begin_capture()
            _recording = self
            try:
                outputs = fn(*args)
            except BaseException:
                _recording = None
                with contextlib.suppress(Exception):
                    self.stream.end_capture()
                raise
            _recording = None
            graph = self.stream.end_capture()
        return graph, outputs

    def replay(self, graph) -> None:
        graph.launch(self.stream)


def _cublas_for_recording(cp, stream):
    """None when CuPy's own matmul can be recorded, else a ``_DirectCublas``."""
    a = cp.ones((4, 4), dtype=cp.float32)
    out = a @ a
    stream.synchronize()
    with stream:
        stream.begin_capture()
        try:
            cp.matmul(a, a, out=out)  # into an existing array: no allocation while recording
            refused = False
        except NotImplementedError:  # "cuBLAS ... stream capture": CuPy 14 says no
            refused = True
        finally:
            stream.end_capture()
    return _DirectCublas(cp, stream) if refused else None


def blas_operand(x):
    """How cuBLAS (column-major) reads the row-major 2-D array ``x`` in place:
    (array, transpose flag, leading dimension).

    cuBLAS stores a matrix column by column with a *leading dimension* ld: the
    element (p, q) sits ld·q + p elements after the first. A row-major ``x``
    whose rows are contiguous (strides (ld, 1) in elements) is therefore, to
    cuBLAS, the matrix xᵀ with that ld: flag 0 ("N"). A view whose columns
    are contiguous (strides (1, ld), e.g. the transpose of a C-ordered array)
    is x itself, to be transposed: flag 1 ("T"). Anything else is copied to
    C order first.
    """
    rows, cols = x.shape
    step = x.itemsize
    row_stride, col_stride = x.strides
    if x.flags.c_contiguous:
        return x, 0, max(1, cols)
    if x.T.flags.c_contiguous:
        return x, 1, max(1, rows)
    if col_stride == step and row_stride % step == 0 and row_stride >= step * cols:
        return x, 0, row_stride // step
    if row_stride == step and col_stride % step == 0 and col_stride >= step * rows:
        return x, 1, col_stride // step
    x = get_array_module(x).ascontiguousarray(x)
    return x, 0, max(1, cols)


class _DirectCublas:
    """cuBLAS's GEMM called through ctypes, for CUDA graph recording.

    Its own cuBLAS handle runs on the recorder's stream, with a workspace
    allocated up front (cuBLAS must not allocate while a graph is recorded).
    The library is the one CuPy already loaded, found by its path in
    /proc/self/maps.
    """

    WORKSPACE_BYTES = 32 * 2**20

    def __init__(self, cp, stream):
        import ctypes
        self._cp, self._ctypes = cp, ctypes
        cp.ones((2, 2), dtype=cp.float32) @ cp.ones((2, 2), dtype=cp.float32)   # CuPy loads cuBLAS
        self.lib = ctypes.CDLL(_loaded_library("libcublas.so"))
        vp, i32 = ctypes.c_void_p, ctypes.c_int
        for name in ("cublasSgemm_v2", "cublasDgemm_v2"):
            getattr(self.lib, name).argtypes = [vp, i32, i32, i32, i32, i32, vp, vp, i32, vp,
                                                i32, vp, vp, i32]
        self.handle = vp()
        self._check(self.lib.cublasCreate_v2(ctypes.byref(self.handle)), "cublasCreate")
        self._check(self.lib.cublasSetStream_v2(self.handle, vp(stream.ptr)), "cublasSetStream")
        self.workspace = cp.empty(self.WORKSPACE_BYTES, dtype=cp.uint8)
        self._check(self.lib.cublasSetWorkspace_v2(self.handle, vp(self.workspace.data.ptr),
                                                   ctypes.c_size_t(self.WORKSPACE_BYTES)),
                    "cublasSetWorkspace")
        self.scalars = {numpy.dtype(numpy.float32): (ctypes.c_float(1), ctypes.c_float(0),
                                                     self.lib.cublasSgemm_v2),
                        numpy.dtype(numpy.float64): (ctypes.c_double(1), ctypes.c_double(0),
                                                     self.lib.cublasDgemm_v2)}

    @staticmethod
    def _check(status, call):
        if status != 0:
            raise RuntimeError(f"{call} failed with cuBLAS status {status}")

    def matmul(self, a, b):
        """a @ b for 2-D float32/float64 arrays: row-major C = A·B is, to
        column-major cuBLAS, Cᵀ = Bᵀ·Aᵀ, so B goes first."""
        if a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype not in self.scalars:
            raise NotImplementedError(
                "inside a recorded CUDA graph, matmul takes two 2-D float32 or float64 arrays "
                f"of one dtype (got {a.shape} {a.dtype} and {b.shape} {b.dtype})")
        (m, k), n = a.shape, b.shape[1]
        if min(m, n, k) == 0:
            return self._cp.zeros((m, n), dtype=a.dtype)
        out = self._cp.empty((m, n), dtype=a.dtype)      # beta = 0: cuBLAS never reads it
        one, zero, gemm = self.scalars[a.dtype]
        a, op_a, ld_a = blas_operand(a)
        b, op_b, ld_b = blas_operand(b)
        addr = self._ctypes.addressof
        self._check(gemm(self.handle, op_b, op_a, n, m, k, addr(one), b.data.ptr, ld_b,
                         a.data.ptr, ld_a, addr(zero), out.data.ptr, n), "cublas gemm")
        return out


def _loaded_library(stem: str) -> str:
    """Path of the loaded shared library whose file name starts with ``stem``."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if path.rsplit("/", 1)[-1].startswith(stem):
                return path
    raise RuntimeError(f"{stem} is not loaded in this process")


# ----------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------

def save_npz(file, arrays: dict) -> None:
    """Write host arrays to an .npz file object or path (uncompressed)."""
    numpy.savez(file, **arrays)


def load_npz(path) -> dict:
    """Read every array of an .npz file into a dict of NumPy arrays."""
    with numpy.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def encode_text(text: str):
    """A string as a uint8 array, so JSON can travel inside an .npz file."""
    return numpy.frombuffer(text.encode("utf-8"), dtype=numpy.uint8).copy()


def decode_text(array) -> str:
    return bytes(to_numpy(array).astype(numpy.uint8)).decode("utf-8")
