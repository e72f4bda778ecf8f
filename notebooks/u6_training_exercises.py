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
# # Unit 6 exercises: SGD and training
#
# After this unit you can write the loss's backward pass and the paper's SGD step (Eq.
# 4), and tell which layers weight decay alone drives (footnote 2).
#
# - Reading first: `docs/derivations/softmax.md`, `docs/derivations/dropout.md`.
# - The unit's notebooks: `03_prelu` (its training loop), `05_figure2_22_layers`.
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
# ## `softmax_cross_entropy_backward`: Softmax cross-entropy backward (★★)

# %%
print(exercises.describe("softmax_cross_entropy_backward"))

# %%
def softmax_cross_entropy_backward(logits, labels):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("softmax_cross_entropy_backward: replace this line with your answer")

# %%
verdicts["softmax_cross_entropy_backward"] = exercises.check(
    "softmax_cross_entropy_backward", softmax_cross_entropy_backward)

# %% [markdown]
# ## `sgd_step`: SGD with momentum (Eq. 4), no decay on PReLU coefficients (★★)

# %%
print(exercises.describe("sgd_step"))

# %%
def sgd_step(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    # Your code here (NumPy); return W, vW, a, va.
    raise NotImplementedError("sgd_step: replace this line with your answer")

# %%
verdicts["sgd_step"] = exercises.check("sgd_step", sgd_step)

# %% [markdown]
# ## `momentum_forms`: Eq. 4 and PyTorch's momentum: the same until the learning rate changes (★★★)

# %%
print(exercises.describe("momentum_forms"))

# %%
def momentum_forms(w0, g, lrs, momentum):
    # Derive it on paper first, then compute it here; return w_paper, w_torch.
    raise NotImplementedError("momentum_forms: replace this line with your answer")

# %%
verdicts["momentum_forms"] = exercises.check("momentum_forms", momentum_forms)

# %% [markdown]
# ## `decay_driven_layers`: Footnote 2: which layers does weight decay alone drive? (★★)

# %%
print(exercises.describe("decay_driven_layers"))

# %%
def decay_driven_layers(weights, grads, weight_decay):
    # Derive it on paper first, then compute it here; return ratio, driven.
    raise NotImplementedError("decay_driven_layers: replace this line with your answer")

# %%
verdicts["decay_driven_layers"] = exercises.check("decay_driven_layers", decay_driven_layers)

# %% [markdown]
# ## Where you stand

# %%
exercises.where_you_stand(verdicts)
