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
# # Build your own engine
#
# In this worksheet you write a small automatic-differentiation engine of your
# own, in plain NumPy, in eight tasks: a tensor that remembers how it was
# made, the function that links tensors into a graph, the order in which to
# walk that graph, the backward pass, broadcasting, and the five operations a
# two-layer ReLU network needs. At the end your engine trains that network.
# The whole engine is about a hundred lines; minirect's own
# `minirect/autograd.py` is the same design, grown up.
#
# Each task has three cells: `exercises.describe(name)` prints the task, what
# to define and a few hints; the next cell is **yours**, a stub that raises
# `NotImplementedError` until you fill it in; `check(name)` grades what this
# notebook has defined so far. The checker builds small computations with your
# classes and compares the numbers with minirect's own autograd on the same
# computation. It prints one line: `PASS`, `FAIL` with the first wrong number
# and a hint, or "not done yet" while a stub is still a stub.
#
# Rules of the track: NumPy only (no minirect inside your engine), and every
# array is float64. Run the cells in order; after changing a cell, run it and
# the check below it again.
#
# Prefer a file to a notebook? `minirect exercises template engine.py --engine`
# writes the same tasks as stubs into `engine.py`; fill it in and grade it with
# `minirect exercises check engine.py --unit autograd broadcasting`.

# %% tags=["parameters"]
# Parameters (papermill style: this cell is tagged "parameters").
import os

FAST = os.environ.get("MINIRECT_NOTEBOOK_FAST", "0") == "1"   # fewer training steps: the test suite
DEVICE = os.environ.get("MINIRECT_DEVICE", "cpu")              # minirect's device (your engine uses NumPy)
SEED = 0
SHOW_SOLUTIONS = False   # True only in the test suite: the checks then grade the reference engine

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

import types

import numpy as np

import minirect
from minirect import exercises
from minirect.exercises import build_reference

minirect.fast_paths(False)   # the reference path: the engine you compare with is the code you read
minirect.use(DEVICE)
minirect.seed(SEED)
print("minirect", minirect.__version__, minirect.versions())
print("device:", minirect.default_device(), "| default dtype:", minirect.tensor([0.0]).dtype,
      "| FAST:", FAST)

# %% [markdown]
# The check helper grades *this notebook's* definitions: it hands the checker
# the notebook's namespace, in which your `Tensor`, `Function` and the rest live.

# %%
TASKS = ["engine_tensor", "engine_apply", "engine_topo_order", "engine_backward",
         "engine_sum_to", "engine_add_mul", "engine_matmul_sum", "engine_mlp"]
done = {}


def my_engine():
    """Your engine: everything this notebook has defined so far (the reference when SHOW_SOLUTIONS)."""
    return build_reference if SHOW_SOLUTIONS else types.SimpleNamespace(**globals())


def check(name):
    """Grade your engine on the task ``name``; print one line (and a hint on a mistake)."""
    verdict = exercises.check(name, my_engine(), quiet=True)
    failure = verdict.failure
    if failure is not None and "NotImplementedError" in failure.message:
        print(f"{name}: not done yet (a stub above still raises NotImplementedError)")
    else:
        print(verdict)
    done[name] = bool(verdict)


# %% [markdown]
# ## 1. A tensor
#
# A node of the graph holds three things: its value (`data`), the gradient
# $\partial E/\partial\,\mathrm{data}$ that the backward pass will fill in
# (`grad`, `None` until then), and the operation that produced it (`creator`).
# Inputs and weights have no creator: they are the graph's *leaves*.

# %%
print(exercises.describe("engine_tensor"))


# %%
# Yours: task 1 (engine_tensor)
class Tensor:
    """A node of the graph: data (float64), grad (None until backward), creator (None for a leaf)."""

    def __init__(self, data):
        raise NotImplementedError("task 1: store data as float64, grad and creator")

    @property
    def shape(self):
        raise NotImplementedError("task 1: the shape of data")

    @property
    def parents(self):
        raise NotImplementedError("task 1: the creator's inputs, or () for a leaf")


# %%
check("engine_tensor")


# %% [markdown]
# ## 2. A function that records itself
#
# An operation is a `Function` subclass with two methods on plain arrays:
# `forward(*arrays)` computes the output, `backward(gy)` turns the output's
# gradient into one gradient per input. `apply` is what they all share: it
# runs `forward` on the inputs' arrays and records the step, so that
# `y.creator` is the function and `y.creator.inputs` are the tensors it read.
# Following those two links from any tensor reaches everything it was computed
# from: that is the graph.

# %%
print(exercises.describe("engine_apply"))


# %%
# Yours: task 2 (engine_apply)
class Function:
    """One operation: forward(*arrays) -> array, backward(gy) -> one gradient per input."""

    @classmethod
    def apply(cls, *inputs):
        raise NotImplementedError("task 2: forward on the arrays, then link the output")

    def forward(self, *arrays):
        raise NotImplementedError      # subclasses override this (leave it as it is)

    def backward(self, gy):
        raise NotImplementedError      # subclasses override this (leave it as it is)


# %%
check("engine_apply")


# %% [markdown]
# ## 3. The order of the walk
#
# The backward pass may handle a tensor only when its gradient is complete,
# that is after every tensor computed *from* it has passed its share back. A
# list in which every tensor comes after its parents (a topological order),
# read backwards, guarantees that. The test case to keep in mind is a
# diamond: $x$ feeds two branches, $a = x\cdot x$ and $b = x + x$, which meet
# again in $y = a\cdot b$. $x$ is reached along two paths but must be listed
# once, before both $a$ and $b$.

# %%
print(exercises.describe("engine_topo_order"))


# %%
# Yours: task 3 (engine_topo_order)
def topological_order(tensor):
    """Every tensor `tensor` was computed from (itself included), each once, each after its parents."""
    raise NotImplementedError("task 3: parents first, each tensor once")


# %%
check("engine_topo_order")


# %% [markdown]
# ## 4. The backward pass
#
# With $E$ the sum of the output's elements, the output's gradient is ones.
# Walking the topological order backwards, each tensor that has a creator
# hands its gradient to `creator.backward`, which returns one gradient per
# input; each input **adds** it to its `grad`. Adding matters: in
# $y = x\cdot x + x$ the tensor $x$ is used three times, and the multivariate
# chain rule sums over every path, $\partial y/\partial x = x + x + 1$.
#
# Write `backward` as a function of `self` here; the line after it attaches
# it to your `Tensor` class (if you run task 1's cell again, run this one again too).

# %%
print(exercises.describe("engine_backward"))


# %%
# Yours: task 4 (engine_backward)
def backward(self):
    """Fill in t.grad = dE/dt for every tensor t that self depends on (E = the sum of self)."""
    raise NotImplementedError("task 4: the chain rule, from the output to the leaves")


Tensor.backward = backward

# %%
check("engine_backward")


# %% [markdown]
# ## 5. Broadcasting, backwards
#
# NumPy lets `x + b` add a bias `b` of shape `(C,)` to a batch `x` of shape
# `(N, C)`: it stretches `b` to `(N, C)`. Every copy of `b[j]` receives a
# gradient, and the gradient of `b[j]` is the sum over its copies. `sum_to(g,
# shape)` folds a gradient back to the shape of the operand it belongs to;
# every operation that broadcasts calls it.

# %%
print(exercises.describe("engine_sum_to"))


# %%
# Yours: task 5 (engine_sum_to)
def sum_to(g, shape):
    """g summed back to `shape`, the shape of an operand that broadcasting stretched to g.shape."""
    raise NotImplementedError("task 5: undo broadcasting")


# %%
check("engine_sum_to")


# %% [markdown]
# ## 6. Add and Mul
#
# The first two operations. For operands of one shape, the gradients of
# $y = a + b$ are $g_y$ and $g_y$, those of $y = a\cdot b$ are $g_y\,b$ and
# $g_y\,a$. With broadcasting, each is then folded back to its operand's shape.

# %%
print(exercises.describe("engine_add_mul"))


# %%
# Yours: task 6 (engine_add_mul)
class Add(Function):
    """y = a + b with broadcasting; backward(gy) -> (ga, gb), each of its input's shape."""

    def forward(self, a, b):
        raise NotImplementedError("task 6: Add.forward")

    def backward(self, gy):
        raise NotImplementedError("task 6: Add.backward")


class Mul(Function):
    """y = a * b with broadcasting; backward(gy) -> (ga, gb), each of its input's shape."""

    def forward(self, a, b):
        raise NotImplementedError("task 6: Mul.forward")

    def backward(self, gy):
        raise NotImplementedError("task 6: Mul.backward")


# %%
check("engine_add_mul")


# %% [markdown]
# ## 7. MatMul and Sum
#
# A layer is a matrix product, and a loss is a sum. Derive MatMul's gradients
# one element at a time ($y_{ij} = \sum_p a_{ip} b_{pj}$), then recognise the
# matrix products; check them by their shapes.

# %%
print(exercises.describe("engine_matmul_sum"))


# %%
# Yours: task 7 (engine_matmul_sum)
class MatMul(Function):
    """y = a @ b for a (n, k) and b (k, m); backward(gy) -> (ga, gb)."""

    def forward(self, a, b):
        raise NotImplementedError("task 7: MatMul.forward")

    def backward(self, gy):
        raise NotImplementedError("task 7: MatMul.backward")


class Sum(Function):
    """y = the sum of all elements of x (0-d); backward(gy) -> (gx,), gx of x's shape."""

    def forward(self, x):
        raise NotImplementedError("task 7: Sum.forward")

    def backward(self, gy):
        raise NotImplementedError("task 7: Sum.backward")


# %%
check("engine_matmul_sum")


# %% [markdown]
# ## 8. ReLU, and a network end to end
#
# The paper's rectifier, $y = \max(x, 0)$, is the last piece. The check then
# runs your whole engine on a two-layer network,
# $h = \mathrm{relu}(x W_1 + b_1)$, $d = h W_2 + b_2 - t$,
# $E = \sum d \cdot d$, and compares $E$ and the gradients of $W_1, b_1, W_2,
# b_2$ and $x$ with minirect's.

# %%
print(exercises.describe("engine_mlp"))


# %%
# Yours: task 8 (engine_mlp)
class ReLU(Function):
    """y = max(x, 0); backward(gy) -> (gx,)."""

    def forward(self, x):
        raise NotImplementedError("task 8: ReLU.forward")

    def backward(self, gy):
        raise NotImplementedError("task 8: ReLU.backward")


# %%
check("engine_mlp")

# %% [markdown]
# ## Your engine trains a network
#
# Once every check passes, your engine is enough to train: the cell below fits
# a two-layer ReLU network to $t = \sin(\pi x_1)\,x_2$ on 64 points with plain
# gradient descent, every gradient computed by your `backward`. (Until then it
# says which tasks are left.)

# %%
missing = [name for name in TASKS if not done.get(name)]
if missing:
    print("finish the tasks above first; not passed yet:", ", ".join(missing))
else:
    E = my_engine()
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-1, 1, (64, 2))
    t = np.sin(np.pi * x[:, :1]) * x[:, 1:]
    W1, b1 = E.Tensor(rng.standard_normal((2, 32)) * np.sqrt(2 / 2)), E.Tensor(np.zeros(32))
    W2, b2 = E.Tensor(rng.standard_normal((32, 1)) * np.sqrt(2 / 32)), E.Tensor(np.zeros(1))
    params = [W1, b1, W2, b2]
    steps, lr = (200 if FAST else 2000), 0.1
    for step in range(steps + 1):
        h = E.ReLU.apply(E.Add.apply(E.MatMul.apply(E.Tensor(x), W1), b1))
        d = E.Add.apply(E.Add.apply(E.MatMul.apply(h, W2), b2), E.Tensor(-t))
        loss = E.Sum.apply(E.Mul.apply(d, d))
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data = p.data - lr / len(x) * p.grad      # gradient descent on the mean squared error
        if step == 0:
            first = float(loss.data) / len(x)
        if step % (steps // 4) == 0:
            print(f"step {step:4d}: mean squared error {float(loss.data) / len(x):.4f}")
    print(f"your engine trained a two-layer ReLU network: mean squared error {first:.4f} -> "
          f"{float(loss.data) / len(x):.4f}")

# %% [markdown]
# ## What next
#
# Open `minirect/autograd.py` and find your engine in it: `Tensor` with `data`,
# `grad` and `creator`; `Function.apply`, which also checks backends and
# dtypes and can switch recording off (`no_grad`); `_topological_order`;
# `chain_rule_steps`, your backward loop, which also frees the graph as it
# goes. The broadcasting operations and their `sum_to` are in
# `minirect/functional/basic.py`. The capstone of the track,
# `minirect exercises train student.py`, swaps your own functions into
# minirect and reproduces the paper's Figure 3 with them.
