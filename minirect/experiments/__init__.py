"""The paper's experiments: ``runner.reproduce("fig2" | "fig3" | "table2", out_dir)``,
``runner.sweep(out_dir)``.

``recipe`` (config, data, net, optimizer) → ``runner`` (the experiments and the
one run they are made of; ``executors``: where the runs execute) → ``report``
(summaries, verdicts, plots; ``stats``: the paired statistics of Table 2).
"""

from . import recipe, report, runner  # noqa: F401
