"""Figures 2 and 3 under their first names (the notebooks and exercises use them).

Both figures train the same net twice per seed — once initialized with
½ n̂ Var[w] = 1 (MSRA, backward form, Eq. 14) and once with n̂ Var[w] = 1
(the paper's Xavier, backward form) — with the same SGD recipe, and plot the
validation error against epochs (MSRA red, Xavier blue).

* Figure 2, the 22-layer model B: both converge; MSRA starts reducing the
  error earlier.
* Figure 3, the 30-layer model: MSRA converges, Xavier stalls at chance and
  its gradients vanish.

The code lives in ``recipe`` (config, data, net, optimizer), ``runner``
(``run`` here is ``runner.reproduce``; one run is ``runner.train_run``) and
``report`` (summaries, verdicts, plots); this module only names them.
"""

from __future__ import annotations

from .. import data  # noqa: F401
from .recipe import (  # noqa: F401
    DEFAULTS, FAST, FULL, Config, build_model, cached_data, eval_interval, load_data, make_config,
)
from .report import (  # noqa: F401
    CHANCE_BAND, COLORS, FIG2_CRITERION, FIG3_CRITERION, LABELS, STALL_LOSS, VANISHED_GRADIENT,
    fig3_criterion, first_epoch_below, plot_curves, plot_decay_ratios, summarize, summary_text,
    validation_curve, write_outputs,
)
from .runner import BLAS_THREADS, RESUMABLE, train_run  # noqa: F401
from .runner import reproduce as run  # noqa: F401
