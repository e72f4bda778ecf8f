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
# - The unit's notebook: `08_depth_sweep`.
# - The course map, with every unit in order: `docs/course.md`.
#
# For each exercise: `exercises.describe(name)` prints the task and hints;
# the next cell is **yours** (a stub that raises `NotImplementedError` until you
# replace it); `exercises.check(name, fn)` grades it on seeded cases and prints
# a one-line verdict with a hint on a usual mistake (a stub fails without
# stopping the notebook). ★ apply a derivation, ★★ derive, ★★★ derive and
# predict. A teacher grades the same functions from a file with
# `minirect exercises check student.py --unit depth-sweep` (docs/exercises.md).
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
passed = [name for name, verdict in verdicts.items() if verdict]
print(f"{len(passed)} of {len(verdicts)} exercises of this unit pass:", ", ".join(passed) or "none yet")
