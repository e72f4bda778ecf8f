"""GPU work recorded once into a CUDA graph and replayed (CuPy only).

No reference to accelerate: replaying a graph runs the very kernels the
eager code launches, in one call instead of one per array operation.
``captured_step.CapturedStep`` records training steps with it; tests in
tests/test_graphs.py compare replayed and eager results on a GPU.
"""

from __future__ import annotations

import contextlib

from .. import backend
from .cublas import DirectCublas


class GraphRecorder:
    """Records GPU work into CUDA graphs and replays them.

    A graph holds the addresses of every array its kernels touch. So all the
    work it records, and the warm-up runs before (``run``), use a private
    stream and a private memory pool: the arrays it allocates, its scratch
    memory among them, can never be given to an array made outside. The
    graph also touches arrays made outside the pool (parameters, momentum
    buffers, the GPU's random state, the cuBLAS workspace); those must stay
    alive and in place, which ``CapturedStep`` checks before each replay.
    The stream is a blocking one, so it waits for work queued on CuPy's
    default stream before it and the default stream waits for it: copying a
    batch in, replaying, and reading the loss out need no extra
    synchronization.
    """

    def __init__(self):
        self._cp = backend.module_for("cuda")
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
        (graph, outputs): the outputs are arrays that each replay overwrites.
        Meanwhile ``backend.matmul`` calls cuBLAS directly when CuPy's own
        matmul cannot be recorded."""
        if self.blas is None:
            self.blas = _cublas_for_recording(self._cp, self.stream)
        with self._private():
            self.stream.begin_capture()
            backend.recording_matmul = None if self.blas is False else self.blas.matmul
            try:
                outputs = fn(*args)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.stream.end_capture()
                raise
            finally:
                backend.recording_matmul = None
            graph = self.stream.end_capture()
        return graph, outputs

    def replay(self, graph) -> None:
        graph.launch(self.stream)


def _cublas_for_recording(cp, stream):
    """False when CuPy's own matmul can be recorded, else a ``DirectCublas``."""
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
    return DirectCublas(cp, stream) if refused else False
