"""The training loop's GPU parts: losses read in batches, the step replayed from a CUDA graph.

Accelerates ``train.fit`` on a GPU (the definition: the loop as written there,
each step run eagerly and its loss read at once). ``fit`` asks for it in one
dispatch line, ``backend.fast_path("gpu_training", model)``, which applies to
a model on the GPU with the fast paths on; on the CPU nothing here runs.

* Deferred reads: reading a loss back to the host waits for all queued GPU
  work (a synchronization), and one read of 20 values costs as much as one of
  a single value. So ``fit`` reads the losses and batch errors READ_EVERY
  steps at a time. Every iteration is still recorded, but a NaN loss stops
  training up to READ_EVERY - 1 updates late (the iteration reported is exact).
* CUDA graphs: ``cuda_graph`` True or None ("auto": on for a model on the
  GPU) replays each step from a recorded graph (``captured_step.CapturedStep``,
  the same arithmetic with far fewer kernel launches; docs/gpu.md).
"""

from __future__ import annotations

from .. import backend
from .captured_step import CapturedStep, use_graphs

READ_EVERY = 20


def applies(model) -> bool:
    """For a model with its parameters on the GPU."""
    return any(backend.is_cupy_array(p.data) for p in model.parameters())


def prepare(step, model, optimizer, cuda_graph) -> tuple:
    """``fit``'s GPU setup: (the step to run, recorded as a CUDA graph where
    asked or by default; how many steps to run between reads of the losses)."""
    record, why_not = use_graphs(cuda_graph, model)       # None: on for a model on the GPU
    if why_not:
        print(why_not)
    if record:
        step = CapturedStep(step, model, optimizer, fallback=True)
    return step, READ_EVERY
