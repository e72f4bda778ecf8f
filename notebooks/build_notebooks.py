"""Write the teaching notebooks from the cells below, then execute them.

    python notebooks/build_notebooks.py              # write and run all (default setting)
    python notebooks/build_notebooks.py 03_prelu     # only the notebooks whose name matches
    python notebooks/build_notebooks.py --no-execute # write without outputs
    python notebooks/build_notebooks.py --fast       # run in the FAST setting (a quick check;
                                                      # do not commit those outputs)

The notebooks are stored with the outputs of their default setting (the
documentation renders them without re-executing). Each cell is written here as
plain text, so a change to a notebook is a change to this file; run it from
anywhere, with the environment that should execute the notebooks (it needs
nbformat, nbclient and ipykernel; the kernel is this interpreter's).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, tags=()):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def parameters(full: bool = True, comment: str = ""):
    lines = [
        "# Parameters (papermill style: this cell is tagged \"parameters\").",
        "import os",
        "",
        "FAST = os.environ.get(\"MINIRECT_NOTEBOOK_FAST\", \"0\") == \"1\"   # tiny sizes: the test suite",
        "DEVICE = os.environ.get(\"MINIRECT_DEVICE\", \"cpu\")              # \"cpu\" or \"cuda\"",
        "SEED = 0",
    ]
    if full:
        note = f": {comment}" if comment else ""
        lines.append("FULL = False   # the larger setting, meant for a GPU" + note)
    return code("\n".join(lines), tags=["parameters"])


SETUP = r'''
%matplotlib inline
import sys

import numpy as np
import matplotlib.pyplot as plt

try:
    import minirect
except ImportError:          # a checkout without `pip install -e .`: use the repository
    sys.path.insert(0, os.path.abspath(".."))
    import minirect
{imports}
minirect.use(DEVICE)
minirect.seed(SEED)
plt.rcParams.update({{"figure.dpi": 80, "savefig.dpi": 80, "font.size": 9}})
print("minirect", minirect.__version__, minirect.versions())
print("device:", minirect.default_device(), "| default dtype:", minirect.tensor([0.0]).dtype,
      "| FAST:", FAST{full})
'''


def setup(imports: str, full: bool = True):
    return code(SETUP.format(imports=imports, full=', "| FULL:", FULL' if full else ""))


# =============================================================================
# 01 · Autograd from scratch
# =============================================================================

def nb_autograd():
    return [
        md(r'''
# Autograd from scratch

A network's training step needs the gradient of one number, the loss $E$,
with respect to every weight. minirect computes it by **reverse-mode automatic
differentiation**: while the forward pass runs, every operation records itself
as a node of a graph; `backward()` then walks that graph from the loss back
to the inputs and applies the chain rule once per node.

In this notebook we build a small expression, look at its graph, compute its
gradients by hand, compare them with `backward()` and with finite differences
(`minirect.gradcheck`), and finish with two practical details: gradients
*accumulate*, and `no_grad()` switches the recording off.
'''),
        parameters(full=False),
        setup("import minirect.functional as F\nimport minirect.viz", full=False),
        md(r'''
## A small expression

One neuron with a $\tanh$ and a squared error against a target $t$:

$$
s = \sum_i w_i x_i + b, \qquad y = \tanh(s), \qquad E = (y - t)^2 .
$$

The input $x$ is data (no gradient wanted); the weights $w$ and the bias $b$
are what we differentiate, so they are created with `requires_grad=True`. We
work in float64 so that the finite differences at the end are accurate. A
tensor's `name` is only a label, used by the drawing.
'''),
        code(r'''
x = minirect.tensor([1.0, -2.0, 3.0], dtype="float64")
w = minirect.tensor([0.5, -0.25, 0.1], dtype="float64", requires_grad=True)
b = minirect.tensor(0.2, dtype="float64", requires_grad=True)
t = 0.5
x.name, w.name, b.name = "x", "w", "b"

z = w * x;         z.name = "z"      # elementwise product
s = z.sum() + b;   s.name = "s"
y = s.tanh();      y.name = "y"
E = (y - t) ** 2;  E.name = "E"
print("s =", s.item(), " y =", y.item(), " E =", E.item())
'''),
        md(r'''
## The graph

Every operation above is a `Function` (`Mul`, `Sum`, `Add`, `Tanh`, `Sub`,
`Pow`). Applying one creates its output tensor and records two links:
`output.creator` is the function, and `function.inputs` are its input tensors.
Following these links backwards from `E` reaches every tensor that `E`
depends on. `minirect.viz.graph_nodes` does exactly this walk and returns the
nodes and edges as plain data; `minirect.viz.draw_graph` lays them out by
their distance from the output (the output on the right).
'''),
        code(r'''
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
'''),
        md(r'''
The two constants (the exponent 2 and the target $t$) appear as grey leaves:
Python numbers become tensors without gradient when they meet a tensor.

## Gradients by hand

The chain rule, from the output back to the leaves:

$$
\frac{\partial E}{\partial y} = 2(y - t), \qquad
\frac{\partial y}{\partial s} = 1 - \tanh^2(s) = 1 - y^2, \qquad
\frac{\partial s}{\partial w_i} = x_i, \qquad \frac{\partial s}{\partial b} = 1,
$$

so, with $\delta = \partial E/\partial s = 2(y - t)(1 - y^2)$,

$$
\frac{\partial E}{\partial w_i} = \delta\, x_i, \qquad \frac{\partial E}{\partial b} = \delta .
$$

Reverse mode evaluates exactly this product *from the left*: it starts with
$\partial E/\partial E = 1$, and each function turns the gradient of its output
into gradients of its inputs (a vector–Jacobian product), visiting the
functions in reverse topological order so that a tensor's gradient is complete
before it is passed further down. Leaves with `requires_grad=True` receive the
result in `.grad`. Intermediate tensors normally drop theirs; `retain_grad()`
keeps them for inspection, and `retain_graph=True` keeps the graph so we can
draw it again with the gradients.
'''),
        code(r'''
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
'''),
        md(r'''
## Checking against finite differences

The hand derivation and `backward()` agree, but both could share a mistake.
An independent check is the central difference

$$
\frac{\partial E}{\partial w_i} \approx \frac{E(w + \varepsilon e_i) - E(w - \varepsilon e_i)}{2\varepsilon},
$$

whose error is $O(\varepsilon^2)$ from the Taylor expansion plus a rounding
error of about $10^{-16}/\varepsilon$ in float64 (about $10^{-7}/\varepsilon$ in
float32, too coarse to trust — which is why gradient checks run in float64).
First by hand, then with `minirect.gradcheck`, which does the same for every
element of every input that requires a gradient, for functions with any output
shape (it differentiates $\sum f(\cdot) \odot r$ for a fixed random $r$).
'''),
        code(r'''
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
'''),
        md(r'''
## Writing a new operation

A `Function` subclass defines `forward` and `backward` on raw arrays
(`self.xp` is NumPy or CuPy, whichever holds the inputs). Take the softplus
$f(u) = \log(1 + e^u)$: its derivative is $f'(u) = 1/(1 + e^{-u}) = \sigma(u)$,
so backward multiplies the incoming gradient by $\sigma(u)$. gradcheck accepts
the correct version and catches a typical slip (the derivative of $e^u$ instead
of softplus):
'''),
        code(r'''
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
'''),
        md(r'''
## A tensor used twice

When a tensor feeds several functions, the multivariable chain rule *adds*
the contributions of all paths: for $q = u \cdot \sigma(u)$ (the "swish"),
$dq/du = \sigma(u) + u\,\sigma(u)(1 - \sigma(u))$ — one term through each input of
the product. The engine gets this right by processing the functions in
reverse topological order: the gradient arriving at $u$ from `Mul` and from
`Sigmoid` is summed before it moves on. In the drawing, $u$ has two outgoing
arrows.
'''),
        code(r'''
a = minirect.tensor(0.7, dtype="float64", requires_grad=True); a.name = "a"
u2 = a * 2.0;            u2.name = "u"
q = u2 * u2.sigmoid();   q.name = "q"
minirect.viz.draw_graph(q)
plt.show()
q.backward()
sig = 1 / (1 + np.exp(-1.4))
by_hand = 2 * (sig + 1.4 * sig * (1 - sig))           # dq/du · du/da
print("dq/da by hand:", by_hand, " backward:", a.grad.item())
assert abs(a.grad.item() - by_hand) < 1e-12
'''),
        md(r'''
## Gradients accumulate

`backward()` **adds** into `.grad` rather than overwriting it. Two passes
over the same graph give twice the gradient — which is why a training loop
calls `optimizer.zero_grad()` (or sets `.grad = None`) before each backward.
The same property lets a large batch be processed in pieces: the mean loss
over $N$ samples is $\sum_k (N_k/N)\, E_k$ over pieces of size $N_k$, so
backward on each weighted piece accumulates exactly the full-batch gradient.

By default `backward()` also **frees the graph** (it releases the arrays each
function saved, and the links to its inputs) — a training step never needs it
twice. Calling `backward()` through a freed graph raises an error that says
what to do; the drawing marks freed functions.
'''),
        code(r'''
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
'''),
        md(r'''
## Switching the recording off: `no_grad`

Evaluation and the optimizer's update need no gradients, and recording a
graph for them would keep every intermediate array alive for nothing. Inside
`with minirect.no_grad():` functions compute their result but record nothing:
the result has no creator and does not require a gradient. (`detach()` does
the same for a single tensor: same data, cut from the graph.)
'''),
        code(r'''
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
'''),
        md(r'''
## Summary

* Each operation records a `Function` node: `tensor.creator` and
  `function.inputs` are the whole graph (`minirect.viz` draws it).
* `backward()` applies the chain rule node by node in reverse topological
  order; contributions of several paths add up.
* Check gradients against central differences in float64 —
  `minirect.gradcheck` — whenever a new `Function` is written.
* `.grad` accumulates; the graph is freed after `backward()` unless
  `retain_graph=True`; `no_grad()` records nothing.

The derivations of every built-in function's backward pass are in
`docs/derivations/`.
'''),
    ]


# =============================================================================
# 02 · Convolution as im2col + GEMM
# =============================================================================

def nb_convolution():
    return [
        md(r'''
# Convolution as im2col + GEMM

A convolution layer slides each of its $D$ filters over the input and takes
a dot product at every position. Written as loops that is slow; minirect
(like Caffe, whose layers the paper used) instead copies every input patch
into a column of a matrix — **im2col** — and computes all dot products as a
single matrix product (GEMM), which BLAS or cuBLAS runs near the machine's
peak speed. This notebook shows the column matrix, derives the backward pass
in the same matrix language (it needs **col2im**, the adjoint of im2col),
checks everything numerically, illustrates the spatial pyramid pooling (SPP)
of the paper's models, and times the layer.
'''),
        parameters(comment="larger layers in the timing"),
        setup("import time\n\nimport minirect.functional as F\nfrom minirect.backend import to_numpy"),
        md(r'''
## The column matrix

With input $x$ of shape $(N, C, H, W)$, kernels $W$ of shape $(D, C, k_h, k_w)$,
stride $s$ and zero padding $p$ (padded input $x_{pad}$), the output is

$$
y[n, d, o_h, o_w] = b_d + \sum_{c, i, j} W[d, c, i, j]\; x_{pad}[n, c,\, o_h s + i,\, o_w s + j],
\qquad O_H = \left\lfloor \frac{H + 2p - k_h}{s} \right\rfloor + 1 .
$$

im2col puts the patch under output position $(n, o_h, o_w)$ into one column:

$$
\mathrm{cols}[(c, i, j),\, (n, o_h, o_w)] = x_{pad}[n, c,\, o_h s + i,\, o_w s + j],
\qquad \mathrm{cols} \in \mathbb{R}^{C k_h k_w \times N O_H O_W},
$$

so that with $W_m$ = `W.reshape(D, C·kh·kw)` the whole layer is one product,

$$
Y = W_m\, \mathrm{cols} + b \;\in\; \mathbb{R}^{D \times N O_H O_W}.
$$

For a $4 \times 4$ image with pixel values $0..15$ and a $2 \times 2$ kernel
(stride 1), there are $3 \times 3 = 9$ positions, so `cols` is $4 \times 9$: each
column lists the four pixels of one patch. The orange frame marks the patch
of column 4 (the centre position) in both pictures.
'''),
        code(r'''
image = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
cols = to_numpy(F.im2col(minirect.tensor(image, device=DEVICE), kernel_size=2))
print("cols shape:", cols.shape)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1, 2.2]})
axes[0].imshow(image[0, 0], cmap="Blues", vmin=-4, vmax=20)
for (r, c), v in np.ndenumerate(image[0, 0]):
    axes[0].text(c, r, int(v), ha="center", va="center")
axes[0].add_patch(plt.Rectangle((0.5, 0.5), 2, 2, fill=False, ec="tab:orange", lw=2.5))
axes[0].set(title="image x (1×1×4×4)", xticks=[], yticks=[])
axes[1].imshow(cols, cmap="Blues", vmin=-4, vmax=20)
for (r, c), v in np.ndenumerate(cols):
    axes[1].text(c, r, int(v), ha="center", va="center")
axes[1].add_patch(plt.Rectangle((3.5, -0.5), 1, 4, fill=False, ec="tab:orange", lw=2.5))
axes[1].set(title="im2col(x, 2×2): one column per output position",
            xticks=range(9), xticklabels=[f"({r},{c})" for r in range(3) for c in range(3)],
            yticks=range(4), yticklabels=["(i,j)=(0,0)", "(0,1)", "(1,0)", "(1,1)"])
axes[1].set_xlabel("output position (o_h, o_w)")
plt.tight_layout()
plt.show()

# One GEMM gives the convolution:
kernels = np.array([[[[1, 0], [0, -1]]], [[[0.25, 0.25], [0.25, 0.25]]]], dtype=np.float32)  # D = 2
Y = kernels.reshape(2, 4) @ cols
y = to_numpy(F.conv2d(minirect.tensor(image, device=DEVICE), minirect.tensor(kernels, device=DEVICE)).data)
print("W_m @ cols, reshaped:\n", Y.reshape(2, 3, 3), "\nconv2d:\n", y[0])
assert np.allclose(Y.reshape(2, 3, 3), y[0])
'''),
        md(r'''
Every pixel appears in as many columns as there are windows covering it —
here the centre pixels four times — so the column matrix is up to
$k_h k_w$ times larger than the input. That memory is the price of turning the
layer into a GEMM.

## Check against the definition

A direct implementation of the formula above, with six nested loops, is the
reference. It is slow, so we compare on a small input with stride 2 and
padding 1 (where the bookkeeping is easiest to get wrong):
'''),
        code(r'''
def naive_conv2d(x, W, b, stride, padding):
    N, C, H, Wd = x.shape
    D, _, kh, kw = W.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH = (H + 2 * padding - kh) // stride + 1
    OW = (Wd + 2 * padding - kw) // stride + 1
    y = np.zeros((N, D, OH, OW))
    for n in range(N):
        for d in range(D):
            for oh in range(OH):
                for ow in range(OW):
                    total = b[d]
                    for c in range(C):
                        for i in range(kh):
                            for j in range(kw):
                                total += W[d, c, i, j] * xpad[n, c, oh * stride + i, ow * stride + j]
                    y[n, d, oh, ow] = total
    return y


rng = np.random.default_rng(SEED)
xs, Ws, bs = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
start = time.perf_counter()
reference = naive_conv2d(xs, Ws, bs, stride=2, padding=1)
t_naive = time.perf_counter() - start
start = time.perf_counter()
ours = to_numpy(F.conv2d(*(minirect.tensor(v, device=DEVICE) for v in (xs, Ws, bs)),
                         stride=2, padding=1).data)
t_gemm = time.perf_counter() - start
print("output shape", ours.shape, "| max difference:", np.abs(ours - reference).max())
print(f"six loops: {t_naive * 1e3:.1f} ms, im2col + GEMM: {t_gemm * 1e3:.2f} ms")
assert np.allclose(ours, reference, atol=1e-12)
'''),
        md(r'''
## The backward pass

Let $G = \partial E/\partial Y$, arranged like $Y$ as a $D \times N O_H O_W$
matrix. The differential of $Y = W_m\,\mathrm{cols}$ is
$dY = dW_m\,\mathrm{cols} + W_m\, d\mathrm{cols}$, and
$dE = \langle G, dY \rangle = \operatorname{tr}(G^\top dY)$. Moving factors around
inside the trace,

$$
\operatorname{tr}(G^\top dW_m\, \mathrm{cols}) = \langle G\, \mathrm{cols}^\top, dW_m \rangle
\;\Rightarrow\; \frac{\partial E}{\partial W_m} = G\, \mathrm{cols}^\top ,
\qquad
\operatorname{tr}(G^\top W_m\, d\mathrm{cols}) = \langle W_m^\top G, d\mathrm{cols}\rangle
\;\Rightarrow\; \frac{\partial E}{\partial\, \mathrm{cols}} = W_m^\top G ,
$$

and $\partial E/\partial b_d = \sum_{\text{columns}} G[d, :]$. Finally,
$\mathrm{cols} = A\,x$ for a fixed 0/1 matrix $A$ that copies pixels into
columns, so

$$
\frac{\partial E}{\partial x} = A^\top \frac{\partial E}{\partial\,\mathrm{cols}}
= \mathrm{col2im}\!\left(W_m^\top G\right),
$$

where $A^\top$ — **col2im** — *adds* each column entry back onto the pixel it
was copied from (a pixel in several windows collects several contributions;
padding entries are dropped). Three things to verify: col2im is the adjoint of
im2col, $\langle \mathrm{im2col}(x), C\rangle = \langle x, \mathrm{col2im}(C)\rangle$
for all $x, C$; the formulas match `conv2d`'s backward; and both match finite
differences.
'''),
        code(r'''
geometry = dict(kernel_size=3, stride=2, padding=1)
x0 = rng.standard_normal((2, 3, 7, 6))
C0 = rng.standard_normal(F.im2col(x0, **geometry).shape)
lhs = (F.im2col(x0, **geometry) * C0).sum()
rhs = (x0 * F.col2im(C0, x0.shape, **geometry)).sum()
print(f"<im2col(x), C> = {lhs:.10f}\n<x, col2im(C)> = {rhs:.10f}")
assert abs(lhs - rhs) < 1e-9

# The matrix formulas against conv2d's backward (float64, stride 2, padding 1).
x = minirect.tensor(xs, device=DEVICE, requires_grad=True)
W = minirect.tensor(Ws, device=DEVICE, requires_grad=True)
b = minirect.tensor(bs, device=DEVICE, requires_grad=True)
y = F.conv2d(x, W, b, stride=2, padding=1)
R = rng.standard_normal(y.shape)           # E = Σ y ⊙ R, so ∂E/∂y = R
(y * minirect.tensor(R, device=DEVICE)).sum().backward()

D = Ws.shape[0]
G = R.transpose(1, 0, 2, 3).reshape(D, -1)            # (D, N·OH·OW), the columns' order
cols = F.im2col(xs, **geometry)
dW = (G @ cols.T).reshape(Ws.shape)
dx = F.col2im(Ws.reshape(D, -1).T @ G, xs.shape, **geometry)
db = G.sum(axis=1)
for name, mine, engine in (("dE/dW", dW, W.grad), ("dE/dx", dx, x.grad), ("dE/db", db, b.grad)):
    err = np.abs(mine - to_numpy(engine)).max()
    print(f"{name}: max |formula - backward| = {err:.2e}")
    assert err < 1e-10
'''),
        md(r'''
The naive loop has an equally naive backward pass: every multiply-add
`y[n,d,oh,ow] += W[d,c,i,j] · xpad[n,c,oh·s+i,ow·s+j]` sends `G · xpad` to
$\partial E/\partial W$ and `G · W` to $\partial E/\partial x_{pad}$. It agrees
with conv2d too, and gradcheck compares conv2d with finite differences for a
few geometries (including non-square kernels and strides that skip pixels):
'''),
        code(r'''
def naive_conv2d_backward(x, W, G, stride, padding):
    N, C, H, Wd = x.shape
    D, _, kh, kw = W.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    gxpad, gW = np.zeros_like(xpad), np.zeros_like(W)
    for n, d, oh, ow in np.ndindex(*G.shape):
        patch = (n, slice(None), slice(oh * stride, oh * stride + kh), slice(ow * stride, ow * stride + kw))
        gW[d] += G[n, d, oh, ow] * xpad[patch]
        gxpad[patch] += G[n, d, oh, ow] * W[d]
    return gxpad[:, :, padding:padding + H, padding:padding + Wd], gW


gx_loop, gW_loop = naive_conv2d_backward(xs, Ws, R, stride=2, padding=1)
print("loop vs backward: dx", np.abs(gx_loop - to_numpy(x.grad)).max(),
      "| dW", np.abs(gW_loop - to_numpy(W.grad)).max())
assert np.allclose(gx_loop, to_numpy(x.grad)) and np.allclose(gW_loop, to_numpy(W.grad))

cases = [dict(x=(2, 2, 5, 5), W=(3, 2, 3, 3), stride=1, padding=1),
         dict(x=(1, 3, 6, 5), W=(2, 3, 2, 3), stride=2, padding=0),
         dict(x=(2, 1, 7, 7), W=(2, 1, 3, 3), stride=3, padding=1)]
for case in cases[:1] if FAST else cases:
    xt = minirect.tensor(rng.standard_normal(case["x"]), device=DEVICE, requires_grad=True)
    Wt = minirect.tensor(rng.standard_normal(case["W"]), device=DEVICE, requires_grad=True)
    bt = minirect.tensor(rng.standard_normal(case["W"][0]), device=DEVICE, requires_grad=True)
    ok = minirect.gradcheck(lambda x_, W_, b_: F.conv2d(x_, W_, b_, stride=case["stride"],
                                                         padding=case["padding"]), xt, Wt, bt)
    print("gradcheck", case, "->", ok)
'''),
        md(r'''
How many windows cover each pixel? Push a column matrix of ones through
col2im: the result counts, for every pixel, the windows that contain it —
which is also how many terms its gradient sums. With a $3 \times 3$ kernel,
stride 1 and padding 1, interior pixels are in 9 windows and corners in 4;
with stride 2, some pixels are in 1 window and others in 4.
'''),
        code(r'''
fig, axes = plt.subplots(1, 2, figsize=(7, 3))
for ax, stride in zip(axes, (1, 2)):
    shape = (1, 1, 7, 7)
    counts = F.col2im(np.ones(F.im2col(np.zeros(shape), 3, stride, 1).shape), shape, 3, stride, 1)[0, 0]
    ax.imshow(counts, cmap="Greens", vmin=0, vmax=16)
    for (r, c), v in np.ndenumerate(counts):
        ax.text(c, r, int(v), ha="center", va="center", fontsize=8)
    ax.set(title=f"windows per pixel: 3×3, stride {stride}, pad 1", xticks=[], yticks=[])
plt.tight_layout()
plt.show()
'''),
        md(r'''
## Spatial pyramid pooling

The paper's models end their convolutional part with SPP (from SPP-net):
each feature map is max-pooled into $n \times n$ bins for a few levels $n$
(the 14-layer model uses $\{6, 3, 2, 1\}$, models A–C $\{7, 3, 2, 1\}$), and the
results are concatenated. The output length $C \sum_n n^2$ does not depend on
the map size, so the fc layers accept inputs of any size.

minirect's bin $i$ of $n$ over a side of length $H$ covers the rows

$$
\left\lfloor \tfrac{iH}{n} \right\rfloor \;\le\; r \;<\; \left\lceil \tfrac{(i+1)H}{n} \right\rceil ,
$$

which tiles the map exactly when $n$ divides $H$, and otherwise lets
neighbouring bins share one row or column (they always cover the whole map).
Below: a $7 \times 7$ map with levels $\{3, 2, 1\}$, each bin framed and its
maximum circled; then a check of `F.spp` against these windows, and its
output length for maps of several sizes.
'''),
        code(r'''
def bins(size, n):
    return [((i * size) // n, -((-(i + 1) * size) // n)) for i in range(n)]

levels = (3, 2, 1)
fmap = rng.standard_normal((1, 1, 7, 7)).astype(np.float32)
fig, axes = plt.subplots(1, len(levels), figsize=(9, 3.2))
for ax, n in zip(axes, levels):
    ax.imshow(fmap[0, 0], cmap="coolwarm", vmin=-2.5, vmax=2.5)
    for k, ((r0, r1), (c0, c1)) in enumerate((r, c) for r in bins(7, n) for c in bins(7, n)):
        color = plt.cm.tab10(k % 10)
        inset = 0.06 * (k % 3)
        ax.add_patch(plt.Rectangle((c0 - 0.5 + inset, r0 - 0.5 + inset), c1 - c0 - 2 * inset,
                                   r1 - r0 - 2 * inset, fill=False, ec=color, lw=2))
        block = fmap[0, 0, r0:r1, c0:c1]
        rr, cc = np.unravel_index(block.argmax(), block.shape)
        ax.plot(c0 + cc, r0 + rr, "o", mfc="none", mec=color, ms=12, mew=2)
    ax.set(title=f"level n = {n}: {n * n} bins", xticks=range(7), yticks=range(7))
plt.tight_layout()
plt.show()

expected = [fmap[0, 0, r0:r1, c0:c1].max()
            for n in levels for (r0, r1) in bins(7, n) for (c0, c1) in bins(7, n)]
pooled = to_numpy(F.spp(minirect.tensor(fmap, device=DEVICE), levels).data)[0]
print("F.spp:", np.round(pooled, 3))
assert np.allclose(pooled, expected)
for size in (5, 7, 10, 13):
    out = F.spp(minirect.tensor(np.zeros((2, 8, size, size), dtype=np.float32), device=DEVICE), levels)
    print(f"map {size:2d}×{size:<2d} with 8 channels -> SPP output {out.shape}  (8 · (9 + 4 + 1) = 112)")
'''),
        md(r'''
## What `conv2d` runs for stride 1: shifted windows

The im2col above copies, for each kernel offset, a strided 2-D window of
every map — many short rows. For stride 1 there is a layout where each copy
is one long contiguous run. Lay the map out in rows of width
$W_p = W + p_w$ (the $W$ pixels, then a gap of $p_w$ zeros) and flatten it
into a single row: pixel $(h, w)$ becomes entry $(h + p_h) W_p + (w + p_w)$.
One gap serves as the right padding of a row *and* the left padding of the
next. The input that offset $(i, j)$ sees for output pixel $(o_h, o_w)$ is
entry $(i W_p + j) + (o_h W_p + o_w)$ — a run that starts at $i W_p + j$,
read at position $l = o_h W_p + o_w$. The price: positions with
$o_w \ge O_W$ wrap into the next row and are computed, then dropped (1 of
every 29 columns at 28×28).

And the input gradient of a stride-1 convolution is itself a convolution: of
$g_y$ padded by $k - 1 - p$, with each kernel flipped and the channel axes
swapped. So the fast path needs no col2im. Below: the runs of a 4×4 map with
a 3×3 kernel, then checks that the fast path and the plain im2col/col2im path
agree, and that $g_x$ is that flipped-kernel convolution.
'''),
        code(r'''
from minirect.functional import conv as conv_module

image = np.arange(16.0).reshape(4, 4)
Wp, OH, OW = 4 + 1, 4, 4                         # rows of 4 pixels + a gap of p_w = 1 zero
rows = np.zeros((1 + 4 + 1 + 1, Wp))             # p_h zero rows above and below, one spare row
rows[1:5, 1:] = image                            # the gap is column 0: left of each row
flat = rows.ravel()
L = OH * Wp
fig, axes = plt.subplots(1, 3, figsize=(10, 2.2))
for ax, (i, j) in zip(axes, [(0, 0), (1, 1), (2, 2)]):
    run = flat[i * Wp + j: i * Wp + j + L].reshape(OH, Wp)
    ax.imshow(run, cmap="viridis")
    ax.axvline(OW - 0.5, color="white", lw=2)
    ax.set(title=f"offset ({i}, {j}): flat[{i * Wp + j} : {i * Wp + j + L}]",
           xticks=[], yticks=[])
plt.tight_layout()
plt.show()
print("each panel is one contiguous run, shown as OH × Wp; right of the white line: the wrap-around")
print("offset (1, 1) left of the line is the image itself:",
      np.array_equal(flat[Wp + 1: Wp + 1 + L].reshape(OH, Wp)[:, :OW], image))

x0, W0 = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
gy0 = rng.standard_normal((2, 4, 6, 5))
grads = {}
for shifted in (True, False):
    conv_module.SHIFTED_WINDOWS = shifted
    xt = minirect.tensor(x0, device=DEVICE, requires_grad=True)
    Wt = minirect.tensor(W0, device=DEVICE, requires_grad=True)
    y = F.conv2d(xt, Wt, padding=1)
    y.backward(minirect.tensor(gy0, device=DEVICE))
    grads[shifted] = [to_numpy(a) for a in (y.data, xt.grad, Wt.grad)]
conv_module.SHIFTED_WINDOWS = True
for name, fast, plain in zip(["y", "dE/dx", "dE/dW"], grads[True], grads[False]):
    print(f"{name:6s} shifted windows vs im2col/col2im: max difference {abs(fast - plain).max():.1e}")
flipped = np.ascontiguousarray(W0[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
gx = F.conv2d(minirect.tensor(gy0, device=DEVICE), minirect.tensor(flipped, device=DEVICE), padding=3 - 1 - 1)
print(f"dE/dx vs conv2d(gy, flipped kernels, padding k-1-p): max difference "
      f"{abs(to_numpy(gx.data) - grads[True][1]).max():.1e}")
assert all(np.allclose(a, b, atol=1e-10) for a, b in zip(grads[True], grads[False]))
'''),
        md(r'''
## Timing on the active backend

A convolution's forward pass costs $2 N D C k_h k_w O_H O_W$ floating-point
operations (a multiply and an add per term); the backward pass is two more
GEMMs of the same size ($G\,\mathrm{cols}^\top$ and $W_m^\top G$), so a training
step costs about three times the forward. We time forward + backward for a few
"same"-padded $3 \times 3$ layers and report the achieved rate. On a CPU with one
BLAS thread expect a few to a few tens of GFLOP/s; a GPU (set `DEVICE =
"cuda"`, and `FULL = True` for larger layers) is one to two orders of
magnitude faster. `benchmarks/bench_conv.py` has the full benchmark.
'''),
        code(r'''
if FAST:
    sizes = [(4, 4, 4, 8), (8, 8, 8, 8)]
elif FULL:
    sizes = [(64, 64, 64, 32), (128, 128, 128, 16), (128, 256, 256, 14), (64, 96, 96, 56)]
else:
    sizes = [(16, 16, 16, 16), (32, 32, 32, 16), (32, 64, 64, 16), (16, 64, 64, 32)]
repeats = 1 if FAST else 3


def time_conv(N, C, D, H, k=3):
    def make(shape, scale=1.0, grad=True):
        return minirect.tensor(rng.standard_normal(shape) * scale, dtype="float32", device=DEVICE,
                               requires_grad=grad)
    xt, Wt, bt = make((N, C, H, H)), make((D, C, k, k), 0.1), make((D,), 0.0)
    gy = make((N, D, H, H), grad=False)
    times = []
    for r in range(repeats + 1):               # the first run warms up (and is dropped)
        xt.grad = Wt.grad = bt.grad = None
        minirect.backend.synchronize()
        start = time.perf_counter()
        F.conv2d(xt, Wt, bt, padding=k // 2).backward(gy)
        minirect.backend.synchronize()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times[1:]))
    flops = 3 * 2 * N * D * C * k * k * H * H
    return seconds, flops / seconds / 1e9


labels, rates = [], []
print(f"device: {minirect.default_device()}")
print(f"{'N':>4} {'C':>4} {'D':>4} {'H=W':>4}   fwd+bwd ms   GFLOP/s")
for N, C, D, H in sizes:
    seconds, rate = time_conv(N, C, D, H)
    labels.append(f"N{N} C{C}→{D}\n{H}×{H}")
    rates.append(rate)
    print(f"{N:4d} {C:4d} {D:4d} {H:4d}   {seconds * 1e3:10.1f}   {rate:7.1f}")
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.bar(labels, rates, color="tab:purple")
ax.set(ylabel="GFLOP/s", title=f"conv2d 3×3 forward + backward on {minirect.default_device()}")
plt.tight_layout()
plt.show()
'''),
        md(r'''
## Summary

* im2col turns a convolution into one GEMM, $Y = W_m\,\mathrm{cols}$, at the
  cost of a column matrix up to $k_h k_w$ times larger than the input.
* For stride 1, `conv2d` builds the same columns from contiguous runs of the
  flattened padded maps, and computes $\partial E/\partial x$ as a
  convolution with flipped kernels — same results, cheaper copies.
* Backward: $\partial E/\partial W_m = G\,\mathrm{cols}^\top$ and
  $\partial E/\partial x = \mathrm{col2im}(W_m^\top G)$, with col2im the adjoint
  (transpose) of im2col — checked above against the definition, a loop and
  finite differences.
* SPP max-pools fixed grids of bins, so the fc layers see a fixed length
  whatever the input size.

Derivation in full: `docs/derivations/conv.md`.
'''),
    ]


# =============================================================================
# 03 · PReLU
# =============================================================================

PRELU_FINDINGS = r'''
## What we see, and what we do not

*(Numbers of the default setting stored above: the 8×8 digits, model 14 at
widths 16/32/32 and fc 128, 25 epochs ≈ 550 iterations, one seed. To gauge the
noise we also ran the same cells with `SEED = 1` and `SEED = 2`; those numbers
are quoted as "seeds 0 / 1 / 2" but not stored — they were run with an earlier
version of the input scaling that differs from the stored one only by float
rounding.)*

**Errors — Table 2's pattern, PReLU ≤ ReLU: mostly, within the noise.** The
stored run gives 8.00 % (ReLU), 4.50 % (channel-shared) and 5.00 %
(channel-wise) top-1 error on 400 validation images, each with a standard
error of about 1.1–1.3 points. Over seeds 0 / 1 / 2: ReLU 8.00 / 6.50 / 5.25,
channel-shared 4.50 / 7.50 / 5.00, channel-wise 5.00 / 4.75 / 4.75 (means 6.6,
5.7 and 4.8). Channel-wise PReLU was never worse than ReLU and
channel-shared was better in two seeds of three — the direction of Table 2
(−1.1 and −1.2 points on ImageNet), with differences of the size of the noise.
In the stored run both PReLU nets also brought the training loss down much
sooner than ReLU (the curves above).

**Learned coefficients — Table 1's patterns:**

* *In the channel-shared model, the last conv of a stage has a larger
  coefficient:* **yes, the clearest pattern.** conv2_4 has the largest
  coefficient of stage 1 in all three seeds (0.50 / 0.40 / 0.48; paper 0.561),
  and conv3_6 the largest of stage 2 in all three (0.32 / 0.35 / 0.37;
  paper 0.210).
* *Deeper conv layers learn small coefficients:* **partly.** Averaged over
  conv3_1–conv3_5 the shared coefficients fall below the initial 0.25
  (0.16 / −0.01 / 0.14), but single layers scatter from −0.42 to 0.46, several
  negative, where the paper's lie between 0.008 and 0.126.
* *conv1 learns a large coefficient (0.681 shared, 0.596 channel-wise):*
  **no.** Ours is 0.36 / 0.22 / 0.18 (shared) and 0.28 (channel-wise mean,
  seed 0). Our conv1 is a 3×3 filter on 8×8 pen-stroke images, not a 7×7
  filter on natural images, so the paper's explanation (low-level filters
  such as edges keep information from both signs) need not carry over.
* *The fc layers learn small coefficients (0.03–0.08):* **the opposite.** fc2
  goes to 0.86 / 0.80 / 0.82 and fc1 to 0.35 / 0.35 / 0.42: our small fc
  layers (128 units, dropout 0.5, 10 classes) become nearly linear.
* *Channel-wise coefficients:* **no pattern at all** — their means stay
  between 0.23 and 0.28 in every layer and seed; only the spread between
  channels grows (from 0.10 to 0.43 in the stored run). Each channel-wise
  coefficient is driven by one channel's responses, so in 550 iterations it
  moves far less than a shared one; the paper trained for about 80 epochs of
  ImageNet, hundreds of thousands of iterations.

**The caveat of scale.** This is a 10-class problem with 1,397 training
images of 8×8 pixels, convs 4–8 times and fc layers 32 times narrower than
the paper's, one short schedule, and single-view errors on 400 images; the paper's numbers come
from 1.28 million 224×224 images and 1,000 classes. The stage-end pattern
survived the change of scale; the conv1 and fc patterns did not, and the
error differences are about as large as the seed-to-seed spread. `FULL =
True` (MNIST from `$MINIRECT_DATA`, wider layers, more epochs) is the setting
to check whether more of Table 1 appears with more data and training.
'''


def nb_prelu():
    return [
        md(r'''
# PReLU: learning the slope of the rectifier

Sec. 2.1 of the paper replaces ReLU by the **parametric** rectifier

$$
f(y_i) = \max(0, y_i) + a_i \min(0, y_i) =
\begin{cases} y_i & y_i > 0 \\ a_i\, y_i & y_i \le 0 \end{cases}
\qquad \text{(Eq. 1)}
$$

where $a_i$ is *learned*, one per channel $i$ (channel-wise) or one per layer
(channel-shared), initialized to $0.25$. $a_i = 0$ is ReLU, a small fixed $a_i$
is leaky ReLU. It costs one parameter per channel and, on ImageNet, lowered
the 14-layer model's top-1 error by 1.2 points (Table 2).

This notebook derives the gradient of $a_i$ and its update, explains why the
coefficients get no weight decay, and trains a scaled-down 14-layer model with
ReLU, channel-shared and channel-wise PReLU to compare the learned
coefficients with Table 1 and the errors with Table 2.
'''),
        parameters(comment="MNIST at 28×28 (needs $MINIRECT_DATA), wider layers, more epochs"),
        setup("import time\n\nimport minirect.functional as F\nfrom minirect import data, models, nn, optim\n"
              "from minirect.backend import to_numpy"),
        md(r'''
## The gradient of $a_i$

Back-propagation needs two derivatives of Eq. 1. With respect to the input,

$$
\frac{\partial f(y_i)}{\partial y_i} = \begin{cases} 1 & y_i > 0 \\ a_i & y_i \le 0 \end{cases},
$$

and with respect to the coefficient (Eq. 3)

$$
\frac{\partial f(y_i)}{\partial a_i} = \begin{cases} 0 & y_i > 0 \\ y_i & y_i \le 0 \end{cases}
\;=\; \min(0, y_i).
$$

One $a_i$ is used at every position of channel $i$'s feature map and for every
image of the batch, so by the chain rule its gradient is a sum over all of
them (Eq. 2):

$$
\frac{\partial E}{\partial a_i} = \sum_{y_i} \frac{\partial E}{\partial f(y_i)}\, \min(0, y_i),
$$

the sum running over the batch and the positions of channel $i$. For the
channel-shared variant one $a$ serves every channel, and the sum also runs over
the channels:
$\partial E/\partial a = \sum_i \sum_{y_i} \frac{\partial E}{\partial f(y_i)} \min(0, y_i)$.
Only negative responses contribute. Below, both formulas are checked against
`F.prelu`'s backward pass and against finite differences.
'''),
        code(r'''
u = np.linspace(-3, 3, 200)
fig, ax = plt.subplots(figsize=(4.5, 3))
for a_value, style in ((0.0, "k-"), (0.25, "-"), (1.0, ":"), (-0.3, "--")):
    ax.plot(u, np.maximum(u, 0) + a_value * np.minimum(u, 0), style, label=f"a = {a_value}")
ax.set(xlabel="y", ylabel="f(y)", title="PReLU (a = 0: ReLU, a = 1: identity)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

rng = np.random.default_rng(SEED)
y_np = rng.standard_normal((4, 3, 5, 5))            # (N, C, H, W)
R = rng.standard_normal(y_np.shape)                 # dE/df, so that E = Σ f(y) ⊙ R
for label, a_np in (("channel-wise", np.array([0.25, 0.1, -0.2])), ("channel-shared", np.array([0.25]))):
    y_t = minirect.tensor(y_np, device=DEVICE, requires_grad=True)
    a_t = minirect.tensor(a_np, device=DEVICE, requires_grad=True)
    (F.prelu(y_t, a_t) * minirect.tensor(R, device=DEVICE)).sum().backward()
    per_channel = (R * np.minimum(y_np, 0)).sum(axis=(0, 2, 3))          # Eq. 2
    by_hand = per_channel if a_np.size > 1 else per_channel.sum(keepdims=True)
    a_b = a_np.reshape(1, -1, 1, 1)
    dy_by_hand = np.where(y_np > 0, R, a_b * R)
    print(f"{label:15s} dE/da by hand {np.round(by_hand, 4)}  backward {np.round(to_numpy(a_t.grad), 4)}")
    assert np.allclose(to_numpy(a_t.grad), by_hand) and np.allclose(to_numpy(y_t.grad), dy_by_hand)
    small_y = minirect.tensor(rng.standard_normal((2, 3, 3, 3)), device=DEVICE, requires_grad=True)
    small_a = minirect.tensor(a_np, device=DEVICE, requires_grad=True)
    print(" " * 16, "gradcheck:", minirect.gradcheck(F.prelu, small_y, small_a))
'''),
        md(r'''
## The update: momentum, and no weight decay

The coefficients are trained with the same SGD as the weights (Eq. 4):

$$
\Delta a_i := \mu\, \Delta a_i + \varepsilon\, \frac{\partial E}{\partial a_i},
\qquad a_i := a_i - \Delta a_i ,
$$

with momentum $\mu$ and learning rate $\varepsilon$ — the form of Caffe and of
`minirect.optim.SGD` (the velocity holds the step already scaled by
$\varepsilon$). What the paper leaves out on purpose is **weight decay**. With
decay $\lambda$ the gradient would become $\partial E/\partial a_i + \lambda a_i$;
the extra term pulls $a_i$ towards $0$ — towards ReLU — whatever the data say.
With no data gradient, the velocity settles at $\Delta a \approx \varepsilon\lambda a/(1-\mu)$,
so $a$ decays like

$$
a_t \approx a_0 \exp\!\left(-\frac{\varepsilon \lambda}{1 - \mu}\, t\right),
$$

a rate of $5\cdot 10^{-5}$ per iteration for the paper's
$\varepsilon = 0.01, \lambda = 5\cdot 10^{-4}, \mu = 0.9$. Ten epochs of ImageNet at
batch 128 are about $10^5$ iterations: a factor $e^{-5} \approx 0.007$. The
coefficients would be free only where the data gradient is strong enough to
hold them up; the learned values would be biased towards ReLU. (The paper also
notes that the $a_i$ are not constrained: they may become negative or exceed 1.)

`optim.param_groups(model, λ)` puts every PReLU coefficient in a group with
`weight_decay=0`. We check Eq. 4 against `optim.SGD` on a parameter with a
fixed gradient, and then let decay act alone on a coefficient (zero data
gradient) to see the pull towards ReLU:
'''),
        code(r'''
# Eq. 4 by hand versus optim.SGD, three steps with gradient g.
layer = nn.PReLU(1, init=0.25)
sgd = optim.SGD(layer.parameters(), lr=0.01, momentum=0.9)
a_hand, v_hand, g = 0.25, 0.0, 0.8
for step in range(3):
    layer.weight.grad = minirect.tensor([g]).data
    sgd.step()
    v_hand = 0.9 * v_hand + 0.01 * g
    a_hand = a_hand - v_hand
    print(f"step {step + 1}: optim.SGD a = {layer.weight.item():.6f}   Eq. 4 by hand a = {a_hand:.6f}")
    assert abs(layer.weight.item() - a_hand) < 1e-6

model_for_groups = models.model_14(widths=(4, 4, 4), fc_width=8, input_size=8, activation="prelu")
for group in optim.param_groups(model_for_groups, 5e-4):
    print(f"group with weight_decay={group['weight_decay']}: {len(group['params'])} tensors")

# Weight decay alone on a coefficient (no data gradient).
steps = 5_000 if FAST else 60_000
trajectories = {}
for decay in (0.0, 5e-4):
    coefficient = nn.Parameter(minirect.tensor([0.25]).data)
    sgd = optim.SGD([coefficient], lr=0.01, momentum=0.9, weight_decay=decay)
    zero = coefficient.xp.zeros(1, dtype=coefficient.dtype)
    values = []
    for _ in range(steps):
        coefficient.grad = zero
        sgd.step()
        values.append(coefficient.item())
    trajectories[decay] = np.array(values)
iterations = np.arange(1, steps + 1)
fig, ax = plt.subplots(figsize=(5.5, 3))
ax.plot(iterations, trajectories[0.0], label="λ = 0 (the paper: no decay on a)")
ax.plot(iterations, trajectories[5e-4], lw=3, label="λ = 5e-4 (the weights' decay)")
ax.plot(iterations, 0.25 * np.exp(-0.01 * 5e-4 / 0.1 * iterations), "k:", label="a₀ exp(−ελt/(1−μ))")
ax.set(xlabel="iteration", ylabel="a", title="weight decay pulls a towards 0 (ReLU)", ylim=(0, 0.27))
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()
print(f"after {steps} iterations: a = {trajectories[5e-4][-1]:.4f} with decay, "
      f"{trajectories[0.0][-1]:.4f} without")
'''),
        md(r'''
## The experiment: the 14-layer model, scaled down

Tables 1 and 2 come from the paper's 14-layer model: conv1 (7×7, 64), four
2×2 convs with 128 filters, six 2×2 convs with 256 filters, SPP $\{6,3,2,1\}$ and
fc 4096–4096–1000, a rectifier after every conv and the first two fc layers —
13 rectifiers in all. `minirect.models.model_14` builds the same layout at
any width; for small images conv1 becomes 3×3 without stride (see its
docstring). We train it three times from the same initialization (MSRA,
forward form, Eq. 15 with $a = 0.25$ for the PReLU nets) with the paper's recipe
scaled down: SGD, momentum 0.9, weight decay $5\cdot 10^{-4}$ on the weights only,
dropout 0.5 on fc1 and fc2, and the learning rate divided by 10 once near
the end.

The data are MNIST (28×28) when `$MINIRECT_DATA` holds it, else the 8×8
digits embedded in minirect (1,397 training and 400 validation images), with
per-pixel mean subtraction (the paper's preprocessing) and one global scale to
unit variance (the paper fed the raw mean-subtracted pixels, of std about 60,
and made up for it with small fixed-std fc layers).
'''),
        code(r'''
def load(train):
    if os.environ.get("MINIRECT_DATA"):
        try:
            return data.MNIST(train=train)
        except data.DatasetError as err:
            print("MNIST not found, using the embedded digits:", str(err).splitlines()[0])
    return data.Digits(train=train)


train_set, val_set = load(True), load(False)
mnist = train_set.name != "digits"
config = dict(widths=(16, 32, 32), fc_width=128, epochs=25, train_limit=None, val_limit=None,
              batch_size=64, lr=0.01)
if mnist:
    config.update(epochs=8, train_limit=3000, val_limit=2000)
if FULL:
    config.update(widths=(64, 128, 256), fc_width=512, epochs=30, train_limit=None, val_limit=None)
if FAST:
    config.update(widths=(4, 8, 8), fc_width=16, epochs=2, train_limit=256, val_limit=200)
print(train_set, "\n", val_set, "\nconfig:", config)

train_x, train_y = train_set.images[:config["train_limit"]], train_set.labels[:config["train_limit"]]
val_x, val_y = val_set.images[:config["val_limit"]], val_set.labels[:config["val_limit"]]
transform = data.paper_input_transform(train_x, train_set.pixel_max, input_scale="unit")
input_size = train_x.shape[-1]


def make_model(activation):
    minirect.seed(SEED)                 # the same initial weights for the three models
    return models.model_14(widths=config["widths"], fc_width=config["fc_width"], input_size=input_size,
                           activation=activation, init="msra", mode="fan_in")


print(make_model("prelu"))
'''),
        code(r'''
ACTIVATIONS = {"relu": "ReLU", "prelu-shared": "PReLU, channel-shared", "prelu": "PReLU, channel-wise"}
results = {}
for activation, label in ACTIVATIONS.items():
    model = make_model(activation)
    optimizer = optim.SGD(optim.param_groups(model, 5e-4), lr=config["lr"], momentum=0.9)
    schedule = optim.MultiStepLR(optimizer, milestones=[max(1, int(0.75 * config["epochs"]))], gamma=0.1)
    train_loader = data.DataLoader(train_x, train_y, batch_size=config["batch_size"], shuffle=True,
                                   seed=SEED, transform=transform)
    val_loader = data.DataLoader(val_x, val_y, batch_size=500, transform=transform)
    start = time.perf_counter()
    history = minirect.fit(model, train_loader, optimizer, config["epochs"], val_loader=val_loader,
                           schedule=schedule, progress=False)
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    results[activation] = dict(history=history, coefficients=[to_numpy(p.weight.data) for p in prelus],
                               seconds=time.perf_counter() - start)
    last = history.epochs[-1]
    print(f"{label:22s} val error {last['val_error']:.4f}  train error {last['train_error']:.4f}  "
          f"({results[activation]['seconds']:.0f} s)")
'''),
        code(r'''
fig, axes = plt.subplots(1, 2, figsize=(10, 3.3))
for activation, label in ACTIVATIONS.items():
    epochs = results[activation]["history"].column("epoch")
    axes[0].plot(epochs, results[activation]["history"].column("train_loss"), label=label)
    axes[1].plot(epochs, results[activation]["history"].column("val_error"), label=label)
axes[0].set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss")
axes[1].set(xlabel="epoch", ylabel="validation top-1 error", yscale="log", title="validation error")
for ax in axes:
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
'''),
        md(r'''
## Learned coefficients next to Table 1

Table 1 lists, for each of the 13 rectifiers, the learned channel-shared
coefficient and the mean of the channel-wise ones. Below, the paper's values
(ImageNet, about 80 epochs) on the left of each pair of bars and ours on the
right; for the channel-wise model the thin line shows the range over
channels. The dashed line is the initial value 0.25.
'''),
        code(r'''
LAYERS = (["conv1"] + [f"conv2_{i}" for i in range(1, 5)] + [f"conv3_{i}" for i in range(1, 7)]
          + ["fc1", "fc2"])
PAPER_SHARED = [0.681, 0.103, 0.099, 0.228, 0.561, 0.126, 0.089, 0.124, 0.062, 0.008, 0.210, 0.063, 0.031]
PAPER_WISE = [0.596, 0.321, 0.204, 0.294, 0.464, 0.196, 0.152, 0.145, 0.124, 0.134, 0.198, 0.074, 0.075]

shared = np.array([c.item() for c in results["prelu-shared"]["coefficients"]])
wise = results["prelu"]["coefficients"]
wise_mean = np.array([c.mean() for c in wise])
wise_lo, wise_hi = np.array([c.min() for c in wise]), np.array([c.max() for c in wise])

index = np.arange(len(LAYERS))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), sharey=True)
for ax, paper, ours, title in ((axes[0], PAPER_SHARED, shared, "channel-shared"),
                               (axes[1], PAPER_WISE, wise_mean, "channel-wise (mean over channels)")):
    ax.bar(index - 0.2, paper, 0.4, color="0.7", label="paper, Table 1 (ImageNet)")
    ax.bar(index + 0.2, ours, 0.4, color="tab:red", label="ours")
    ax.axhline(0.25, color="k", ls="--", lw=0.8)
    ax.set_xticks(index, LAYERS, rotation=60, fontsize=8)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
axes[1].vlines(index + 0.2, wise_lo, wise_hi, color="k", lw=1, label="ours: min–max over channels")
axes[0].set_ylabel("learned a")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

print(f"{'layer':8s} {'paper shared':>12s} {'ours shared':>12s} {'paper wise':>11s} {'ours wise':>10s}"
      f" {'(min, max)':>16s}")
for i, name in enumerate(LAYERS):
    print(f"{name:8s} {PAPER_SHARED[i]:12.3f} {shared[i]:12.3f} {PAPER_WISE[i]:11.3f} {wise_mean[i]:10.3f} "
          f"  ({wise_lo[i]:.3f}, {wise_hi[i]:.3f})")
'''),
        md(r'''
## Errors next to Table 2

The paper reports 10-view top-1 / top-5 error on the ImageNet validation set;
ours is the single-view top-1 error on our validation images after the last
epoch, and the mean over the last three epochs (a little less noisy). With
$n$ validation images, an error rate $p$ has a standard error of
$\sqrt{p(1-p)/n}$, printed alongside.
'''),
        code(r'''
PAPER_TABLE_2 = {"relu": (33.82, 13.34), "prelu-shared": (32.71, 12.87), "prelu": (32.64, 12.75)}
n_val = len(val_y)
print(f"{'':22s} {'paper top-1 / top-5':>20s}   {'ours: last epoch':>16s} {'mean last 3':>12s}")
for activation, label in ACTIVATIONS.items():
    errors = np.array(results[activation]["history"].column("val_error"))
    last, recent = errors[-1], errors[-3:].mean()
    se = np.sqrt(max(last * (1 - last), 1e-12) / n_val)
    top1, top5 = PAPER_TABLE_2[activation]
    print(f"{label:22s} {top1:10.2f} / {top5:5.2f}     {100 * last:7.2f} ± {100 * se:.2f}"
          f" {100 * recent:10.2f}")
'''),
        md(PRELU_FINDINGS),
    ]


# =============================================================================
# 04 · Initialization
# =============================================================================

INIT_FINDINGS = r'''
## Findings in numbers

*(Default setting stored above: 30 conv layers of widths 16/32/64 with
circular padding on 64 normalized 8×8 digits; the table is one draw of
weights, the "mean of draws" numbers average 8 draws.)*

* **Xavier shrinks by about $1/\sqrt2$ per layer.** Measured forward factor
  per layer: 0.659 in the stored draw (theory for its weights 0.705), 0.697
  with the variance averaged over 8 draws (theory 0.706; $1/\sqrt2 = 0.7071$;
  single draws 0.659–0.712). Backward: 0.717 (theory 0.722), 0.727 averaged
  over draws. After 30 layers the response std is $5.3\cdot 10^{-6}$ (MSRA:
  0.175) and the gradient std at layer 1 is $6.5\cdot 10^{-5}$ (MSRA: 1.5).
* **MSRA keeps the signal flat, up to the scatter of one narrow draw.**
  Forward factor per layer: 0.932 in the stored draw (theory 0.997) and 0.985
  averaged over 8 draws (theory 0.999; single draws 0.932–1.007). Backward:
  1.014 (theory 1.021 — the widening layers double the gradient's variance
  going backwards, $d_L/c_2 = 4$ in all). The stored draw is the least
  favourable of the 8; the gradients, which start from an i.i.d. Gaussian $r$,
  follow the theory more closely than the responses, which start from 64
  correlated digit images.
* **Either MSRA form works.** The fan-out form (Eq. 14) is as flat as the
  fan-in form (0.910 vs 0.932 per layer forward in the same draw, 0.990 vs
  1.014 backward); its responses are lower by the constant factor 0.125 =
  $\sqrt{c_2 / (d_1 d_L)}$ predicted above, not by anything growing with depth.
* **Fixed std 0.01 vanishes:** 0.112 per layer forward (theory 0.120), a
  response std of $5\cdot 10^{-30}$ at layer 30 and a gradient std of
  $2\cdot 10^{-27}$ at layer 1.
* **PReLU needs Eq. 15.** With $a = 0.25$ and the ReLU rule the signal grows
  by $\sqrt{1 + a^2} = 1.031$ per layer relative to Eq. 15 (measured: 0.978 vs
  0.949, a ratio of 1.031; theory 1.028 vs 0.997); Eq. 15 is as flat as MSRA for
  ReLU.
* **The first layer's factor does not matter:** $1/n$ instead of $2/n$ on
  layer 1 lowers every response by exactly $\sqrt2$ (ratio 1.41421 at all 30
  layers) and leaves every gradient unchanged (ratio 1.0000 ± 0.0001).
* **The paper's 30-layer model:** with zero padding and pooling both inits'
  curves bend, but Xavier's responses are exactly $2^{-l/2}$ of MSRA's at layer
  $l$ ($3\cdot 10^{-5}$ at layer 30). Xavier's gradient at layer 1 is
  $3\cdot 10^{-7}$ of that at layer 30 (MSRA: $7\cdot 10^{-3}$, the border
  effect), and weight decay outweighs the data gradient in all 30 of its
  layers (by a factor 400–8,000) and in none of MSRA's — footnote 2's
  "diminishing gradients" at initialization.
'''


def nb_initialization():
    return [
        md(r'''
# Initialization of deep rectified networks

Sec. 2.2 of the paper asks how large the random initial weights of a deep
network of rectifiers must be so that the signal neither vanishes nor
explodes on its way through many layers — forward (the responses) and
backward (the gradients). The answer, $\mathrm{Var}[w_l] = 2/n_l$ (Eq. 10), differs
from the then-common "Xavier" rule $1/n_l$ by a factor of 2 that compounds over
depth: after 30 layers, $2^{-15} \approx 3\cdot 10^{-5}$.

We derive Eq. 10 and Eq. 14 step by step, check each step numerically, and
then measure the per-layer standard deviation of the responses and of the
gradients in a 30-layer network under five initializations, against the
theory.
'''),
        parameters(comment="wider layers, a bigger batch"),
        setup("import minirect.functional as F\nfrom minirect import data, diagnostics, init, models, nn\n"
              "from minirect.backend import to_numpy"),
        md(r'''
## The forward case, Eq. 10

A conv layer computes at each position (Eq. 5)

$$
y_l = W_l\, x_l + b_l ,
$$

where $x_l$ holds the $k \times k$ pixels of the $c$ input channels under the
window — $n_l = k^2 c$ numbers — and $W_l$ is $d \times n_l$. The input is the
previous layer's rectified response, $x_l = f(y_{l-1})$. Assume, as the paper
does, that the elements of $W_l$ are i.i.d. with zero mean, the elements of
$x_l$ are i.i.d., the two are independent, and $b_l = 0$.

**Step 1.** $y_l$ is a sum of $n_l$ independent products, so
$\mathrm{Var}[y_l] = n_l \mathrm{Var}[w_l x_l]$. For independent $w, x$ with $E[w] = 0$,

$$
\mathrm{Var}[w x] = E[w^2]E[x^2] - (E[w]E[x])^2 = \mathrm{Var}[w]\, E[x^2],
\qquad\text{so}\qquad
\mathrm{Var}[y_l] = n_l\, \mathrm{Var}[w_l]\, E[x_l^2] .
\quad\text{(Eq. 7)}
$$

Note $E[x_l^2]$, not $\mathrm{Var}[x_l]$: after a ReLU, $x_l \ge 0$ has a non-zero mean.

**Step 2.** $w_{l-1}$ is symmetric around zero and $b_{l-1} = 0$, so $y_{l-1}$ is
symmetric around zero with zero mean. ReLU keeps the positive half:

$$
E[x_l^2] = E[\max(0, y_{l-1})^2] = \tfrac12 E[y_{l-1}^2] = \tfrac12 \mathrm{Var}[y_{l-1}] .
$$

**Step 3.** Together, $\mathrm{Var}[y_l] = \tfrac12 n_l \mathrm{Var}[w_l]\, \mathrm{Var}[y_{l-1}]$
(Eq. 8), and over $L$ layers

$$
\mathrm{Var}[y_L] = \mathrm{Var}[y_1] \prod_{l=2}^{L} \tfrac12 n_l \mathrm{Var}[w_l] .
\quad\text{(Eq. 9)}
$$

A product of $L$ factors neither vanishes nor explodes only if each factor is 1:

$$
\tfrac12 n_l \mathrm{Var}[w_l] = 1, \qquad \text{std}[w_l] = \sqrt{2/n_l} .
\quad\text{(Eq. 10)}
$$

The paper's "Xavier" rule, $n_l\mathrm{Var}[w_l] = 1$, makes every factor ½: the
response's std shrinks by $1/\sqrt2$ per layer. For the first layer the input is
not rectified, so strictly $n_1 \mathrm{Var}[w_1] = 1$; but one factor on one layer
only scales the whole product by a constant, and the paper uses Eq. 10 there
too.

**With PReLU** (Eq. 15), the negative half is kept with slope $a$:
$E[f(y)^2] = \tfrac12 E[y^2] + \tfrac12 a^2 E[y^2]$, so the condition becomes
$\tfrac12(1 + a^2)\, n_l \mathrm{Var}[w_l] = 1$ ($a = 0$: ReLU; $a = 1$: linear).

Steps 1 and 2 numerically:
'''),
        code(r'''
rng = np.random.default_rng(SEED)
sigma = 1.7
y_prev = rng.normal(0, sigma, 2_000_000)
print(f"Step 2: E[max(0,y)^2] = {np.mean(np.maximum(y_prev, 0) ** 2):.4f}   ½ Var[y] = {sigma ** 2 / 2:.4f}")
a = 0.25
prelu_y = np.maximum(y_prev, 0) + a * np.minimum(y_prev, 0)
print(f"PReLU:  E[f(y)^2]      = {np.mean(prelu_y ** 2):.4f}   "
      f"½(1+a²) Var[y] = {(1 + a * a) * sigma ** 2 / 2:.4f}")

n, trials = 3 * 3 * 16, 20_000                    # a 3×3 conv with 16 input channels
x_l = np.maximum(rng.normal(0, sigma, (trials, n)), 0)          # rectified inputs, E[x] > 0
w_l = rng.normal(0, np.sqrt(2 / n), (trials, n))                # Eq. 10
y_l = (w_l * x_l).sum(axis=1)
print(f"Step 1: Var[y_l] = {y_l.var():.4f}   n Var[w] E[x^2] = {n * (2 / n) * np.mean(x_l ** 2):.4f}"
      f"   (= Var[y_(l-1)] = {sigma ** 2:.4f} under Eq. 10)")
assert abs(y_l.var() / sigma ** 2 - 1) < 0.05
'''),
        md(r'''
## The backward case, Eq. 14

Back-propagation through the same layer computes $\Delta x_l = \hat W_l\, \Delta y_l$
with $\Delta \cdot = \partial E/\partial \cdot$; here $\hat W_l$ is $c \times \hat n_l$ and
$\hat n_l = k^2 d$ — each input pixel reaches $k^2$ positions of $d$ output channels
(the fan-out). Then $\Delta y_l = f'(y_l)\, \Delta x_{l+1}$.

**Step 1.** $f'(y_l)$ is 0 or 1 with probability ½ each, independent of
$\Delta x_{l+1}$, so $E[\Delta y_l] = 0$ and
$E[(\Delta y_l)^2] = \mathrm{Var}[\Delta y_l] = \tfrac12 \mathrm{Var}[\Delta x_{l+1}]$.

**Step 2.** As in the forward case, with $E[w] = 0$,
$\mathrm{Var}[\Delta x_l] = \hat n_l \mathrm{Var}[w_l] \mathrm{Var}[\Delta y_l]
= \tfrac12 \hat n_l \mathrm{Var}[w_l]\, \mathrm{Var}[\Delta x_{l+1}]$, and over the layers

$$
\mathrm{Var}[\Delta x_2] = \mathrm{Var}[\Delta x_{L+1}] \prod_{l=2}^{L} \tfrac12 \hat n_l \mathrm{Var}[w_l]
\quad\Longrightarrow\quad
\tfrac12 \hat n_l \mathrm{Var}[w_l] = 1, \qquad \text{std}[w_l] = \sqrt{2/\hat n_l} .
\quad\text{(Eq. 14)}
$$

**Either condition suffices.** With Eq. 14 the forward product of Eq. 9 is
$\prod_{l=2}^L \tfrac12 n_l \mathrm{Var}[w_l] = \prod_{l=2}^L n_l / \hat n_l
= \prod_{l=2}^L c_l / d_l = c_2 / d_L$,
because $d_l = c_{l+1}$ telescopes: a constant, not an exponential in $L$.
Symmetrically, Eq. 10 scales the backward signal by $d_L / c_2$. To see this,
our test network widens twice: 10 layers of 16 channels, 10 of 32, 10 of 64.
Then $c_2 / d_L = 16/64$, so under Eq. 14 the responses of the last layers are
$\sqrt{1/4} = 1/2$ of what they are under Eq. 10 — on top of a different first layer,
whose fan-in ($9 \cdot 1$) and fan-out ($9 \cdot 16$) differ by 16.

## The measurement

The theory assumes every response sees $n_l$ real inputs. A 3×3 conv with
zero padding on an 8×8 map does not: border outputs see 4 or 6 of their 9
inputs, which shrinks the variance by $(22/24)^2 \approx 0.84$ per layer for
every initialization alike. To compare with the theory itself we pad
**circularly** (the map wraps around like a torus; built below from slicing
and concatenation, so autograd handles it); the paper's models with pooling
and zero padding follow at the end.

The network is 30 such conv layers, each followed by a rectifier except the
last, on a batch of normalized digits. The loss is $E = \sum y_{30} \odot r$ with a
fixed Gaussian $r$, so $\partial E/\partial y_{30} = r$ has unit variance — the
theory's starting point for the backward pass. Forward hooks keep every conv
layer's response $y_l$ and ask autograd to retain its gradient (what
`diagnostics.layer_statistics` does); we take the standard deviations in
float64, because the squares of float32 numbers below about $10^{-19}$ leave
float32's normal range (and below about $10^{-23}$ become zero), and one of the
nets below goes far below that.
'''),
        code(r'''
class CircularPad(nn.Module):
    """Pad one pixel on each side by wrapping the map around (a torus)."""

    def forward(self, x):
        x = F.concatenate([x[:, :, -1:], x, x[:, :, :1]], axis=2)
        return F.concatenate([x[:, :, :, -1:], x, x[:, :, :, :1]], axis=3)


if FULL:
    STAGE_WIDTHS, BATCH, DRAWS = (64, 128, 256), 256, 8
elif FAST:
    STAGE_WIDTHS, BATCH, DRAWS = (4, 8, 16), 8, 2
else:
    STAGE_WIDTHS, BATCH, DRAWS = (16, 32, 64), 64, 8
WIDTHS = [w for w in STAGE_WIDTHS for _ in range(10)]          # 30 conv layers
L = len(WIDTHS)


def plain_net(activation="relu", a=0.25):
    layers, channels = [], 1
    for l, width in enumerate(WIDTHS):
        layers += [CircularPad(), nn.Conv2d(channels, width, 3)]
        if l < L - 1:
            layers.append(nn.ReLU() if activation == "relu" else nn.PReLU(width, init=a))
        channels = width
    return nn.Sequential(*layers)


def initialized(activation, rule, first_rule=None, draw=0):
    """A fresh net, every conv weight set by rule(weight), biases 0.

    Every rule draws the same normal numbers for the same ``draw``: the weights
    of two rules differ only by a constant factor per layer.
    """
    minirect.seed(SEED)
    net = plain_net(activation)
    minirect.seed(SEED + 1 + draw)
    for l, conv in enumerate(m for m in net.modules() if isinstance(m, nn.Conv2d)):
        (first_rule if l == 0 and first_rule else rule)(conv.weight)
        init.zeros_(conv.bias)
    return net


digits = data.Digits(train=True)
normalize = data.paper_input_transform(digits.images, digits.pixel_max, input_scale="unit")
x, _ = next(iter(data.DataLoader(digits, batch_size=BATCH, transform=normalize)))
r = minirect.tensor(rng.standard_normal((BATCH, WIDTHS[-1], 8, 8)), dtype="float32", device=DEVICE)
input_std = float(np.sqrt((to_numpy(x.data) ** 2).mean()))
print("input batch", x.shape, f"E[x²]^½ = {input_std:.3f};  widths", STAGE_WIDTHS, "× 10 layers")


def projection_loss(output, r):
    return (output * r).sum()


def std64(array):
    return float(to_numpy(array).astype(np.float64).std())


def measure(net):
    """Per conv layer: the std of the response y_l and of ∂E/∂y_l."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    responses = [None] * len(convs)

    def keeper(l):
        def hook(module, inputs, output):
            responses[l] = output.retain_grad()
        return hook

    handles = [conv.register_forward_hook(keeper(l)) for l, conv in enumerate(convs)]
    try:
        projection_loss(net(x), r).backward()
    finally:
        for handle in handles:
            handle.remove()
    net.zero_grad()
    return {"response_std": np.array([std64(y.data) for y in responses]),
            "grad_std": np.array([std64(y.grad) for y in responses])}
'''),
        md(r'''
The theory for the same layers comes from the weights actually drawn:
`diagnostics.predicted_stds` evaluates Eq. 9 and its backward twin for a
ReLU net. For the PReLU net the factor ½ becomes ½(1 + a²); we write that
version out and check that it reduces to `predicted_stds` for $a = 0$.
'''),
        code(r'''
def theory(net, a=0.0):
    """Eq. 9 and its backward twin with the factor ½(1 + a²), from the net's weights."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    var_w = [float(to_numpy(m.weight.data).var()) for m in convs]
    fan_in = [m.weight.shape[1] * 9 for m in convs]
    fan_out = [m.weight.shape[0] * 9 for m in convs]
    gain = 0.5 * (1 + a * a)
    response, var = [], input_std ** 2
    for l, (v, n) in enumerate(zip(var_w, fan_in)):
        var *= n * v * (gain if l > 0 else 1.0)        # the first layer sees the raw input
        response.append(np.sqrt(var))
    grad, g = [1.0] * len(convs), 1.0
    for l in range(len(convs) - 1, 0, -1):
        g *= np.sqrt(gain * fan_out[l] * var_w[l])
        grad[l - 1] = g
    return {"response_std": np.array(response), "grad_ratio": np.array(grad)}


check_net = initialized("relu", lambda w: init.msra_normal_(w, mode="fan_in"))
mine, library = theory(check_net), diagnostics.predicted_stds(check_net, input_std)
for key in ("response_std", "grad_ratio"):
    assert np.allclose(mine[key], library[key])
print("theory(a=0) == diagnostics.predicted_stds: True")
'''),
        md(r'''
Five initializations. The first four are ReLU nets: a fixed std of 0.01 (the
common choice before the paper), the paper's "Xavier" ($n \mathrm{Var}[w] = 1$),
MSRA in its forward form (Eq. 10, fan-in) and in its backward form (Eq. 14,
fan-out). The fifth is a PReLU net ($a = 0.25$, channel-wise) initialized with
Eq. 15; next to it, the same PReLU net initialized with the ReLU rule
($a = 0$ in Eq. 15), to show what the $(1 + a^2)$ correction is for.

Measured curves are solid, the theory dashed; the bottom row leaves out the
fixed-std net to show the others in detail. Because all rules draw the same
normal numbers and a ReLU net with zero biases is positively homogeneous
(scaling a layer's weights by $s > 0$ scales everything after it by $s$ and
leaves every ReLU mask as it was), the four ReLU curves are *the same network*
up to a constant factor per layer — exactly the factors the theory predicts.
Their common wiggles around the dashed lines are a property of this one draw
of weights; we look at them after the table.
'''),
        code(r'''
SCHEMES = {
    "fixed std 0.01": ("relu", 0.0, lambda w: init.gaussian_(w, 0.01)),
    "Xavier (paper), n Var = 1": ("relu", 0.0, lambda w: init.paper_xavier_normal_(w, mode="fan_in")),
    "MSRA fan-in, Eq. 10": ("relu", 0.0, lambda w: init.msra_normal_(w, mode="fan_in")),
    "MSRA fan-out, Eq. 14": ("relu", 0.0, lambda w: init.msra_normal_(w, mode="fan_out")),
    "PReLU net, Eq. 15 (a=0.25)": ("prelu", 0.25, lambda w: init.msra_normal_(w, a=0.25, mode="fan_in")),
    "PReLU net, ReLU rule (a=0)": ("prelu", 0.25, lambda w: init.msra_normal_(w, a=0.0, mode="fan_in")),
}
COLORS = dict(zip(SCHEMES, ["tab:gray", "tab:blue", "tab:red", "tab:orange", "tab:green", "tab:olive"]))
stats, theories = {}, {}
for label, (activation, a, rule) in SCHEMES.items():
    net = initialized(activation, rule)
    stats[label] = measure(net)
    theories[label] = theory(net, a)

layers = np.arange(1, L + 1)
fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
for row, labels in enumerate((list(SCHEMES), list(SCHEMES)[1:])):
    for label in labels:
        measured, predicted = stats[label], theories[label]
        style = dict(color=COLORS[label])
        axes[row, 0].semilogy(layers, measured["response_std"], "o-", ms=3, label=label, **style)
        axes[row, 0].semilogy(layers, predicted["response_std"], "--", alpha=0.7, **style)
        axes[row, 1].semilogy(layers, measured["grad_std"], "o-", ms=3, label=label, **style)
        axes[row, 1].semilogy(layers, predicted["grad_ratio"] * measured["grad_std"][-1], "--", alpha=0.7,
                              **style)
    axes[row, 0].set_ylabel("std of response y_l")
    axes[row, 1].set_ylabel("std of ∂E/∂y_l")
axes[0, 0].set_title("forward: responses (dashed: theory)")
axes[0, 1].set_title("backward: gradients (dashed: theory)")
axes[0, 0].legend(fontsize=7)
for ax in axes.flat:
    for boundary in (10.5, 20.5):                  # where the width doubles
        ax.axvline(boundary, color="k", lw=0.5, alpha=0.4)
    ax.grid(alpha=0.3, which="both")
for ax in axes[1]:
    ax.set_xlabel("conv layer l")
plt.tight_layout()
plt.show()
'''),
        md(r'''
Per-layer factors: the geometric mean of $\mathrm{std}_{l+1}/\mathrm{std}_l$ over
layers 2 to 30 (forward) and, going backwards, over layers 30 to 1 (backward),
measured and predicted, and the end values.
'''),
        code(r'''
def per_layer(values, first, last):
    """Geometric-mean growth per layer from layer `first` to layer `last` (1-based)."""
    values = np.asarray(values, dtype=float)
    return (values[last - 1] / values[first - 1]) ** (1 / (last - first))


summary = {}
print(f"{'initialization':28s} {'forward/layer':>13s} {'theory':>7s} {'backward/layer':>14s} {'theory':>7s}"
      f" {'std y_30':>9s} {'std ∂E/∂y_1':>12s}")
for label in SCHEMES:
    measured, predicted = stats[label], theories[label]
    grads = measured["grad_std"]
    predicted_grads = predicted["grad_ratio"] * grads[-1]
    row = dict(forward=per_layer(measured["response_std"], 2, L),
               forward_theory=per_layer(predicted["response_std"], 2, L),
               backward=per_layer(grads[::-1], 1, L), backward_theory=per_layer(predicted_grads[::-1], 1, L),
               last_response=measured["response_std"][-1], first_grad=grads[0])
    summary[label] = row
    print(f"{label:28s} {row['forward']:13.4f} {row['forward_theory']:7.4f} {row['backward']:14.4f} "
          f"{row['backward_theory']:7.4f} {row['last_response']:9.2e} {row['first_grad']:12.2e}")
print(f"\nfor reference: 1/√2 = {1 / np.sqrt(2):.4f};  √(1+0.25²) = {np.sqrt(1.0625):.4f};  "
      f"fixed 0.01 predicts 0.01·√(9c/2) per layer (c = {', '.join(map(str, STAGE_WIDTHS))}: "
      f"{', '.join(f'{0.01 * np.sqrt(9 * c / 2):.3f}' for c in STAGE_WIDTHS)})")
ratio = summary["MSRA fan-out, Eq. 14"]["last_response"] / summary["MSRA fan-in, Eq. 10"]["last_response"]
d_1, c_2, d_L = WIDTHS[0], WIDTHS[0], WIDTHS[-1]
print(f"fan-out / fan-in, std of y_30: {ratio:.3f}  (theory: layer 1 gives n_1/n̂_1 = 1/{d_1}, layers 2-30 "
      f"c_2/d_L = {c_2}/{d_L}: √({c_2}/({d_1}·{d_L})) = {np.sqrt(c_2 / (d_1 * d_L)):.3f})")
'''),
        md(r'''
## One draw of weights, and the average over draws

The theory is a statement about variances *over the random weights*. One
network is one draw, and in a narrow layer the realized gain
$\mathrm{Var}[y_l]/\mathrm{Var}[y_{l-1}]$ scatters around its expected value
(its relative spread shrinks like $1/\sqrt{\text{width}}$). Over 30 layers the
scatter compounds multiplicatively, so a single narrow net wanders around the
theory's line like a random walk in log scale — the wiggles above. Averaging
the variance over independent draws recovers the line. Below, several draws
of the MSRA (fan-in) and Xavier ReLU nets: thin lines are single draws, thick
lines the square root of the variance averaged over the draws, dashed the
theory.
'''),
        code(r'''
draw_stats = {"MSRA fan-in, Eq. 10": [], "Xavier (paper), n Var = 1": []}
draw_theory = {label: [] for label in draw_stats}
for draw in range(DRAWS):
    for label in draw_stats:
        net = initialized("relu", SCHEMES[label][2], draw=draw)
        draw_stats[label].append(measure(net))
        draw_theory[label].append(theory(net))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
averaged = {}
for label, runs in draw_stats.items():
    color = COLORS[label]
    for key, ax in (("response_std", axes[0]), ("grad_std", axes[1])):
        values = np.array([run[key] for run in runs])
        mean_std = np.sqrt((values ** 2).mean(axis=0))
        averaged[(label, key)] = mean_std
        for v in values:
            ax.semilogy(layers, v, "-", color=color, lw=0.6, alpha=0.4)
        ax.semilogy(layers, mean_std, "-", color=color, lw=2.5, label=f"{label}: mean over {DRAWS} draws")
    theory_response = np.mean([t["response_std"] for t in draw_theory[label]], axis=0)
    axes[0].semilogy(layers, theory_response, "k--", lw=1)
    theory_grad = np.mean([t["grad_ratio"] for t in draw_theory[label]], axis=0)
    axes[1].semilogy(layers, theory_grad * averaged[(label, "grad_std")][-1], "k--", lw=1)
axes[0].set(xlabel="conv layer l", ylabel="std of response y_l", title="forward, several draws")
axes[1].set(xlabel="conv layer l", ylabel="std of ∂E/∂y_l", title="backward, several draws")
for ax in axes:
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()

print(f"{'':28s} {'forward/layer: mean of draws':>28s} {'single draws (min..max)':>24s} {'theory':>7s}")
draw_summary = {}
for label, runs in draw_stats.items():
    singles = [per_layer(run["response_std"], 2, L) for run in runs]
    mean_factor = per_layer(averaged[(label, "response_std")], 2, L)
    theory_factor = np.mean([per_layer(t["response_std"], 2, L) for t in draw_theory[label]])
    back = per_layer(averaged[(label, "grad_std")][::-1], 1, L)
    draw_summary[label] = dict(mean=mean_factor, lo=min(singles), hi=max(singles), theory=theory_factor,
                               backward=back)
    print(f"{label:28s} {mean_factor:28.4f} {min(singles):15.4f}..{max(singles):.4f} {theory_factor:7.4f}"
          f"   backward/layer (mean of draws) {back:.4f}")
'''),
        md(r'''
## The first layer's factor does not matter

Strictly, the first layer sees an unrectified input and its condition is
$n_1 \mathrm{Var}[w_1] = 1$, not ½. Using $1/n_1$ instead of $2/n_1$ on layer 1 only
multiplies every response by the same constant $1/\sqrt2$ — by the homogeneity
argument above, the ReLU masks do not change, so the whole forward curve
shifts — and leaves the gradients $\partial E/\partial y_l$ of our linear loss
exactly as they were. Both nets below draw the same numbers; only layer 1's std
differs.
'''),
        code(r'''
msra = SCHEMES["MSRA fan-in, Eq. 10"][2]
s_2n = measure(initialized("relu", msra))
s_1n = measure(initialized("relu", msra, first_rule=lambda w: init.paper_xavier_normal_(w, mode="fan_in")))
forward_ratio = s_2n["response_std"] / s_1n["response_std"]
backward_ratio = s_2n["grad_std"] / s_1n["grad_std"]
print(f"std y_l ratio (2/n on layer 1) / (1/n on layer 1): min {forward_ratio.min():.5f}, "
      f"max {forward_ratio.max():.5f}  (√2 = {np.sqrt(2):.5f})")
print(f"std ∂E/∂y_l ratio: min {backward_ratio.min():.5f}, max {backward_ratio.max():.5f}")
assert np.allclose(forward_ratio, np.sqrt(2), rtol=1e-3) and np.allclose(backward_ratio, 1, rtol=1e-3)

fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.semilogy(layers, s_2n["response_std"], "o-", ms=3, color="tab:red", label="2/n on every layer (Eq. 10)")
ax.semilogy(layers, s_1n["response_std"], "s-", ms=3, color="tab:purple", label="1/n on layer 1, 2/n after")
ax.semilogy(layers, stats["Xavier (paper), n Var = 1"]["response_std"], "-", color="tab:blue", alpha=0.5,
            label="1/n on every layer (Xavier)")
ax.set(xlabel="conv layer l", ylabel="std of response y_l", title="one layer's factor: a constant shift")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
plt.tight_layout()
plt.show()
'''),
        md(r'''
## The paper's 30-layer model

`models.model_30` is the network of Figure 3 (27 conv + 3 fc layers) with
zero padding, max pooling between stages, SPP and dropout (switched off
here), with the usual softmax loss; here `diagnostics.layer_statistics` does
the measuring. We compare the paper's Xavier and MSRA in the backward form
(Eq. 14), as in Figures 2 and 3. Zero padding on the small maps bends both
curves downward (the border effect above), and pooling lifts the responses,
so the theory's straight lines no longer apply — but the two inits draw the
same normal numbers and differ by exactly $\sqrt2$ in every layer's std, so by
the homogeneity argument the ratio of their responses at layer $l$ is exactly
$2^{-l/2}$. The last panel, `decay_ratio`, is the size of the weight-decay term
($\lambda = 5\cdot 10^{-4}$) relative to the data gradient of each layer's weights:
above 1, decay dominates the update — the paper's footnote 2 on the stalled
Xavier net.
'''),
        code(r'''
digits_x, digits_y = next(iter(data.DataLoader(digits, batch_size=BATCH, shuffle=True, seed=SEED,
                                                transform=normalize)))
widths = (64, 64, 128, 128) if FULL else ((4, 4, 8, 8) if FAST else (16, 16, 32, 32))
model_stats = {}
for scheme in ("xavier", "msra"):
    minirect.seed(SEED)
    model = models.model_30(widths=widths, fc_width=32 if FAST else 128, input_size=8, init=scheme,
                            mode="fan_out")
    rows = diagnostics.layer_statistics(model, digits_x, digits_y, weight_decay=5e-4)
    model_stats[scheme] = {key: np.array([row[key] for row in rows])
                           for key in ("response_std", "grad_std", "decay_ratio")}

ls = np.arange(1, len(model_stats["msra"]["response_std"]) + 1)
response_ratio = model_stats["xavier"]["response_std"] / model_stats["msra"]["response_std"]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for scheme, color in (("msra", "tab:red"), ("xavier", "tab:blue")):
    for ax, key in zip(axes, ("response_std", "grad_std", "decay_ratio")):
        ax.semilogy(ls, model_stats[scheme][key], "o-", ms=3, color=color, label=scheme)
axes[0].semilogy(ls, response_ratio, "kx", ms=4, label="ratio xavier / msra")
axes[0].semilogy(ls, 2.0 ** (-ls / 2), "k-", lw=0.8, alpha=0.6, label="2^(−l/2)")
axes[2].axhline(1, color="k", lw=0.8)
axes[0].set(title="responses y_l", xlabel="layer (27 conv, then 3 fc)")
axes[1].set(title="gradients ∂E/∂y_l", xlabel="layer")
axes[2].set(title="weight decay / data gradient", xlabel="layer")
for ax in axes:
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
assert np.allclose(response_ratio, 2.0 ** (-ls / 2), rtol=1e-3)
print("xavier/msra response ratio = 2^(-l/2) at every layer: True")
for scheme in ("msra", "xavier"):
    s = model_stats[scheme]
    print(f"{scheme:6s}: std ∂E/∂y_1 / std ∂E/∂y_30 = {s['grad_std'][0] / s['grad_std'][-1]:.2e};  "
          f"layers where decay dominates: {int((s['decay_ratio'] > 1).sum())} of {len(s['decay_ratio'])} "
          f"(decay / data gradient {s['decay_ratio'].min():.2g} to {s['decay_ratio'].max():.2g})")
'''),
        md(INIT_FINDINGS),
    ]


NOTEBOOKS = {
    "01_autograd": nb_autograd,
    "02_convolution": nb_convolution,
    "03_prelu": nb_prelu,
    "04_initialization": nb_initialization,
}


def build(name: str):
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb, fast: bool, timeout: int = 900):
    from nbclient import NotebookClient

    env_fast = "1" if fast else "0"
    os.environ["MINIRECT_NOTEBOOK_FAST"] = env_fast
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}}, record_timing=False)
    client.execute()
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="build only notebooks whose name contains one of these")
    parser.add_argument("--no-execute", action="store_true", help="write the notebooks without running them")
    parser.add_argument("--fast", action="store_true", help="run in the FAST setting (for a quick check)")
    args = parser.parse_args(argv)
    for name in NOTEBOOKS:
        if args.names and not any(part in name for part in args.names):
            continue
        nb = build(name)
        path = HERE / f"{name}.ipynb"
        if not args.no_execute:
            start = time.perf_counter()
            execute(nb, args.fast)
            print(f"{name}: executed in {time.perf_counter() - start:.1f} s"
                  f"{' (FAST)' if args.fast else ''}", flush=True)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e3:.0f} kB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
