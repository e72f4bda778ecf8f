"""minirect.accel: the speed-only mechanisms, each beside the reference it replaces.

A student can skip this package. The code that defines every result is the
plain code in ``minirect/functional``, ``minirect/optim.py`` and
``minirect/backend.py``; what lives here computes the same numbers faster,
is reached from there through one named dispatch line, and is proven equal
to the reference by tests/test_accel.py.

    shifted_windows.py   stride-1 conv2d without im2col's tap copies   (functional.conv.Conv2d)
    threads.py           shifted-window blocks shared among CPU cores  (used by shifted_windows)
    fused_sgd.py         SGD's update as one GPU kernel                 (optim.SGD)
    gpu_random.py        dropout's random numbers drawn in GPU memory   (functional.layers.Dropout)
    cublas.py            cuBLAS called directly, for recorded GEMMs     (backend.matmul)
    cuda_graphs.py       GPU work recorded once, replayed               (none: pure speed)
    captured_step.py     a training step replayed from a CUDA graph     (train.training_step)

The switch: ``minirect.fast_paths(False)`` (a call, or ``with
minirect.fast_paths(False): ...``), or ``MINIRECT_FAST_PATHS=0`` in the
environment when minirect is imported. With it off every op runs the
reference code. Timings: docs/benchmarks.md.
"""

from __future__ import annotations

import os

_OFF_WORDS = ("0", "false", "no", "off")
_enabled = os.environ.get("MINIRECT_FAST_PATHS", "1").strip().lower() not in _OFF_WORDS


def enabled() -> bool:
    """Whether the fast paths are on (read by every dispatch line)."""
    return _enabled


class fast_paths:  # noqa: N801  (lower case: used like a function)
    """Switch every fast path on or off.

    As a call it sets the switch: ``minirect.fast_paths(False)``. As a
    context manager it sets it for the block and then restores the previous
    setting::

        with minirect.fast_paths(False):      # the reference code only
            loss = train_one_epoch()
    """

    def __init__(self, enabled: bool):
        global _enabled
        if enabled not in (True, False):          # a string such as "0" would count as True
            raise TypeError(f"fast_paths takes True or False, got {enabled!r}")
        self.previous, _enabled = _enabled, bool(enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        global _enabled
        _enabled = self.previous
        return False
