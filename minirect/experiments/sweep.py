"""The depth sweep under its first names (notebook 08 uses them): at which depth does
the "Xavier" init stop converging?

The paper shows two depths: at 22 layers both inits converge (Figure 2), at
30 layers Xavier stalls (Figure 3). Its argument (Sec. 2.2) predicts a
smooth story in between: with n̂ Var[w] = 1 every ReLU layer halves the
variance of the backward signal, so at initialization the gradient reaching
the first layer is smaller than MSRA's by about

    2^{-(L-1)/2}     (L weighted layers; the first layer's own gradient is
                      shaped by the L - 1 layers above it)

and the deeper the net, the longer Xavier's first updates take to matter,
until within a fixed budget it does not learn at all.

``run(out_dir)`` (``runner.sweep``) trains both inits at every depth of
``DEPTHS`` for every seed, with fig3's recipe and budget on the default data,
and records per run the iterations until the validation error first falls
below half of chance (None: not within the budget), the final error and the
first layer's gradient std at initialization (``report.sweep_row``). It writes
``sweep.csv`` (one row per run), ``sweep.json``, ``sweep.txt`` (the table and
the crossover depth) and ``sweep.png`` (the three quantities against depth).
Runs keep checkpoints in ``out_dir/runs/depth<L>-<init>-seed<s>/``:
``resume=True`` continues an interrupted sweep from what finished.
``scheduler=`` runs it on a Dask cluster (``executors``).
"""

from __future__ import annotations

from .recipe import DEPTHS, SWEEP_INITS as INITS, make_config as _make_config  # noqa: F401
from .report import crossover, table_text  # noqa: F401
from .report import plot_sweep as plot  # noqa: F401
from .report import sweep_summary as summarize  # noqa: F401
from .report import write_sweep_outputs as write_outputs  # noqa: F401
from .runner import SWEEP_RESUMABLE as RESUMABLE  # noqa: F401
from .runner import sweep as run  # noqa: F401

SEEDS = (0, 1, 2)


def make_config(fast: bool = False, **overrides):
    """The sweep's config (``recipe.make_config("sweep", ...)``)."""
    return _make_config("sweep", fast, **overrides)
