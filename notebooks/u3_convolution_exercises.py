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
# # Unit 3 exercises: convolution, pooling and SPP
#
# After this unit you can write im2col, conv2d forward and backward and max pooling's
# backward pass, and count a layer's memory and FLOPs.
#
# - Reading first: `docs/derivations/conv.md`.
# - The unit's notebooks: `02_convolution`.
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
# ## `max_pool2d_backward`: Max pooling backward, with ties (★★)

# %%
print(exercises.describe("max_pool2d_backward"))

# %%
def max_pool2d_backward(x, gy, kernel_size, stride):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("max_pool2d_backward: replace this line with your answer")

# %%
verdicts["max_pool2d_backward"] = exercises.check("max_pool2d_backward", max_pool2d_backward)

# %% [markdown]
# ## `im2col`: im2col: the patches of an image as matrix columns (★★)

# %%
print(exercises.describe("im2col"))

# %%
def im2col(x, kh, kw, stride, padding):
    # Your code here (NumPy); return cols.
    raise NotImplementedError("im2col: replace this line with your answer")

# %%
verdicts["im2col"] = exercises.check("im2col", im2col)

# %% [markdown]
# ## `conv2d_forward`: conv2d forward by im2col and one matrix product (★★)

# %%
print(exercises.describe("conv2d_forward"))

# %%
def conv2d_forward(x, W, b, stride, padding):
    # Your code here (NumPy); return y.
    raise NotImplementedError("conv2d_forward: replace this line with your answer")

# %%
verdicts["conv2d_forward"] = exercises.check("conv2d_forward", conv2d_forward)

# %% [markdown]
# ## `conv2d_backward`: conv2d backward: dE/dx and dE/dW (★★★)

# %%
print(exercises.describe("conv2d_backward"))

# %%
def conv2d_backward(x, W, gy, stride, padding):
    # Your code here (NumPy); return gx, gW.
    raise NotImplementedError("conv2d_backward: replace this line with your answer")

# %%
verdicts["conv2d_backward"] = exercises.check("conv2d_backward", conv2d_backward)

# %% [markdown]
# ## `padding_factor`: How much of a padded window lies on the map (★★)

# %%
print(exercises.describe("padding_factor"))

# %%
def padding_factor(s, k):
    # Derive it on paper first, then compute it here; return fraction.
    raise NotImplementedError("padding_factor: replace this line with your answer")

# %%
verdicts["padding_factor"] = exercises.check("padding_factor", padding_factor)

# %% [markdown]
# ## `conv_layer_cost`: A conv layer's parameters, im2col memory and FLOPs (★★)

# %%
print(exercises.describe("conv_layer_cost"))

# %%
def conv_layer_cost(N, C, H, W, D, k, stride, padding):
    # Derive it on paper first, then compute it here; return params, cols_bytes, flops.
    raise NotImplementedError("conv_layer_cost: replace this line with your answer")

# %%
verdicts["conv_layer_cost"] = exercises.check("conv_layer_cost", conv_layer_cost)

# %% [markdown]
# ## `receptive_field`: The receptive field of a stack of convs and pools (★★)

# %%
print(exercises.describe("receptive_field"))

# %%
def receptive_field(layers):
    # Derive it on paper first, then compute it here; return r.
    raise NotImplementedError("receptive_field: replace this line with your answer")

# %%
verdicts["receptive_field"] = exercises.check("receptive_field", receptive_field)

# %% [markdown]
# ## Where you stand

# %%
exercises.where_you_stand(verdicts)
