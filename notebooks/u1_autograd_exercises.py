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
# - Reading first: `docs/derivations/elementwise.md, derivations/reductions.md`.
# - The unit's notebook: `01_autograd (the tour) and 09_build_your_engine (you build it)`.
# - The course map, with every unit in order: `docs/course.md`.
#
# For each exercise: `exercises.describe(name)` prints the task and hints;
# the next cell is **yours** (a stub that raises `NotImplementedError` until you
# replace it); `exercises.check(name, fn)` grades it on seeded cases and prints
# a one-line verdict with a hint on a usual mistake (a stub fails without
# stopping the notebook). ★ apply a derivation, ★★ derive, ★★★ derive and
# predict. A teacher grades the same functions from a file with
# `minirect exercises check student.py --unit autograd` (docs/exercises.md).
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

import minirect
from minirect import exercises

minirect.fast_paths(False)   # the reference path: the code you read is the code that runs
minirect.use(DEVICE)
minirect.seed(SEED)
print("minirect", minirect.__version__, minirect.versions())
print("device:", minirect.default_device(), "| default dtype:", minirect.tensor([0.0]).dtype,
      "| fast paths:", minirect.accel.enabled())
verdicts = {}                # your verdicts, summed up at the end

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
passed = [name for name, verdict in verdicts.items() if verdict]
print(f"{len(passed)} of {len(verdicts)} exercises of this unit pass:", ", ".join(passed) or "none yet")
