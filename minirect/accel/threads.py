"""Several CPU cores for one operation: a small thread pool, and BLAS kept to one thread inside it.

No reference to accelerate: ``shifted_windows``, its one user, splits a
convolution into independent blocks of samples and hands a share of them to
each worker. NumPy releases Python's lock (the GIL) during copies,
element-wise loops and BLAS calls, so Python threads really do run those at
the same time.

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
        futures = [_pool.submit(task) for task in tasks[1:]]
        try:
            first = tasks[0]()
        finally:                # never leave a worker running with BLAS switched
            others = [f.result() for f in futures]
    return [first, *others]


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """(start, stop) of ``parts`` near-equal ranges covering 0..n (empty ones dropped)."""
    edges = [n * k // parts for k in range(parts + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]
