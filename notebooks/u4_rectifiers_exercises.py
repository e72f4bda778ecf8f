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
# # Unit 4 exercises: rectifiers and PReLU
#
# After this unit you can write the backward passes of ReLU, leaky ReLU and PReLU (Eq.
# 2), and predict what PReLU passes on to the next layer.
#
# - Reading first: `docs/derivations/activations.md`.
# - The unit's notebooks: `03_prelu`.
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
# ## `relu_backward`: ReLU backward (★)

# %%
print(exercises.describe("relu_backward"))

# %%
def relu_backward(x, gy):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("relu_backward: replace this line with your answer")

# %%
verdicts["relu_backward"] = exercises.check("relu_backward", relu_backward)

# %% [markdown]
# ## `leaky_relu_backward`: Leaky ReLU backward (★)

# %%
print(exercises.describe("leaky_relu_backward"))

# %%
def leaky_relu_backward(x, gy, slope):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("leaky_relu_backward: replace this line with your answer")

# %%
verdicts["leaky_relu_backward"] = exercises.check("leaky_relu_backward", leaky_relu_backward)

# %% [markdown]
# ## `prelu_backward`: PReLU backward, channel-wise (Eq. 2) (★★)

# %%
print(exercises.describe("prelu_backward"))

# %%
def prelu_backward(x, a, gy):
    # Your code here (NumPy); return gx, ga.
    raise NotImplementedError("prelu_backward: replace this line with your answer")

# %%
verdicts["prelu_backward"] = exercises.check("prelu_backward", prelu_backward)

# %% [markdown]
# ## `prelu_shared_backward`: PReLU backward, channel-shared (★★)

# %%
print(exercises.describe("prelu_shared_backward"))

# %%
def prelu_shared_backward(x, a, gy):
    # Your code here (NumPy); return gx, ga.
    raise NotImplementedError("prelu_shared_backward: replace this line with your answer")

# %%
verdicts["prelu_shared_backward"] = exercises.check("prelu_shared_backward", prelu_shared_backward)

# %% [markdown]
# ## `prelu_output_moments`: What PReLU passes on: E[x], E[x²] and Var[x] (Eq. 8, 15) (★★)

# %%
print(exercises.describe("prelu_output_moments"))

# %%
def prelu_output_moments(a, std):
    # Derive it on paper first, then compute it here; return mean, second_moment, variance.
    raise NotImplementedError("prelu_output_moments: replace this line with your answer")

# %%
verdicts["prelu_output_moments"] = exercises.check("prelu_output_moments", prelu_output_moments)

# %% [markdown]
# ## `prelu_on_relu_init`: PReLU under ReLU's initialization: the signal grows (Eq. 15) (★★★)

# %%
print(exercises.describe("prelu_on_relu_init"))

# %%
def prelu_on_relu_init(a):
    # Derive it on paper first, then compute it here; return stds.
    raise NotImplementedError("prelu_on_relu_init: replace this line with your answer")

# %%
verdicts["prelu_on_relu_init"] = exercises.check("prelu_on_relu_init", prelu_on_relu_init)

# %% [markdown]
# ## Where you stand

# %%
exercises.where_you_stand(verdicts)
