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
# # Unit 1 exercises: autograd
#
# After this unit you can differentiate an op by hand, write its backward pass, and say
# why a gradient check uses central differences.
#
# - Reading first: `docs/derivations/elementwise.md`, `docs/derivations/reductions.md`.
# - The unit's notebooks: `01_autograd` (the tour), `09_build_your_engine` (you build it).
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
# ## `mul_backward`: Mul backward (★)

# %%
print(exercises.describe("mul_backward"))

# %%
def mul_backward(a, b, gy):
    # Your code here (NumPy); return ga, gb.
    raise NotImplementedError("mul_backward: replace this line with your answer")

# %%
verdicts["mul_backward"] = exercises.check("mul_backward", mul_backward)

# %% [markdown]
# ## `div_backward`: Div backward (★)

# %%
print(exercises.describe("div_backward"))

# %%
def div_backward(a, b, gy):
    # Your code here (NumPy); return ga, gb.
    raise NotImplementedError("div_backward: replace this line with your answer")

# %%
verdicts["div_backward"] = exercises.check("div_backward", div_backward)

# %% [markdown]
# ## `central_difference_error`: Why gradcheck uses central differences (★★)

# %%
print(exercises.describe("central_difference_error"))

# %%
def central_difference_error(c, x, eps):
    # Derive it on paper first, then compute it here; return central, forward.
    raise NotImplementedError("central_difference_error: replace this line with your answer")

# %%
verdicts["central_difference_error"] = exercises.check(
    "central_difference_error", central_difference_error)

# %% [markdown]
# ## Where you stand

# %%
exercises.where_you_stand(verdicts)
