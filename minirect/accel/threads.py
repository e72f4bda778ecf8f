"""Several CPU cores for one operation: a small thread pool, and BLAS kept to one thread inside it.

Two users: ``shifted_windows`` splits a convolution into independent blocks
of samples and hands a share of them to each worker; ``ParallelMatmul``
(below) cuts every other CPU GEMM of minirect into bands. NumPy releases
Python's lock (the GIL) during copies, element-wise loops and BLAS calls, so
Python threads really do run those at the same time.

Why not leave the parallel work to BLAS, as the reference does? OpenBLAS
parallelizes only the GEMMs, and a third of a CPU step is copies and
element-wise work that then runs on one core while BLAS's idle workers
spin. Here each worker does a whole block — its copies, its GEMM, its
output — with BLAS set to one thread, so every part of a convolution uses
every core, and no thread spins while another copies.

How many workers: as many as the threads BLAS was configured with
(``OPENBLAS_NUM_THREADS``, default all cores), so ``--threads 1`` in the
benchmarks means one core for minirect too. Without a BLAS whose thread
count we can set (not OpenBLAS, or not Linux) nothing is threaded.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

from .. import backend

# Names of OpenBLAS's thread-count functions in the builds NumPy ships
# (scipy-openblas, 64-bit integers) and in a system OpenBLAS.
_SYMBOLS = [("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
            ("openblas_get_num_threads", "openblas_set_num_threads")]

_blas = None            # (get, set) of the loaded OpenBLAS, or () when not found
_pool = None


def _openblas():
    """(get_num_threads, set_num_threads) of the OpenBLAS NumPy loaded, or ()."""
    global _blas
    if _blas is None:
        _blas = ()          # NumPy (imported by backend) has loaded its BLAS by now
        for path in _loaded_libraries("openblas"):
            lib = ctypes.CDLL(path)
            for get_name, set_name in _SYMBOLS:
                if hasattr(lib, get_name) and hasattr(lib, set_name):
                    _blas = (getattr(lib, get_name), getattr(lib, set_name))
                    return _blas
    return _blas


def _loaded_libraries(word: str) -> list[str]:
    """Paths of the loaded shared libraries whose file name contains ``word``."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if word in line.rsplit("/", 1)[-1]}
    except OSError:             # not Linux
        return []
    return sorted(p for p in paths if p.startswith("/"))


def workers() -> int:
    """How many threads an operation may use: BLAS's configured thread count."""
    blas = _openblas()
    return max(1, int(blas[0]())) if blas else 1


def applies(x) -> bool:
    """Threading helps NumPy arrays on a machine with more than one worker."""
    return not backend.is_cupy_array(x) and workers() > 1


@contextlib.contextmanager
def single_threaded_blas():
    """BLAS on one thread for the block (each of our workers calls it itself)."""
    if not _openblas():         # no BLAS we can set (then workers() is 1, except in tests)
        yield
        return
    get, set_ = _openblas()
    before = int(get())
    set_(1)
    try:
        yield
    finally:
        set_(before)


def run_parallel(tasks):
    """Run the zero-argument callables ``tasks`` at the same time (the calling
    thread runs the first), BLAS on one thread each; return their results in order."""
    global _pool
    if len(tasks) == 1:
        return [tasks[0]()]
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, workers() - 1),
                                   thread_name_prefix="minirect")
    with single_threaded_blas():
        futures = [_pool.submit(_in_a_share, task) for task in tasks[1:]]
        try:
            first = _in_a_share(tasks[0])
        finally:                # never leave a worker running with BLAS switched
            others = [f.result() for f in futures]
    return [first, *others]


_share = threading.local()      # .active: this thread is running a share of run_parallel


def _in_a_share(task):
    """task(), marked as a share: a GEMM inside it is not cut again (a share
    that waited for the pool it runs on would wait forever)."""
    outer, _share.active = getattr(_share, "active", False), True
    try:
        return task()
    finally:
        _share.active = outer


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """(start, stop) of ``parts`` near-equal ranges covering 0..n (empty ones dropped)."""
    edges = [n * k // parts for k in range(parts + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


# ----------------------------------------------------------------------------
# backend.matmul on these threads
# ----------------------------------------------------------------------------
# Accelerates ``backend.matmul`` (the definition: ``a @ b``, which BLAS
# threads itself). After each GEMM it ran on several threads, OpenBLAS keeps
# its own threads spinning for a while (its THREAD_TIMEOUT), waiting for the
# next one. A fully connected layer's GEMM thus left a thread busy on one of
# the cores the next convolution's workers needed: measured on the 2-core
# development machine, the 22-layer step ran 1.1-1.25x slower for it
# (benchmarks/ab_fast_path.py matmul). Here the product is cut into bands of
# rows (or of columns, whichever is longer), one per worker, each with BLAS on
# one thread, as the convolution does: no BLAS thread ever spins.

PARALLEL_MACS = 2**21       # smaller products: one thread (a band would cost more than it saves)


class ParallelMatmul:
    """``a @ b`` for 2-D NumPy float arrays, in bands on minirect's threads."""

    @staticmethod
    def applies(a, b) -> bool:
        """2-D NumPy arrays of one float dtype, outside a share of run_parallel
        (there BLAS is on one thread already, and the GEMM is part of a share)."""
        return (backend.get_array_module(a, b).__name__ == "numpy" and a.ndim == b.ndim == 2
                and a.dtype == b.dtype and a.dtype.kind == "f" and workers() > 1
                and not getattr(_share, "active", False))

    @staticmethod
    def matmul(a, b):
        (m, k), n = a.shape, b.shape[1]
        if m * k * n < PARALLEL_MACS:
            with single_threaded_blas():
                return a @ b
        xp = backend.get_array_module(a)
        out = xp.empty((m, n), dtype=a.dtype)
        by_rows = m >= n

        def band(start, stop):          # rows of a and out, or columns of b and out
            if by_rows:
                xp.matmul(a[start:stop], b, out=out[start:stop])
            else:
                xp.matmul(a, b[:, start:stop], out=out[:, start:stop])
        run_parallel([functools.partial(band, s, e) for s, e in split(m if by_rows else n, workers())])
        return out
