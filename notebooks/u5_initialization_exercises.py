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
# # Unit 5 exercises: initialization
#
# After this unit you can derive Eq. 7 to 15, compute the MSRA std, and predict how fast
# the paper's Xavier loses the signal.
#
# - Reading first: `docs/derivations/initialization.md`.
# - The unit's notebooks: `04_initialization` (`04b_initialization_small_maps` is optional).
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
# ## `msra_std`: The MSRA std (Eq. 10, 14, 15) (★★)

# %%
print(exercises.describe("msra_std"))

# %%
def msra_std(shape, a, mode):
    # Your code here (NumPy); return std.
    raise NotImplementedError("msra_std: replace this line with your answer")

# %%
verdicts["msra_std"] = exercises.check("msra_std", msra_std)

# %% [markdown]
# ## `response_variance`: The variance of a layer's response (Eq. 7) (★★)

# %%
print(exercises.describe("response_variance"))

# %%
def response_variance(n, w_var, x_mean, x_var):
    # Derive it on paper first, then compute it here; return variance.
    raise NotImplementedError("response_variance: replace this line with your answer")

# %%
verdicts["response_variance"] = exercises.check("response_variance", response_variance)

# %% [markdown]
# ## `eq15_std`: Derive Eq. 15: the PReLU-aware std (★★)

# %%
print(exercises.describe("eq15_std"))

# %%
def eq15_std(n, a):
    # Derive it on paper first, then compute it here; return std, ratio.
    raise NotImplementedError("eq15_std: replace this line with your answer")

# %%
verdicts["eq15_std"] = exercises.check("eq15_std", eq15_std)

# %% [markdown]
# ## `xavier_response_ratio`: How much signal the paper's Xavier loses, layer by layer (★★★)

# %%
print(exercises.describe("xavier_response_ratio"))

# %%
def xavier_response_ratio(shapes, mode):
    # Derive it on paper first, then compute it here; return ratio.
    raise NotImplementedError("xavier_response_ratio: replace this line with your answer")

# %%
verdicts["xavier_response_ratio"] = exercises.check("xavier_response_ratio", xavier_response_ratio)

# %% [markdown]
# ## `gradient_ratios`: The backward signal: the first layer's gradient over L layers (Eq. 13–14) (★★★)

# %%
print(exercises.describe("gradient_ratios"))

# %%
def gradient_ratios(shapes, scheme, mode):
    # Derive it on paper first, then compute it here; return ratio.
    raise NotImplementedError("gradient_ratios: replace this line with your answer")

# %%
verdicts["gradient_ratios"] = exercises.check("gradient_ratios", gradient_ratios)

# %% [markdown]
# ## Where you stand

# %%
exercises.where_you_stand(verdicts)
