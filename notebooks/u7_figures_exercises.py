# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Unit 7 exercises: Figures 2 and 3
#
# After this unit you can judge a convergence experiment the way the paper states it,
# then reproduce Figure 3 with your own code (minirect exercises train).
#
# - Reading first: `docs/reproduction.md`.
# - The unit's notebooks: `05_figure2_22_layers`, `06_figure3_30_layers`.
# - The course map, with every unit in order: `docs/course.md`.
#
# Each exercise: `describe` (the task and hints), your function in the cell
# below it, then `check` (a one-line verdict; docs/exercises.md says how grading works).
# This worksheet runs minirect's reference path (`minirect.fast_paths(False)`).

# %% tags=["parameters"]
# Parameters (papermill style: this cell is tagged "parameters").
import os

FAST = os.environ.get("MINIRECT_NOTEBOOK_FAST", "0") == "1"   # the test suite (the checks are fast anyway)
DEVICE = os.environ.get("MINIRECT_DEVICE", "cpu")              # "cpu" or "cuda" (the exercises use NumPy)
SEED = 0

# %%
import importlib.util

# minirect imports from any folder once installed. This cell installs nothing: where minirect
# is missing it stops and says how to install it (notebooks/README.md, "Running them").
if importlib.util.find_spec("minirect") is None:
    raise ModuleNotFoundError(
        "minirect is not installed in this environment. In a checkout of minirect: "
        "pip install -e '.[notebooks]'. On a hosted notebook service: build a wheel in a checkout "
        "(python -m build --wheel), upload dist/minirect-*.whl there and run "
        "%pip install minirect-*.whl in a cell, then restart the kernel.")

import math  # noqa: F401  (for your answers below)

import numpy as np  # noqa: F401  (for your answers below)

from minirect import exercises

verdicts = exercises.start_worksheet(SEED, DEVICE)   # the reference path; your verdicts go here

# %% [markdown]
# ## `fig3_verdict`: Judge Figure 3: converged, stalled, vanished (★★)

# %%
print(exercises.describe("fig3_verdict"))

# %%
def fig3_verdict(msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K):
    # Derive it on paper first, then compute it here; return converged, stalled, vanished.
    raise NotImplementedError("fig3_verdict: replace this line with your answer")

# %%
verdicts["fig3_verdict"] = exercises.check("fig3_verdict", fig3_verdict)

# %% [markdown]
# ## `first_crossings`: Figure 2: how much earlier does MSRA reduce the error? (★★)

# %%
print(exercises.describe("first_crossings"))

# %%
def first_crossings(epochs, errors, levels):
    # Derive it on paper first, then compute it here; return crossings.
    raise NotImplementedError("first_crossings: replace this line with your answer")

# %%
verdicts["first_crossings"] = exercises.check("first_crossings", first_crossings)

# %% [markdown]
# ## Where you stand

# %%
exercises.where_you_stand(verdicts)
