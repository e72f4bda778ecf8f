"""The paper's experiments: ``runner.reproduce("fig2" | "fig3", out_dir)``, ``runner.sweep(out_dir)``.

``recipe`` (config, data, net, optimizer) → ``runner`` (the experiments and the
one run they are made of; ``executors``: where the runs execute) → ``report``
(summaries, verdicts, plots). ``convergence`` and ``sweep`` keep the first names.
"""

from . import convergence  # noqa: F401
from .runner import reproduce  # noqa: F401
