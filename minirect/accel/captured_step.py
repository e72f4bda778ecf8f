"""A training step recorded once as a CUDA graph and replayed for every batch.

Accelerates ``train.training_step`` (the definition: the same step run
eagerly). On a GPU every array operation is a kernel launch costing 10-20 µs
of Python and driver time whatever its size; a recorded step launches its
thousand-odd kernels in one call. The gpu tests of tests/test_graphs.py
compare replayed and eager steps; docs/gpu.md tells the whole story.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Tensor
from ..backend import fast_paths_enabled as enabled
from . import gpu_random
from .cuda_graphs import GraphRecorder


class CapturedStep:
    """``step(x, y) -> (loss, logits)`` arrays; on a GPU replayed from a CUDA graph.

    ``step_fn(x, y)`` is one full training step (forward, loss, backward,
    update) returning the loss and logits arrays; ``optimizer`` and ``model``
    are the ones it uses (their state decides when to record again).

    How ``CapturedStep`` works (the step itself is ``train.training_step``, the
    same code as without graphs):

    1. warm-up: the first calls run the step normally, on the graph's own stream
       and memory pool (``cuda_graphs.GraphRecorder``): kernels get compiled and the
       pool gets blocks of the right sizes;
    2. record: the batch is copied into fixed input arrays and the step runs once
       while CUDA records its kernels instead of executing them;
    3. replay: each later batch is copied into the same input arrays and the
       graph is launched. Loss and logits are copied out, because the next
       replay overwrites the arrays the graph writes them to.

    What a recording cannot do, and what this class does about it:

    * its shapes are fixed: a batch of another shape (the last, short batch of
      an epoch) runs eagerly;
    * Python numbers are baked into its kernels, the learning rate among them:
      a change of any optimizer hyperparameter, or of ``model.training``, makes
      a new recording (so do replaced parameter or momentum arrays, e.g. after
      loading a checkpoint, and ``minirect.seed``, which reseeds the GPU's
      random state at the next eager draw);
    * gradients: after each replay ``p.grad`` is the array the graph wrote
      (an eager step in between may have set others);
    * it cannot copy data to or from the host: a step that does (for example
      reading a value to decide what to do next) fails to record, with CuPy's
      error. Dropout works: its random numbers come from a counter kept in GPU
      memory and advanced inside the graph (``gpu_random``).

    On the CPU there is nothing to record, and with ``minirect.fast_paths(False)``
    nothing is recorded either: ``CapturedStep`` then runs the step normally, so
    code that uses it runs unchanged everywhere. With ``fallback=True`` (as
    ``fit`` uses it) a step that fails to record is reported in one line and
    run eagerly from then on, instead of raising.
    """

    def __init__(self, step_fn, model, optimizer, warmup: int = 2, fallback: bool = False):
        if warmup < 1:      # the first step creates state (momentum buffers) a recording cannot
            raise ValueError(f"CapturedStep needs warmup >= 1, got {warmup}")
        self.step_fn, self.model, self.optimizer = step_fn, model, optimizer
        self.warmup = warmup
        self.fallback = fallback    # a step that cannot be recorded: say why once, run eagerly
        self.eager_only = False
        self.recorder = None        # created on the first CuPy batch
        self.recordings = 0         # how many graphs were recorded (tests, benchmarks)
        self._forget()

    def _forget(self) -> None:
        self._key, self._warm, self._graph = None, 0, None
        self._inputs = self._outputs = self._grads = None

    def __call__(self, x: Tensor, y: Tensor):
        if self.eager_only or not backend.is_cupy_array(x.data) or not enabled():
            return self.step_fn(x, y)                   # nothing to record: the plain step
        if self.recorder is None:
            self.recorder = GraphRecorder()
        key = self._state_key(x, y)
        if self._graph is not None and key[0] != self._key[0]:
            return self.step_fn(x, y)           # another batch shape: eagerly, graph kept
        if key != self._key:
            self._forget()
            self._key = key
        if self._warm < self.warmup:
            self._warm += 1
            return self.recorder.run(self.step_fn, x, y)
        if self._graph is None:
            try:
                self._record(x, y)
            except Exception as error:
                if not self.fallback:
                    raise
                print(f"CUDA graph: this training step cannot be recorded ({type(error).__name__}: "
                      f"{str(error).splitlines()[0] if str(error) else ''}); it runs eagerly")
                self.eager_only = True
                self._forget()
                return self.step_fn(x, y)
        self._inputs[0].data[...] = x.data
        self._inputs[1].data[...] = y.data
        self.recorder.replay(self._graph)
        for p, grad in self._grads:         # an eager step in between set other arrays
            p.grad = grad
        return tuple(out.copy() for out in self._outputs)

    def _record(self, x, y) -> None:
        # Fixed input arrays from the private pool: the graph reads them at replay.
        inputs = self.recorder.run(lambda: (Tensor(x.data.copy()), Tensor(y.data.copy())))
        self._graph, self._outputs = self.recorder.record(self.step_fn, *inputs)
        self._inputs = inputs
        # The arrays the graph writes the gradients to (kept alive here).
        self._grads = [(p, p.grad) for p in self.optimizer.parameters()]
        if self._state_key(x, y) != self._key:
            self._forget()
            raise RuntimeError("the training step changed the optimizer's or the random "
                               "generator's arrays while it was recorded; give CapturedStep "
                               "a larger warmup")
        self.recordings += 1

    def _state_key(self, x, y):
        """What the recording depends on: (batch layout, everything baked in)."""
        groups = tuple(tuple((k, v) for k, v in sorted(g.items()) if k != "params")
                       for g in self.optimizer.param_groups)
        arrays = [p.data for p in self.optimizer.parameters()]
        arrays += list(self.optimizer.velocity.values())
        addresses = tuple(a.data.ptr for a in arrays)
        batch = (x.shape, x.dtype, y.shape, y.dtype)
        return batch, groups, self.model.training, addresses, gpu_random.state_key()


def use_graphs(cuda_graph, model) -> tuple[bool, str]:
    """``fit``'s choice: (record the training step?, why not, if worth saying).

    ``cuda_graph`` True or False is obeyed; None means "auto": on where it
    pays, i.e. for a model on the GPU with the fast paths on. On the CPU
    there is nothing to record and nothing to say.
    """
    if cuda_graph is not None:
        return bool(cuda_graph), ""
    on_gpu = any(backend.device_of(p.data) == "cuda" for p in model.parameters())
    if not on_gpu:
        return False, ""
    if not enabled():
        return False, "CUDA graph: off, because minirect.fast_paths is off; the steps run eagerly"
    return True, ""
