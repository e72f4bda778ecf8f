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
# # Autograd from scratch
#
# A network's training step needs the gradient of one number, the loss $E$,
# with respect to every weight. minirect computes it by **reverse-mode automatic
# differentiation**: while the forward pass runs, every operation records itself
# as a node of a graph; `backward()` then walks that graph from the loss back
# to the inputs and applies the chain rule once per node.
#
# In this notebook we build a small expression, look at its graph, compute its
# gradients by hand, compare them with `backward()` and with finite differences
# (`minirect.gradcheck`), and finish with two practical details: gradients
# *accumulate*, and `no_grad()` switches the recording off.

# %% tags=["parameters"]
# Parameters (papermill style: this cell is tagged "parameters").
import os

FAST = os.environ.get("MINIRECT_NOTEBOOK_FAST", "0") == "1"   # tiny sizes: the test suite
DEVICE = os.environ.get("MINIRECT_DEVICE", "cpu")              # "cpu" or "cuda"
SEED = 0

# %%
# %matplotlib inline
import importlib.util

# minirect imports from any folder once installed. This cell installs nothing: where minirect
# is missing it stops and says how to install it (notebooks/README.md, "Running them").
if importlib.util.find_spec("minirect") is None:
    raise ModuleNotFoundError(
        "minirect is not installed in this environment. In a checkout of minirect: "
        "pip install -e '.[notebooks]'. On a hosted notebook service: build a wheel in a checkout "
        "(python -m build --wheel), upload dist/minirect-*.whl there and run "
        "%pip install minirect-*.whl in a cell, then restart the kernel.")

import matplotlib.pyplot as plt
import numpy as np

import minirect
import minirect.viz

minirect.use(DEVICE)
minirect.fast_paths(False)   # the reference path: the code in minirect/functional is what runs
minirect.seed(SEED)
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "font.size": 9})
print("minirect", minirect.__version__, minirect.versions())
print("device:", minirect.default_device(), "| default dtype:", minirect.tensor([0.0]).dtype,
      "| FAST:", FAST)

# %% [markdown]
# ## A small expression
#
# One neuron with a $\tanh$ and a squared error against a target $t$:
#
# $$
# s = \sum_i w_i x_i + b, \qquad y = \tanh(s), \qquad E = (y - t)^2 .
# $$
#
# The input $x$ is data (no gradient wanted); the weights $w$ and the bias $b$
# are what we differentiate, so they are created with `requires_grad=True`. We
# work in float64 so that the finite differences at the end are accurate. A
# tensor's `name` is only a label, used by the drawing.

# %%
x = minirect.tensor([1.0, -2.0, 3.0], dtype="float64")
w = minirect.tensor([0.5, -0.25, 0.1], dtype="float64", requires_grad=True)
b = minirect.tensor(0.2, dtype="float64", requires_grad=True)
t = 0.5
x.name, w.name, b.name = "x", "w", "b"

z = w * x               # elementwise product
s = z.sum() + b
y = s.tanh()
E = (y - t) ** 2
z.name, s.name, y.name, E.name = "z", "s", "y", "E"
print("s =", s.item(), " y =", y.item(), " E =", E.item())


# %% [markdown]
# ## The graph
#
# Every operation above is a `Function` (`Mul`, `Sum`, `Add`, `Tanh`, `Sub`,
# `Pow`). Applying one creates its output tensor and records two links:
# `output.creator` is the function, and `function.inputs` are its input tensors.
# Following these links backwards from `E` reaches every tensor that `E`
# depends on. `minirect.viz.graph_nodes` does exactly this walk and returns the
# nodes and edges as plain data; `minirect.viz.draw_graph` lays them out by
# their distance from the output (the output on the right).

# %%
def describe(v):
    if v.creator is not None:
        origin = f"made by {type(v.creator).__name__}"
    else:
        origin = "a leaf" if v.requires_grad else "a constant"
    return f"{v.name or 'unnamed'} = {np.round(v.numpy(), 4).tolist()} ({origin})"


print("E.creator =", type(E.creator).__name__)
for v in E.creator.inputs:
    print("   input:", describe(v))
graph = minirect.viz.graph_nodes(E)
tensors = [n for n in graph["nodes"] if n["kind"] == "tensor"]
functions = [n["op"] for n in graph["nodes"] if n["kind"] == "function"]
print(f"{len(tensors)} tensors, {len(functions)} functions, {len(graph['edges'])} edges:", functions)
minirect.viz.draw_graph(E)
plt.show()

# %% [markdown]
# The two constants (the exponent 2 and the target $t$) appear as grey leaves:
# Python numbers become tensors without gradient when they meet a tensor.
#
# ## Gradients by hand
#
# The chain rule, from the output back to the leaves:
#
# $$
# \frac{\partial E}{\partial y} = 2(y - t), \qquad
# \frac{\partial y}{\partial s} = 1 - \tanh^2(s) = 1 - y^2, \qquad
# \frac{\partial s}{\partial w_i} = x_i, \qquad \frac{\partial s}{\partial b} = 1,
# $$
#
# so, with $\delta = \partial E/\partial s = 2(y - t)(1 - y^2)$,
#
# $$
# \frac{\partial E}{\partial w_i} = \delta\, x_i, \qquad \frac{\partial E}{\partial b} = \delta .
# $$
#
# Reverse mode evaluates exactly this product *from the left*: it starts with
# $\partial E/\partial E = 1$, and each function turns the gradient of its output
# into gradients of its inputs (a vector–Jacobian product), visiting the
# functions in reverse topological order so that a tensor's gradient is complete
# before it is passed further down. Leaves with `requires_grad=True` receive the
# result in `.grad`. Intermediate tensors normally drop theirs; `retain_grad()`
# keeps them for inspection, and `retain_graph=True` keeps the graph so we can
# draw it again with the gradients.

# %%
y_, x_ = y.item(), x.numpy()
delta = 2 * (y_ - t) * (1 - y_ ** 2)
by_hand = {"w": delta * x_, "b": delta}

for v in (z, s, y):
    v.retain_grad()
E.backward(retain_graph=True)

print("dE/dw  by hand:", by_hand["w"], "\n       backward:", w.grad)
print("dE/db  by hand:", by_hand["b"], "\n       backward:", b.grad)
print("dE/ds (retained):", s.grad, " = delta:", delta)
assert np.allclose(minirect.backend.to_numpy(w.grad), by_hand["w"], rtol=1e-12)
assert np.allclose(minirect.backend.to_numpy(b.grad), by_hand["b"], rtol=1e-12)

minirect.viz.draw_graph(E)
plt.show()


# %% [markdown]
# ## Checking against finite differences
#
# The hand derivation and `backward()` agree, but both could share a mistake.
# An independent check is the central difference
#
# $$
# \frac{\partial E}{\partial w_i} \approx
# \frac{E(w + \varepsilon e_i) - E(w - \varepsilon e_i)}{2\varepsilon},
# $$
#
# whose error is $O(\varepsilon^2)$ from the Taylor expansion plus a rounding
# error of about $10^{-16}/\varepsilon$ in float64 (about $10^{-7}/\varepsilon$ in
# float32, too coarse to trust — which is why gradient checks run in float64).
# First by hand, then with `minirect.gradcheck`, which does the same for every
# element of every input that requires a gradient, for functions with any output
# shape (it differentiates $\sum f(\cdot) \odot r$ for a fixed random $r$).

# %%
def loss(w, b):
    return (((w * x).sum() + b).tanh() - t) ** 2

eps = 1e-6
numeric = np.zeros(3)
for i in range(3):
    step = np.zeros(3)
    step[i] = eps
    plus = loss(minirect.tensor(w.numpy() + step, device=DEVICE), b).item()
    minus = loss(minirect.tensor(w.numpy() - step, device=DEVICE), b).item()
    numeric[i] = (plus - minus) / (2 * eps)
print("central differences:", numeric)
print("max |backward - numeric| =", np.abs(minirect.backend.to_numpy(w.grad) - numeric).max())
assert np.allclose(minirect.backend.to_numpy(w.grad), numeric, atol=1e-8)

print("gradcheck(loss, w, b):", minirect.gradcheck(loss, w, b))


# %% [markdown]
# ## Writing a new operation
#
# A `Function` subclass defines `forward` and `backward` on raw arrays
# (`self.xp` is NumPy or CuPy, whichever holds the inputs). Take the softplus
# $f(u) = \log(1 + e^u)$: its derivative is $f'(u) = 1/(1 + e^{-u}) = \sigma(u)$,
# so backward multiplies the incoming gradient by $\sigma(u)$. gradcheck accepts
# the correct version and catches a typical slip (the derivative of $e^u$ instead
# of softplus):

# %%
class Softplus(minirect.Function):
    def forward(self, u):
        self.save_for_backward(u)
        return self.xp.logaddexp(0, u)            # log(1 + e^u), without overflow

    def backward(self, gy):
        (u,) = self.saved
        return gy / (1 + self.xp.exp(-u))         # gy * sigmoid(u)


class BrokenSoftplus(Softplus):
    def backward(self, gy):
        (u,) = self.saved
        return gy * self.xp.exp(u)                # wrong: that is the derivative of e^u


u = minirect.tensor(np.linspace(-3, 3, 7), dtype="float64", device=DEVICE, requires_grad=True)
print("Softplus:", minirect.gradcheck(lambda v: Softplus.apply(v), u))
try:
    minirect.gradcheck(lambda v: BrokenSoftplus.apply(v), u)
except minirect.GradcheckError as err:
    print("BrokenSoftplus:", err)

# %% [markdown]
# ## A tensor used twice
#
# When a tensor feeds several functions, the multivariable chain rule *adds*
# the contributions of all paths: for $q = u \cdot \sigma(u)$ (the "swish"),
# $dq/du = \sigma(u) + u\,\sigma(u)(1 - \sigma(u))$ — one term through each input of
# the product. The engine gets this right by processing the functions in
# reverse topological order: the gradient arriving at $u$ from `Mul` and from
# `Sigmoid` is summed before it moves on. In the drawing, $u$ has two outgoing
# arrows.

# %%
a = minirect.tensor(0.7, dtype="float64", requires_grad=True)
u2 = a * 2.0
q = u2 * u2.sigmoid()
a.name, u2.name, q.name = "a", "u", "q"
minirect.viz.draw_graph(q)
plt.show()
q.backward()
sig = 1 / (1 + np.exp(-1.4))
by_hand = 2 * (sig + 1.4 * sig * (1 - sig))           # dq/du · du/da
print("dq/da by hand:", by_hand, " backward:", a.grad.item())
assert abs(a.grad.item() - by_hand) < 1e-12

# %% [markdown]
# ## Stepping through `backward()`
#
# `backward()` does all of the above in one call. `minirect.viz.backward_steps(loss)`
# replays it one function at a time, in exactly the order `backward()` uses
# (reverse topological, from the loss to the leaves), without writing to any
# `.grad` and without freeing the graph. Each step is a `BackwardStep` with
#
# * `grad_outputs`: the gradient arriving at the function's output — already
#   the *sum* over every function that consumed it, since all of those come
#   earlier in the order;
# * `grad_inputs`: what the function's `backward` sends to each input (its
#   vector–Jacobian product; `None` for an input that needs no gradient);
# * `leaf_grads`: the gradients the leaves have accumulated so far.
#
# We rebuild the neuron with fresh leaves (the ones above already hold
# gradients) and name the intermediate tensors, so that the printout says
# where each gradient goes. `format_step` writes one step as text:

# %%
w_s = minirect.tensor(w.numpy(), dtype="float64", device=DEVICE, requires_grad=True)
b_s = minirect.tensor(b.numpy(), dtype="float64", device=DEVICE, requires_grad=True)
w_s.name, b_s.name = "w", "b"
z_s = w_s * x
s_s = z_s.sum() + b_s
y_s = s_s.tanh()
E_s = (y_s - t) ** 2
z_s.name, s_s.name, y_s.name, E_s.name = "z", "s", "y", "E"

steps = list(minirect.viz.backward_steps(E_s))
print(len(steps), "steps, in backward()'s order:", " -> ".join(step.op for step in steps))
print()
print(minirect.viz.format_step(steps[2], count=len(steps)))    # the Tanh step
tanh_step = steps[2]
assert tanh_step.op == "Tanh"
# the Tanh step multiplies the arriving dE/dy = 2(y - t) by 1 - y², giving delta = dE/ds
assert np.allclose(minirect.backend.to_numpy(tanh_step.grad_inputs[0]), delta, rtol=1e-12)

# %% [markdown]
# `draw_step` draws the graph with the step's function framed in red and the
# gradient arriving at it in the title. Here the Add step, where $b$ receives
# its gradient (the first leaf to do so):

# %%
add_step = next(step for step in steps if step.op == "Add")
minirect.viz.draw_step(E_s, add_step, count=len(steps))
plt.show()
print(minirect.viz.format_step(add_step, count=len(steps)))

# %% [markdown]
# `step_through(loss)` puts the two together: in Jupyter with `ipywidgets`
# installed (the `notebooks` extra) it returns a slider over the steps that
# redraws the graph with the active function highlighted and prints its
# `format_step`; without ipywidgets it prints every step instead (the output
# stored here). Drag the slider from step 1 to the last and watch the
# gradient travel from $E$ back to $w$ and $b$.

# %%
from IPython.display import display

stepper = minirect.viz.step_through(E_s)     # a slider widget, or the printed steps (a list)
if not isinstance(stepper, list):
    display(stepper)

# %% [markdown]
# The same graph as [Graphviz](https://graphviz.org) DOT text, for slides or a
# whiteboard handout: `to_dot` returns the text (tensors as rounded boxes,
# functions as plain boxes, the colours of `draw_graph`, `highlight=` frames
# nodes in red), and `render_dot` turns it into a `graphviz.Source` that draws
# itself in a notebook (it needs the optional `graphviz` package and Graphviz's
# `dot` program, so this cell draws only where both are installed).

# %%
import importlib.util
import shutil

dot = minirect.viz.to_dot(E_s, highlight=[add_step.function])
print(dot)
if importlib.util.find_spec("graphviz") and shutil.which("dot"):
    display(minirect.viz.render_dot(E_s, highlight=[add_step.function]))

# %% [markdown]
# Finally, the promise: the last step's leaf gradients are what `backward()`
# puts into `.grad`.

# %%
E_s.backward()
last = steps[-1].leaf_grads
for leaf in (w_s, b_s):
    print(f"{leaf.name}: last step {minirect.backend.to_numpy(last[leaf])}   .grad {leaf.grad}")
    assert np.array_equal(minirect.backend.to_numpy(last[leaf]), minirect.backend.to_numpy(leaf.grad))
print("last step's leaf gradients == .grad after backward(): True")

# %% [markdown]
# ## Gradients accumulate
#
# `backward()` **adds** into `.grad` rather than overwriting it. Two passes
# over the same graph give twice the gradient — which is why a training loop
# calls `optimizer.zero_grad()` (or sets `.grad = None`) before each backward.
# The same property lets a large batch be processed in pieces: the mean loss
# over $N$ samples is $\sum_k (N_k/N)\, E_k$ over pieces of size $N_k$, so
# backward on each weighted piece accumulates exactly the full-batch gradient.
#
# By default `backward()` also **frees the graph** (it releases the arrays each
# function saved, and the links to its inputs) — a training step never needs it
# twice. Calling `backward()` through a freed graph raises an error that says
# what to do; the drawing marks freed functions.

# %%
w.grad = b.grad = None
E.backward(retain_graph=True)
once = w.grad.copy()
E.backward()                        # second pass: adds; frees the graph this time
print("after one backward:", once, "\nafter two:         ", w.grad)
assert np.allclose(minirect.backend.to_numpy(w.grad), 2 * minirect.backend.to_numpy(once))

try:
    E.backward()
except RuntimeError as err:
    print("\nthird backward:", err)
freed = minirect.viz.graph_nodes(E)
print("\nnodes of the freed graph:", [n["label"].replace("\n", " ") for n in freed["nodes"]])

# A batch in two pieces: the accumulated gradient equals the full-batch gradient.
rng = np.random.default_rng(SEED)
X = minirect.tensor(rng.standard_normal((6, 3)), device=DEVICE)
T = minirect.tensor(rng.standard_normal(6), device=DEVICE)
v = minirect.tensor(rng.standard_normal(3), device=DEVICE, requires_grad=True)

def mean_squared_error(rows):
    return (((X[rows] * v).sum(axis=1) - T[rows]) ** 2).mean()

mean_squared_error(slice(0, 6)).backward()
full = v.grad.copy()
v.grad = None
for rows in (slice(0, 4), slice(4, 6)):
    n = rows.stop - rows.start
    (mean_squared_error(rows) * (n / 6)).backward()
print("\nfull batch:", full, "\ntwo pieces:", v.grad)
assert np.allclose(minirect.backend.to_numpy(v.grad), minirect.backend.to_numpy(full), rtol=1e-5)

# %% [markdown]
# ## Switching the recording off: `no_grad`
#
# Evaluation and the optimizer's update need no gradients, and recording a
# graph for them would keep every intermediate array alive for nothing. Inside
# `with minirect.no_grad():` functions compute their result but record nothing:
# the result has no creator and does not require a gradient. (`detach()` does
# the same for a single tensor: same data, cut from the graph.)

# %%
with minirect.no_grad():
    print("inside no_grad: is_grad_enabled() =", minirect.is_grad_enabled())
    s_eval = (w * x).sum() + b
print("outside:        is_grad_enabled() =", minirect.is_grad_enabled())
print("s_eval.requires_grad =", s_eval.requires_grad, "| s_eval.creator =", s_eval.creator)
assert s_eval.creator is None and not s_eval.requires_grad

s_train = (w * x).sum() + b
print("s_train.requires_grad =", s_train.requires_grad, "| s_train.creator =",
      type(s_train.creator).__name__)
print("detach():", s_train.detach().creator)

# %% [markdown]
# ## Summary
#
# * Each operation records a `Function` node: `tensor.creator` and
#   `function.inputs` are the whole graph (`minirect.viz` draws it).
# * `backward()` applies the chain rule node by node in reverse topological
#   order; contributions of several paths add up.
# * Check gradients against central differences in float64 —
#   `minirect.gradcheck` — whenever a new `Function` is written.
# * `minirect.viz.backward_steps` replays `backward()` one function at a
#   time (`format_step`, `draw_step`, `step_through`, `to_dot`); its last
#   step's leaf gradients are `backward()`'s.
# * `.grad` accumulates; the graph is freed after `backward()` unless
#   `retain_graph=True`; `no_grad()` records nothing.
#
# The derivations of every built-in function's backward pass are in
# `docs/derivations/`.
