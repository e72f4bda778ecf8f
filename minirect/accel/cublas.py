"""cuBLAS's GEMM called directly through ctypes, for GEMMs inside a CUDA graph.

Accelerates ``backend.matmul`` (the definition: ``a @ b``) while a graph is
recorded (``cuda_graphs.GraphRecorder``): CuPy refuses cuBLAS calls during
stream capture, but cuBLAS itself records fine. tests/test_graphs.py
compares the products on a GPU, and ``blas_operand`` on the CPU.
"""

from __future__ import annotations

import ctypes


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
    x = x.copy(order="C")
    return x, 0, max(1, cols)


class DirectCublas:
    """A cuBLAS handle of our own on ``stream``, with its workspace allocated
    up front (cuBLAS must not allocate while a graph is recorded). The library
    is the one CuPy already loaded, found by its path in /proc/self/maps."""

    WORKSPACE_BYTES = 32 * 2**20

    def __init__(self, cp, stream):
        self._cp = cp
        cp.ones((2, 2), dtype=cp.float32) @ cp.ones((2, 2), dtype=cp.float32)   # CuPy loads cuBLAS
        self.lib = ctypes.CDLL(loaded_library("libcublas.so"))
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
        self.scalars = {"float32": (ctypes.c_float(1), ctypes.c_float(0), self.lib.cublasSgemm_v2),
                        "float64": (ctypes.c_double(1), ctypes.c_double(0), self.lib.cublasDgemm_v2)}

    @staticmethod
    def _check(status, call):
        if status != 0:
            raise RuntimeError(f"{call} failed with cuBLAS status {status}")

    def matmul(self, a, b):
        """a @ b for 2-D float32/float64 arrays: row-major C = A·B is, to
        column-major cuBLAS, Cᵀ = Bᵀ·Aᵀ, so B goes first."""
        if a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype.name not in self.scalars:
            raise NotImplementedError(
                "inside a recorded CUDA graph, matmul takes two 2-D float32 or float64 arrays "
                f"of one dtype (got {a.shape} {a.dtype} and {b.shape} {b.dtype})")
        (m, k), n = a.shape, b.shape[1]
        if min(m, n, k) == 0:
            return self._cp.zeros((m, n), dtype=a.dtype)
        out = self._cp.empty((m, n), dtype=a.dtype)      # beta = 0: cuBLAS never reads it
        one, zero, gemm = self.scalars[a.dtype.name]
        a, op_a, ld_a = blas_operand(a)
        b, op_b, ld_b = blas_operand(b)
        addr = ctypes.addressof
        self._check(gemm(self.handle, op_b, op_a, n, m, k, addr(one), b.data.ptr, ld_b,
                         a.data.ptr, ld_a, addr(zero), out.data.ptr, n), "cublas gemm")
        return out


def loaded_library(stem: str) -> str:
    """Path of the loaded shared library whose file name starts with ``stem``."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if path.rsplit("/", 1)[-1].startswith(stem):
                return path
    raise RuntimeError(f"{stem} is not loaded in this process")
