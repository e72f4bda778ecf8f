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
# # Exercises that grade themselves
#
# Fifteen exercises, from the product rule to the paper's initialization and
# update rule. Each asks for a small **pure function on NumPy arrays** that
# returns its results; `minirect.exercises` checks it on seeded cases against
# minirect's own engine (its autograd, `minirect.functional`, `minirect.init`,
# `minirect.optim`) and, for every gradient, against float64 central
# differences of the forward pass. On a wrong answer the check says which
# output, which element, the expected and the actual value, and a hint when the
# mistake is a usual one.
#
# For each exercise below: `exercises.describe(name)` prints the task, the
# signature and the math to derive; the next cell is **yours** — it starts as a
# stub that raises `NotImplementedError`; `exercises.check(name, fn)` grades it
# and prints a one-line verdict (a stub fails, without stopping the notebook);
# the last cell shows the reference, `exercises.solution(name)`, and checks it.
# Students hide that cell with `SHOW_SOLUTIONS = False` in the parameters. The
# same tasks with their solutions are in the documentation (`docs/exercises.md`).

# %% tags=["parameters"]
# Parameters (papermill style: this cell is tagged "parameters").
import os

FAST = os.environ.get("MINIRECT_NOTEBOOK_FAST", "0") == "1"   # the test suite (the checks are fast anyway)
DEVICE = os.environ.get("MINIRECT_DEVICE", "cpu")              # "cpu" or "cuda" (the exercises use NumPy)
SEED = 0
SHOW_SOLUTIONS = True   # False: a student's copy, without the reference solutions

# %%
import importlib.util
import subprocess
import sys

# minirect imports from any folder once installed (`pip install -e ".[notebooks]"` in a checkout).
# Where it is not (a hosted notebook service), this installs it from its repository, setup.cfg's url.
MINIRECT_URL = "https://github.com/minirect/minirect"
if importlib.util.find_spec("minirect") is None:
    print(f"minirect is not installed in this environment: installing it with pip from {MINIRECT_URL}")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", f"git+{MINIRECT_URL}"])
    importlib.invalidate_caches()

import inspect

import numpy as np  # noqa: F401  (for your answers below)

import minirect
from minirect import exercises

minirect.use(DEVICE)
minirect.seed(SEED)
print("minirect", minirect.__version__, minirect.versions())
print("device:", minirect.default_device(), "| default dtype:", minirect.tensor([0.0]).dtype,
      "| FAST:", FAST)

# %% [markdown]
# ## How a check reads
#
# `exercises.names()` lists the exercises in order. Here is the first one
# answered three ways: not at all (the stub), with a typical mistake (the two
# factors swapped), and correctly. `check` returns a `Verdict` that is truthy
# only when every case passed, so `assert exercises.check(...)` works in a
# test file too.

# %%
print(len(exercises.names()), "exercises:", ", ".join(exercises.names()))


def mul_stub(a, b, gy):
    raise NotImplementedError("write mul_backward")


def mul_swapped(a, b, gy):
    return gy * a, gy * b          # wrong: each factor's gradient is gy times the *other* factor


def mul_right(a, b, gy):
    return gy * b, gy * a


for fn in (mul_stub, mul_swapped, mul_right):
    verdict = exercises.check("mul_backward", fn)
    print("   -> bool(verdict) =", bool(verdict), "\n")

# %% [markdown]
# A helper for the teacher's cells: print the reference solution's source and
# check it.

# %%
verdicts = {}     # your verdicts, summed up at the end


def show_solution(name):
    """The reference solution of exercise `name`, and its verdict (hidden if SHOW_SOLUTIONS is False)."""
    if not SHOW_SOLUTIONS:
        print("(solution hidden: SHOW_SOLUTIONS = False)")
        return
    reference = exercises.solution(name)
    print(inspect.getsource(reference))
    assert exercises.check(name, reference)

# %% [markdown]
# ## Part 1: the first backward passes
#
# ### `mul_backward`: Mul backward
#
# The product rule: each factor's gradient is the incoming gradient times the
# *other* factor. Both operands have the same shape here (broadcasting is the
# next exercise's business).

# %%
print(exercises.describe("mul_backward"))

# %%
def mul_backward(a, b, gy):
    # Your code here (NumPy); return ga, gb.
    raise NotImplementedError("mul_backward: replace this line with your code")

# %%
verdicts["mul_backward"] = exercises.check("mul_backward", mul_backward)

# %%
show_solution("mul_backward")

# %% [markdown]
# ### `div_backward`: Div backward
#
# The quotient rule, written as two partial derivatives of $y = a/b$.

# %%
print(exercises.describe("div_backward"))

# %%
def div_backward(a, b, gy):
    # Your code here (NumPy); return ga, gb.
    raise NotImplementedError("div_backward: replace this line with your code")

# %%
verdicts["div_backward"] = exercises.check("div_backward", div_backward)

# %%
show_solution("div_backward")

# %% [markdown]
# ### `sum_to`: Broadcasting: sum a gradient back to its operand's shape
#
# When an operand was broadcast in the forward pass, its gradient has the
# *output's* shape and must be summed back to the operand's: over the leading
# axes that broadcasting added and over the axes where the operand had size 1.
# minirect does this in one helper, `sum_to`, used by every elementwise op.

# %%
print(exercises.describe("sum_to"))

# %%
def sum_to(g, shape):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("sum_to: replace this line with your code")

# %%
verdicts["sum_to"] = exercises.check("sum_to", sum_to)

# %%
show_solution("sum_to")

# %% [markdown]
# ### `matmul_backward`: MatMul backward
#
# For $Y = AB$: $\partial E/\partial A = G B^\top$ and $\partial E/\partial B =
# A^\top G$. A shape check catches most mistakes: the gradient of a matrix has
# that matrix's shape.

# %%
print(exercises.describe("matmul_backward"))

# %%
def matmul_backward(a, b, gy):
    # Your code here (NumPy); return ga, gb.
    raise NotImplementedError("matmul_backward: replace this line with your code")

# %%
verdicts["matmul_backward"] = exercises.check("matmul_backward", matmul_backward)

# %%
show_solution("matmul_backward")

# %% [markdown]
# ## Part 2: rectifiers (Sec. 2.1 of the paper)
#
# ### `relu_backward`: ReLU backward
#
# ReLU passes the gradient where its input was positive. At exactly $x = 0$ the
# derivative is a convention; minirect and PyTorch take 0.

# %%
print(exercises.describe("relu_backward"))

# %%
def relu_backward(x, gy):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("relu_backward: replace this line with your code")

# %%
verdicts["relu_backward"] = exercises.check("relu_backward", relu_backward)

# %%
show_solution("relu_backward")

# %% [markdown]
# ### `leaky_relu_backward`: Leaky ReLU backward
#
# A fixed slope on the negative side: the gradient there is scaled, not blocked.

# %%
print(exercises.describe("leaky_relu_backward"))

# %%
def leaky_relu_backward(x, gy, slope):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("leaky_relu_backward: replace this line with your code")

# %%
verdicts["leaky_relu_backward"] = exercises.check("leaky_relu_backward", leaky_relu_backward)

# %%
show_solution("leaky_relu_backward")

# %% [markdown]
# ### `prelu_backward`: PReLU backward, channel-wise (Eq. 2)
#
# The paper's PReLU (Eq. 1) with one learned coefficient $a_c$ per channel. Its
# gradient (Eq. 2) sums over every position *and* every sample that share $a_c$.

# %%
print(exercises.describe("prelu_backward"))

# %%
def prelu_backward(x, a, gy):
    # Your code here (NumPy); return gx, ga.
    raise NotImplementedError("prelu_backward: replace this line with your code")

# %%
verdicts["prelu_backward"] = exercises.check("prelu_backward", prelu_backward)

# %%
show_solution("prelu_backward")

# %% [markdown]
# ### `prelu_shared_backward`: PReLU backward, channel-shared
#
# The channel-shared variant: one coefficient for the whole layer, so its
# gradient sums over the channels as well.

# %%
print(exercises.describe("prelu_shared_backward"))

# %%
def prelu_shared_backward(x, a, gy):
    # Your code here (NumPy); return gx, ga.
    raise NotImplementedError("prelu_shared_backward: replace this line with your code")

# %%
verdicts["prelu_shared_backward"] = exercises.check("prelu_shared_backward", prelu_shared_backward)

# %%
show_solution("prelu_shared_backward")

# %% [markdown]
# ## Part 3: pooling and convolution
#
# ### `max_pool2d_backward`: Max pooling backward, with ties
#
# Max pooling routes each window's gradient to the pixel that won the max. With
# ties the engine sends it to one winner only (the first in the window), so the
# gradient keeps its sum.

# %%
print(exercises.describe("max_pool2d_backward"))

# %%
def max_pool2d_backward(x, gy, kernel_size, stride):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("max_pool2d_backward: replace this line with your code")

# %%
verdicts["max_pool2d_backward"] = exercises.check("max_pool2d_backward", max_pool2d_backward)

# %%
show_solution("max_pool2d_backward")

# %% [markdown]
# ### `im2col`: im2col: the patches of an image as matrix columns
#
# conv2d as one matrix product starts by copying every $k_h \times k_w$ patch of
# the (padded) input into a column. Notebook `02_convolution` derives the
# layout.

# %%
print(exercises.describe("im2col"))

# %%
def im2col(x, kh, kw, stride, padding):
    # Your code here (NumPy); return cols.
    raise NotImplementedError("im2col: replace this line with your code")

# %%
verdicts["im2col"] = exercises.check("im2col", im2col)

# %%
show_solution("im2col")

# %% [markdown]
# ### `conv2d_forward`: conv2d forward by im2col and one matrix product
#
# With the patches as columns, a convolution is one GEMM with the weights
# reshaped to $d \times (c k_h k_w)$, plus the bias. You may call your `im2col`
# from above.

# %%
print(exercises.describe("conv2d_forward"))

# %%
def conv2d_forward(x, W, b, stride, padding):
    # Your code here (NumPy); return y.
    raise NotImplementedError("conv2d_forward: replace this line with your code")

# %%
verdicts["conv2d_forward"] = exercises.check("conv2d_forward", conv2d_forward)

# %%
show_solution("conv2d_forward")

# %% [markdown]
# ### `conv2d_backward`: conv2d backward: dE/dx and dE/dW
#
# Backward through the GEMM: $\partial E/\partial W$ is the incoming gradient
# times the columns transposed, and $\partial E/\partial x$ goes back through
# the transposed weights and `col2im`, which *adds* overlapping patches.

# %%
print(exercises.describe("conv2d_backward"))

# %%
def conv2d_backward(x, W, gy, stride, padding):
    # Your code here (NumPy); return gx, gW.
    raise NotImplementedError("conv2d_backward: replace this line with your code")

# %%
verdicts["conv2d_backward"] = exercises.check("conv2d_backward", conv2d_backward)

# %%
show_solution("conv2d_backward")

# %% [markdown]
# ## Part 4: the loss, the initialization and the update
#
# ### `softmax_cross_entropy_backward`: Softmax cross-entropy backward
#
# The softmax followed by the mean cross-entropy has the famously simple
# gradient $(p - \text{onehot}(t))/N$.

# %%
print(exercises.describe("softmax_cross_entropy_backward"))

# %%
def softmax_cross_entropy_backward(logits, labels):
    # Your code here (NumPy); return gx.
    raise NotImplementedError("softmax_cross_entropy_backward: replace this line with your code")

# %%
verdicts["softmax_cross_entropy_backward"] = exercises.check(
    "softmax_cross_entropy_backward", softmax_cross_entropy_backward)

# %%
show_solution("softmax_cross_entropy_backward")

# %% [markdown]
# ### `msra_std`: The MSRA std (Eq. 10, 14, 15)
#
# The paper's initialization (Eq. 10 forward, Eq. 14 backward, Eq. 15 for
# PReLU): from a weight's shape, its fan-in $n = k^2 c$ or fan-out $\hat n = k^2
# d$, and the initial slope $a$. Notebook `04_initialization` derives it.

# %%
print(exercises.describe("msra_std"))

# %%
def msra_std(shape, a, mode):
    # Your code here (NumPy); return std.
    raise NotImplementedError("msra_std: replace this line with your code")

# %%
verdicts["msra_std"] = exercises.check("msra_std", msra_std)

# %%
show_solution("msra_std")

# %% [markdown]
# ### `sgd_step`: SGD with momentum (Eq. 4), no decay on PReLU coefficients
#
# Eq. 4 of the paper, momentum SGD, with weight decay on the weights but not on
# the PReLU coefficients (the paper's Sec. 2.1). Return new arrays: the exercise
# is a pure function.

# %%
print(exercises.describe("sgd_step"))

# %%
def sgd_step(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    # Your code here (NumPy); return W, vW, a, va.
    raise NotImplementedError("sgd_step: replace this line with your code")

# %%
verdicts["sgd_step"] = exercises.check("sgd_step", sgd_step)

# %%
show_solution("sgd_step")

# %% [markdown]
# ## Your score
#
# The verdicts of your functions above (a fresh copy of this notebook: every
# stub fails).

# %%
passed = [name for name, verdict in verdicts.items() if verdict]
print(f"{len(passed)} of {len(verdicts)} exercises passed" + (f": {', '.join(passed)}" if passed else ""))

# %% [markdown]
# ## Grading a student's file
#
# A teacher collects one Python file per student, whose functions are **named
# like the exercises** (other helpers are ignored), and grades it with one
# command:
#
# ```bash
# minirect exercises check student.py                     # every exercise
# minirect exercises check student.py --only relu_backward msra_std
# minirect exercises list                                 # names and titles
# minirect exercises describe conv2d_backward             # the task and the math
# ```
#
# It prints one verdict per exercise (`PASS`, `FAIL` with the hint, or
# `MISSING`) and a summary, and exits with status 0 only when every selected
# exercise is defined and passes — usable in a CI job or a grading script. The
# file is imported, so it runs as Python code: grade files you would run. Here a
# small student file, written to a temporary folder: one right answer, two
# usual mistakes, and one exercise left out.

# %%
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

STUDENT = textwrap.dedent("""
    import math

    import numpy as np


    def mul_backward(a, b, gy):
        return gy * b, gy * a


    def relu_backward(x, gy):
        return gy * (x >= 0)                  # the derivative at 0 should be 0


    def msra_std(shape, a, mode):
        d, c = shape[0], shape[1]
        k2 = int(np.prod(shape[2:]))
        n = c * k2 if mode == "fan_in" else d * k2
        return math.sqrt(1 / ((1 + a * a) * n))   # forgot the 2 of Eq. 10
""")

with tempfile.TemporaryDirectory() as folder:
    student = Path(folder) / "student.py"
    student.write_text(STUDENT)
    command = ["minirect", "exercises", "check", "student.py",
               "--only", "mul_backward", "relu_backward", "msra_std", "sgd_step"]
    print("$", " ".join(command))
    # `python -m minirect` is the same command, for the interpreter running this notebook
    done = subprocess.run([sys.executable, "-m", *command], cwd=folder, capture_output=True, text=True)
    print(done.stdout + done.stderr, end="")
    print("exit status:", done.returncode)
    assert done.returncode == 1

    # The same from Python: {name: Verdict, or None when the file does not define it}
    grades = exercises.grade_file(student, only=["mul_backward", "msra_std"])
    print({name: bool(verdict) for name, verdict in grades.items()})

# %% [markdown]
# Under pytest, the verdict's truth value is the assertion:
#
# ```python
# # test_student.py
# from minirect import exercises
# import student
#
# def test_prelu_backward():
#     assert exercises.check("prelu_backward", student.prelu_backward)
# ```
