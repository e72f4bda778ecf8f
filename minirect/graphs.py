"""A training step recorded once as a CUDA graph and replayed for every batch.

The machinery lives in ``minirect.accel`` (``captured_step``, ``cuda_graphs``,
``cublas``); this module keeps the name ``minirect.graphs.CapturedStep`` that
``fit(cuda_graph=True)``, the benchmarks and older notebooks import.
"""

from .accel.captured_step import CapturedStep  # noqa: F401
from .accel.cuda_graphs import GraphRecorder  # noqa: F401
