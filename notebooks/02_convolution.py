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
# # Convolution as im2col + GEMM
#
# A convolution layer slides each of its $D$ filters over the input and takes
# a dot product at every position. Written as loops that is slow; minirect
# (like Caffe, whose layers the paper used) instead copies every input patch
# into a column of a matrix — **im2col** — and computes all dot products as a
# single matrix product (GEMM), which BLAS or cuBLAS runs near the machine's
# peak speed. This notebook shows the column matrix, derives the backward pass
# in the same matrix language (it needs **col2im**, the adjoint of im2col),
# checks everything numerically, illustrates the spatial pyramid pooling (SPP)
# of the paper's models, and times the layer.

# %% tags=["parameters"]
# Parameters (papermill style: this cell is tagged "parameters").
import os

FAST = os.environ.get("MINIRECT_NOTEBOOK_FAST", "0") == "1"   # tiny sizes: the test suite
DEVICE = os.environ.get("MINIRECT_DEVICE", "cpu")              # "cpu" or "cuda"
SEED = 0
FULL = False   # the larger setting, meant for a GPU: larger layers in the timing

# %%
# %matplotlib inline
import importlib.util
import time
from functools import partial

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
import minirect.functional as F
from minirect.backend import to_numpy

minirect.use(DEVICE)
minirect.fast_paths(False)   # the reference path: the code in minirect/functional is what runs
minirect.seed(SEED)
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "font.size": 9})
print("minirect", minirect.__version__, minirect.versions())
print("device:", minirect.default_device(), "| default dtype:", minirect.tensor([0.0]).dtype,
      "| FAST:", FAST, "| FULL:", FULL)

# %% [markdown]
# ## The column matrix
#
# With input $x$ of shape $(N, C, H, W)$, kernels $W$ of shape $(D, C, k_h, k_w)$,
# stride $s$ and zero padding $p$ (padded input $x_{pad}$), the output is
#
# $$
# y[n, d, o_h, o_w] = b_d + \sum_{c, i, j} W[d, c, i, j]\; x_{pad}[n, c,\, o_h s + i,\, o_w s + j],
# \qquad O_H = \left\lfloor \frac{H + 2p - k_h}{s} \right\rfloor + 1 .
# $$
#
# im2col puts the patch under output position $(n, o_h, o_w)$ into one column:
#
# $$
# \mathrm{cols}[(c, i, j),\, (n, o_h, o_w)] = x_{pad}[n, c,\, o_h s + i,\, o_w s + j],
# \qquad \mathrm{cols} \in \mathbb{R}^{C k_h k_w \times N O_H O_W},
# $$
#
# so that with $W_m$ = `W.reshape(D, C·kh·kw)` the whole layer is one product,
#
# $$
# Y = W_m\, \mathrm{cols} + b \;\in\; \mathbb{R}^{D \times N O_H O_W}.
# $$
#
# For a $4 \times 4$ image with pixel values $0..15$ and a $2 \times 2$ kernel
# (stride 1), there are $3 \times 3 = 9$ positions, so `cols` is $4 \times 9$: each
# column lists the four pixels of one patch. The orange frame marks the patch
# of column 4 (the centre position) in both pictures.

# %%
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


# %% [markdown]
# Every pixel appears in as many columns as there are windows covering it —
# here the centre pixels four times — so the column matrix is up to
# $k_h k_w$ times larger than the input. That memory is the price of turning the
# layer into a GEMM.
#
# ## Check against the definition
#
# A direct implementation of the formula above, with six nested loops, is the
# reference. It is slow, so we compare on a small input with stride 2 and
# padding 1 (where the bookkeeping is easiest to get wrong):

# %%
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

# %% [markdown]
# ## The backward pass
#
# Let $G = \partial E/\partial Y$, arranged like $Y$ as a $D \times N O_H O_W$
# matrix. The differential of $Y = W_m\,\mathrm{cols}$ is
# $dY = dW_m\,\mathrm{cols} + W_m\, d\mathrm{cols}$, and
# $dE = \langle G, dY \rangle = \operatorname{tr}(G^\top dY)$. Moving factors around
# inside the trace,
#
# $$
# \operatorname{tr}(G^\top dW_m\, \mathrm{cols}) = \langle G\, \mathrm{cols}^\top, dW_m \rangle
# \;\Rightarrow\; \frac{\partial E}{\partial W_m} = G\, \mathrm{cols}^\top ,
# \qquad
# \operatorname{tr}(G^\top W_m\, d\mathrm{cols}) = \langle W_m^\top G, d\mathrm{cols}\rangle
# \;\Rightarrow\; \frac{\partial E}{\partial\, \mathrm{cols}} = W_m^\top G ,
# $$
#
# and $\partial E/\partial b_d = \sum_{\text{columns}} G[d, :]$. Finally,
# $\mathrm{cols} = A\,x$ for a fixed 0/1 matrix $A$ that copies pixels into
# columns, so
#
# $$
# \frac{\partial E}{\partial x} = A^\top \frac{\partial E}{\partial\,\mathrm{cols}}
# = \mathrm{col2im}\!\left(W_m^\top G\right),
# $$
#
# where $A^\top$ — **col2im** — *adds* each column entry back onto the pixel it
# was copied from (a pixel in several windows collects several contributions;
# padding entries are dropped). Three things to verify: col2im is the adjoint of
# im2col, $\langle \mathrm{im2col}(x), C\rangle = \langle x, \mathrm{col2im}(C)\rangle$
# for all $x, C$; the formulas match `conv2d`'s backward; and both match finite
# differences.

# %%
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


# %% [markdown]
# The naive loop has an equally naive backward pass: every multiply-add
# `y[n,d,oh,ow] += W[d,c,i,j] · xpad[n,c,oh·s+i,ow·s+j]` sends `G · xpad` to
# $\partial E/\partial W$ and `G · W` to $\partial E/\partial x_{pad}$. It agrees
# with conv2d too, and gradcheck compares conv2d with finite differences for a
# few geometries (including non-square kernels and strides that skip pixels):

# %%
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
    conv = partial(F.conv2d, stride=case["stride"], padding=case["padding"])
    ok = minirect.gradcheck(conv, xt, Wt, bt)
    print("gradcheck", case, "->", ok)

# %% [markdown]
# How many windows cover each pixel? Push a column matrix of ones through
# col2im: the result counts, for every pixel, the windows that contain it —
# which is also how many terms its gradient sums. With a $3 \times 3$ kernel,
# stride 1 and padding 1, interior pixels are in 9 windows and corners in 4;
# with stride 2, pixels are in 1, 2 or 4 windows (along each axis every other
# pixel is shared by two neighbouring windows, and the two axes multiply).

# %%
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


# %% [markdown]
# ## Spatial pyramid pooling
#
# The paper's models end their convolutional part with SPP (from SPP-net):
# each feature map is max-pooled into $n \times n$ bins for a few levels $n$
# (the 14-layer model uses $\{6, 3, 2, 1\}$, models A–C $\{7, 3, 2, 1\}$), and the
# results are concatenated. The output length $C \sum_n n^2$ does not depend on
# the map size, so the fc layers accept inputs of any size.
#
# minirect's bin $i$ of $n$ over a side of length $H$ covers the rows
#
# $$
# \left\lfloor \tfrac{iH}{n} \right\rfloor \;\le\; r \;<\; \left\lceil \tfrac{(i+1)H}{n} \right\rceil ,
# $$
#
# which tiles the map exactly when $n$ divides $H$, and otherwise lets
# neighbouring bins share one row or column (they always cover the whole map).
# Below: a $7 \times 7$ map with levels $\{3, 2, 1\}$, each bin framed and its
# maximum circled; then a check of `F.spp` against these windows, and its
# output length for maps of several sizes.

# %%
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

# %% [markdown]
# ## The fast path: shifted windows (`minirect.accel`)
#
# Everything above is the reference: `functional/conv.py` computes every
# convolution as im2col + one GEMM and its backward pass through col2im, and
# that is what runs under `minirect.fast_paths(False)`, as in this notebook's
# setup cell (or with `MINIRECT_FAST_PATHS=0` in the environment). With fast
# paths on, minirect's default,
# a stride-1 convolution takes one dispatch line to a faster layout in
# `minirect/accel/shifted_windows.py`, which the test suite proves equal to
# the reference. A student can skip it; here is the idea.
#
# The im2col above copies, for each kernel offset, a strided 2-D window of
# every map — many short rows. For stride 1 there is a layout where each copy
# is one long contiguous run. Lay the map out in rows of width
# $W_p = W + p_w$ (the $W$ pixels, then a gap of $p_w$ zeros) and flatten it
# into a single row: pixel $(h, w)$ becomes entry $(h + p_h) W_p + (w + p_w)$.
# One gap serves as the right padding of a row *and* the left padding of the
# next. The input that offset $(i, j)$ sees for output pixel $(o_h, o_w)$ is
# entry $(i W_p + j) + (o_h W_p + o_w)$ — a run that starts at $i W_p + j$,
# read at position $l = o_h W_p + o_w$. The price: positions with
# $o_w \ge O_W$ wrap into the next row and are computed, then dropped (1 of
# every 29 columns at 28×28).
#
# And the input gradient of a stride-1 convolution is itself a convolution: of
# $g_y$ padded by $k - 1 - p$, with each kernel flipped and the channel axes
# swapped. So the fast path needs no col2im. Below: the runs of a 4×4 map with
# a 3×3 kernel, then checks that the fast path and the plain im2col/col2im path
# agree, and that $g_x$ is that flipped-kernel convolution.

# %%
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
    with minirect.fast_paths(shifted):      # the public switch; the previous setting comes back after
        xt = minirect.tensor(x0, device=DEVICE, requires_grad=True)
        Wt = minirect.tensor(W0, device=DEVICE, requires_grad=True)
        y = F.conv2d(xt, Wt, padding=1)
        y.backward(minirect.tensor(gy0, device=DEVICE))
    grads[shifted] = [to_numpy(a) for a in (y.data, xt.grad, Wt.grad)]
for name, fast, plain in zip(["y", "dE/dx", "dE/dW"], grads[True], grads[False]):
    print(f"{name:6s} shifted windows vs im2col/col2im: max difference {abs(fast - plain).max():.1e}")
flipped = np.ascontiguousarray(W0[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
gx = F.conv2d(minirect.tensor(gy0, device=DEVICE), minirect.tensor(flipped, device=DEVICE), padding=3 - 1 - 1)
print(f"dE/dx vs conv2d(gy, flipped kernels, padding k-1-p): max difference "
      f"{abs(to_numpy(gx.data) - grads[True][1]).max():.1e}")
assert all(np.allclose(a, b, atol=1e-10) for a, b in zip(grads[True], grads[False]))

# %% [markdown]
# ## Timing on the active backend
#
# A convolution's forward pass costs $2 N D C k_h k_w O_H O_W$ floating-point
# operations (a multiply and an add per term); the backward pass is two more
# GEMMs of the same size ($G\,\mathrm{cols}^\top$ and $W_m^\top G$), so a training
# step costs about three times the forward. We time forward + backward for a few
# "same"-padded $3 \times 3$ layers and report the achieved rate. The rate grows
# with the layer: in the stored output (a two-core CPU, the BLAS with both
# threads) the smallest layer runs at about 10 GFLOP/s either way, the larger
# ones at 20–50 GFLOP/s with the reference and 40–120 with fast paths on (one
# timing each: they move by tens of per cent from run to run). A GPU
# (set `DEVICE = "cuda"`, and `FULL = True` for larger layers) is one to two
# orders of magnitude faster. Each layer is timed twice: the reference (im2col + GEMM,
# `minirect.fast_paths(False)`) and then with fast paths on.
# `benchmarks/bench_conv.py` has the full benchmark.

# %%
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
    for _ in range(repeats + 1):               # the first run warms up (and is dropped)
        xt.grad = Wt.grad = bt.grad = None
        minirect.backend.synchronize()
        start = time.perf_counter()
        F.conv2d(xt, Wt, bt, padding=k // 2).backward(gy)
        minirect.backend.synchronize()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times[1:]))
    flops = 3 * 2 * N * D * C * k * k * H * H
    return seconds, flops / seconds / 1e9


labels, rates = [], {"reference": [], "fast paths": []}
print(f"device: {minirect.default_device()}")
print(f"{'N':>4} {'C':>4} {'D':>4} {'H=W':>4}   reference ms  GFLOP/s   fast paths ms  GFLOP/s")
for N, C, D, H in sizes:
    row = []
    for name, enabled in (("reference", False), ("fast paths", True)):
        with minirect.fast_paths(enabled):
            seconds, rate = time_conv(N, C, D, H)
        rates[name].append(rate)
        row.append(f"{seconds * 1e3:12.1f}  {rate:7.1f}")
    labels.append(f"N{N} C{C}→{D}\n{H}×{H}")
    print(f"{N:4d} {C:4d} {D:4d} {H:4d}   " + "   ".join(row))
fig, ax = plt.subplots(figsize=(6.5, 2.6))
positions = np.arange(len(labels))
for shift, (name, color) in zip((-0.2, 0.2), (("reference", "tab:gray"), ("fast paths", "tab:purple"))):
    ax.bar(positions + shift, rates[name], width=0.4, color=color, label=name)
ax.set_xticks(positions, labels)
ax.set(ylabel="GFLOP/s", title=f"conv2d 3×3 forward + backward on {minirect.default_device()}")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# * im2col turns a convolution into one GEMM, $Y = W_m\,\mathrm{cols}$, at the
#   cost of a column matrix up to $k_h k_w$ times larger than the input.
# * With fast paths on (the default), a stride-1 `conv2d` builds the same
#   columns from contiguous runs of the flattened padded maps and computes
#   $\partial E/\partial x$ as a convolution with flipped kernels
#   (`minirect/accel/shifted_windows.py`) — same results, cheaper copies;
#   `minirect.fast_paths(False)` runs the reference everywhere.
# * Backward: $\partial E/\partial W_m = G\,\mathrm{cols}^\top$ and
#   $\partial E/\partial x = \mathrm{col2im}(W_m^\top G)$, with col2im the adjoint
#   (transpose) of im2col — checked above against the definition, a loop and
#   finite differences.
# * SPP max-pools fixed grids of bins, so the fc layers see a fixed length
#   whatever the input size.
#
# Derivation in full: `docs/derivations/conv.md`.
