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
# # Unit 2 exercises: broadcasting and matmul
#
# After this unit you can sum a broadcast gradient back to its operand, and write
# MatMul's and a centering op's backward pass.
#
# - Reading first: `docs/derivations/matmul.md`, broadcasting in `docs/derivations/elementwise.md`.
# - The unit's notebooks: `09_build_your_engine` (its second half).
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
# ## `sum_to`: Broadcasting: sum a gradient back to its operand's shape (★★)

# %%
print(exercises.describe("sum_to"))

# %%
def sum_to(g, shape):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("sum_to: replace this line with your answer")

# %%
verdicts["sum_to"] = exercises.check("sum_to", sum_to)

# %% [markdown]
# ## `matmul_backward`: MatMul backward (★★)

# %%
print(exercises.describe("matmul_backward"))

# %%
def matmul_backward(a, b, gy):
    # Your code here (NumPy); return ga, gb.
    raise NotImplementedError("matmul_backward: replace this line with your answer")

# %%
verdicts["matmul_backward"] = exercises.check("matmul_backward", matmul_backward)

# %% [markdown]
# ## `centering_backward`: Mean subtraction backward: the mean's gradient is broadcast back (★★)

# %%
print(exercises.describe("centering_backward"))

# %%
def centering_backward(x, gy):
    # Derive it on paper first, then compute it here; return gx.
    raise NotImplementedError("centering_backward: replace this line with your answer")

# %%
verdicts["centering_backward"] = exercises.check("centering_backward", centering_backward)

# %% [markdown]
# ## Where you stand

# %%
exercises.where_you_stand(verdicts)
