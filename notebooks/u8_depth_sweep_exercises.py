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
# # Unit 8 exercises: the depth sweep (optional)
#
# After this unit you can find the depth at which the paper's Xavier stops training,
# from the first-layer gradient.
#
# - Reading first: `docs/depth-sweep.md`.
# - The unit's notebooks: `08_depth_sweep`.
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
# ## `vanishing_depth`: The depth sweep: where does Xavier's first-layer gradient vanish? (★★★)

# %%
print(exercises.describe("vanishing_depth"))

# %%
def vanishing_depth(depths, threshold):
    # Derive it on paper first, then compute it here; return ratios, depth.
    raise NotImplementedError("vanishing_depth: replace this line with your answer")

# %%
verdicts["vanishing_depth"] = exercises.check("vanishing_depth", vanishing_depth)

# %% [markdown]
# ## Where you stand

# %%
exercises.where_you_stand(verdicts)
