"""The paper's experiments: ``convergence.run("fig2" | "fig3", out_dir)``."""

from . import convergence  # noqa: F401
from .convergence import run as reproduce  # noqa: F401
