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
# # Initialization of deep rectified networks
#
# Sec. 2.2 of the paper asks how large the random initial weights of a deep
# network of rectifiers must be so that the signal neither vanishes nor
# explodes on its way through many layers — forward (the responses) and
# backward (the gradients). The answer, $\mathrm{Var}[w_l] = 2/n_l$ (Eq. 10), differs
# from the then-common "Xavier" rule $1/n_l$ by a factor of 2 that compounds over
# depth: after 30 layers Xavier's signal is $2^{-30/2} = 2^{-15} \approx 3\cdot 10^{-5}$
# of MSRA's. (Several powers of 2 appear in these notebooks; the table "Which power
# of 2 is which" in `docs/derivations/conventions.md` says which quantity each describes.)
#
# We derive Eq. 10 and Eq. 14 step by step, check each step numerically, and
# then measure the per-layer standard deviation of the responses and of the
# gradients in a 30-layer network under five initializations, against the
# theory, and end with the paper's 30-layer model and the ratio of Xavier to MSRA
# in it. The optional notebook 04b continues with what small maps add: zero
# padding, pooling and finite width (the typical net, not only the mean), and a
# theory that follows the real maps.

# %% tags=["parameters"]
# Parameters (papermill style: this cell is tagged "parameters").
import os

FAST = os.environ.get("MINIRECT_NOTEBOOK_FAST", "0") == "1"   # tiny sizes: the test suite
DEVICE = os.environ.get("MINIRECT_DEVICE", "cpu")              # "cpu" or "cuda"
SEED = 0
FULL = False   # the larger setting, meant for a GPU: wider layers, a bigger batch

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
import minirect.functional as F
import minirect.theory
from minirect import data, diagnostics, init, models, nn
from minirect.backend import to_numpy

minirect.use(DEVICE)
minirect.fast_paths(False)   # the reference path: the code in minirect/functional is what runs
minirect.seed(SEED)
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "font.size": 9})
print("minirect", minirect.__version__, minirect.versions())
print("device:", minirect.default_device(), "| default dtype:", minirect.tensor([0.0]).dtype,
      "| FAST:", FAST, "| FULL:", FULL)

# %% [markdown]
# ## The forward case, Eq. 10
#
# A conv layer computes at each position (Eq. 5)
#
# $$
# y_l = W_l\, x_l + b_l ,
# $$
#
# where $x_l$ holds the $k \times k$ pixels of the $c$ input channels under the
# window — $n_l = k^2 c$ numbers — and $W_l$ is $d \times n_l$. The input is the
# previous layer's rectified response, $x_l = f(y_{l-1})$. Assume, as the paper
# does, that the elements of $W_l$ are i.i.d. with zero mean, the elements of
# $x_l$ are i.i.d., the two are independent, and $b_l = 0$.
#
# **Step 1.** $y_l$ is a sum of $n_l$ independent products, so
# $\mathrm{Var}[y_l] = n_l \mathrm{Var}[w_l x_l]$. For independent $w, x$ with $E[w] = 0$,
#
# $$
# \mathrm{Var}[w x] = E[w^2]E[x^2] - (E[w]E[x])^2 = \mathrm{Var}[w]\, E[x^2],
# \qquad\text{so}\qquad
# \mathrm{Var}[y_l] = n_l\, \mathrm{Var}[w_l]\, E[x_l^2] .
# \quad\text{(Eq. 7)}
# $$
#
# Note $E[x_l^2]$, not $\mathrm{Var}[x_l]$: after a ReLU, $x_l \ge 0$ has a non-zero mean.
#
# **Step 2.** $w_{l-1}$ is symmetric around zero and $b_{l-1} = 0$, so $y_{l-1}$ is
# symmetric around zero with zero mean. ReLU keeps the positive half:
#
# $$
# E[x_l^2] = E[\max(0, y_{l-1})^2] = \tfrac12 E[y_{l-1}^2] = \tfrac12 \mathrm{Var}[y_{l-1}] .
# $$
#
# **Step 3.** Together, $\mathrm{Var}[y_l] = \tfrac12 n_l \mathrm{Var}[w_l]\, \mathrm{Var}[y_{l-1}]$
# (Eq. 8), and over $L$ layers
#
# $$
# \mathrm{Var}[y_L] = \mathrm{Var}[y_1] \prod_{l=2}^{L} \tfrac12 n_l \mathrm{Var}[w_l] .
# \quad\text{(Eq. 9)}
# $$
#
# The product has $L - 1$ factors ($l = 2, \dots, L$). Making each factor 1 is
# *sufficient* for it to neither vanish nor explode, and that is the paper's choice:
#
# $$
# \tfrac12 n_l \mathrm{Var}[w_l] = 1, \qquad \text{std}[w_l] = \sqrt{2/n_l} .
# \quad\text{(Eq. 10)}
# $$
#
# It is not *necessary*: only the product matters, and factors that are not 1 can
# cancel, as the paragraph "Either condition suffices" below shows for Eq. 14.
#
# The paper's "Xavier" rule, $n_l\mathrm{Var}[w_l] = 1$, makes every factor ½: the
# response's std shrinks by $1/\sqrt2$ per layer. For the first layer the input is
# not rectified, so strictly $n_1 \mathrm{Var}[w_1] = 1$; but one factor on one layer
# only scales the whole product by a constant, and the paper uses Eq. 10 there
# too.
#
# **With PReLU** (Eq. 15), the negative half is kept with slope $a$:
# $E[f(y)^2] = \tfrac12 E[y^2] + \tfrac12 a^2 E[y^2]$, so the condition becomes
# $\tfrac12(1 + a^2)\, n_l \mathrm{Var}[w_l] = 1$ ($a = 0$: ReLU; $a = 1$: linear).
#
# Steps 1 and 2 numerically:

# %%
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


# %% [markdown]
# ## The backward case, Eq. 14
#
# Back-propagation through the same layer computes $\Delta x_l = \hat W_l\, \Delta y_l$
# with $\Delta \cdot = \partial E/\partial \cdot$; here $\hat W_l$ is $c \times \hat n_l$ and
# $\hat n_l = k^2 d$ — each input pixel reaches $k^2$ positions of $d$ output channels
# (the fan-out). Then $\Delta y_l = f'(y_l)\, \Delta x_{l+1}$.
#
# **Step 1.** $f'(y_l)$ is 0 or 1 with probability ½ each, independent of
# $\Delta x_{l+1}$, so $E[\Delta y_l] = 0$ and
# $E[(\Delta y_l)^2] = \mathrm{Var}[\Delta y_l] = \tfrac12 \mathrm{Var}[\Delta x_{l+1}]$.
#
# **Step 2.** As in the forward case, with $E[w] = 0$,
# $\mathrm{Var}[\Delta x_l] = \hat n_l \mathrm{Var}[w_l] \mathrm{Var}[\Delta y_l]
# = \tfrac12 \hat n_l \mathrm{Var}[w_l]\, \mathrm{Var}[\Delta x_{l+1}]$, and over the layers
#
# $$
# \mathrm{Var}[\Delta x_2] = \mathrm{Var}[\Delta x_{L+1}] \prod_{l=2}^{L} \tfrac12 \hat n_l \mathrm{Var}[w_l]
# \quad\Longrightarrow\quad
# \tfrac12 \hat n_l \mathrm{Var}[w_l] = 1, \qquad \text{std}[w_l] = \sqrt{2/\hat n_l} .
# \quad\text{(Eq. 14)}
# $$
#
# **Either condition suffices.** With Eq. 14 the forward product of Eq. 9 is
# $\prod_{l=2}^L \tfrac12 n_l \mathrm{Var}[w_l] = \prod_{l=2}^L n_l / \hat n_l
# = \prod_{l=2}^L c_l / d_l = c_2 / d_L$,
# because $d_l = c_{l+1}$ telescopes: a constant, not an exponential in $L$.
# Symmetrically, Eq. 10 scales the backward signal by $d_L / c_2$. To see this,
# our test network widens twice: 10 layers of 16 channels, 10 of 32, 10 of 64.
# Then $c_2 / d_L = 16/64$, so under Eq. 14 the responses of the last layers are
# $\sqrt{1/4} = 1/2$ of what they are under Eq. 10 — on top of a different first layer,
# whose fan-in ($9 \cdot 1$) and fan-out ($9 \cdot 16$) differ by 16.
#
# ## The measurement
#
# The theory assumes every response sees $n_l$ real inputs. A 3×3 conv with
# zero padding on an 8×8 map does not: border outputs see 4 or 6 of their 9
# inputs, which shrinks the variance by $(22/24)^2 \approx 0.84$ per layer for
# every initialization alike. To compare with the theory itself we pad
# **circularly** (the map wraps around like a torus; built below from slicing
# and concatenation, so autograd handles it); the paper's 30-layer model, with
# pooling and zero padding, follows at the end, and notebook 04b treats those
# effects in detail.
#
# The network is 30 such conv layers, each followed by a rectifier except the
# last, on a batch of normalized digits. The loss is $E = \sum y_{30} \odot r$ with a
# fixed Gaussian $r$, so $\partial E/\partial y_{30} = r$ has unit variance — the
# theory's starting point for the backward pass. Forward hooks keep every conv
# layer's response $y_l$ and ask autograd to retain its gradient (what
# `diagnostics.layer_statistics` does); we take the standard deviations in
# float64, because the squares of float32 numbers below about $10^{-19}$ leave
# float32's normal range (and below about $10^{-23}$ become zero), and one of the
# nets below goes far below that.

# %%
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


# %% [markdown]
# The theory for the same layers comes from the weights actually drawn:
# `minirect.theory.predicted_stds` evaluates Eq. 9 and its backward twin for a
# ReLU net. For the PReLU net the factor ½ becomes ½(1 + a²); we write that
# version out and check that it reduces to `predicted_stds` for $a = 0$.

# %%
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
mine, library = theory(check_net), minirect.theory.predicted_stds(check_net, input_std)
for key in ("response_std", "grad_ratio"):
    assert np.allclose(mine[key], library[key])
print("theory(a=0) == minirect.theory.predicted_stds: True")

# %% [markdown]
# Five initializations. The first four are ReLU nets: a fixed std of 0.01 (the
# common choice before the paper), the paper's "Xavier" ($n \mathrm{Var}[w] = 1$),
# MSRA in its forward form (Eq. 10, fan-in) and in its backward form (Eq. 14,
# fan-out). The fifth is a PReLU net ($a = 0.25$, channel-wise) initialized with
# Eq. 15; next to it, the same PReLU net initialized with the ReLU rule
# ($a = 0$ in Eq. 15), to show what the $(1 + a^2)$ correction is for.
#
# Measured curves are solid, the theory dashed; the bottom row leaves out the
# fixed-std net to show the others in detail. Because all rules draw the same
# normal numbers and a ReLU net with zero biases is positively homogeneous
# (scaling a layer's weights by $s > 0$ scales everything after it by $s$ and
# leaves every ReLU mask as it was), the four ReLU curves are *the same network*
# up to a constant factor per layer — exactly the factors the theory predicts.
# Their common wiggles around the dashed lines are a property of this one draw
# of weights; we look at them after the table.

# %%
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


# %% [markdown]
# Per-layer factors: the geometric mean of $\mathrm{std}_{l+1}/\mathrm{std}_l$ over
# layers 2 to 30 (forward) and, going backwards, over layers 30 to 1 (backward),
# measured and predicted, and the end values.

# %%
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

# %% [markdown]
# ## One draw of weights, and the average over draws
#
# The theory is a statement about variances *over the random weights*. One
# network is one draw, and in a narrow layer the realized gain
# $\mathrm{Var}[y_l]/\mathrm{Var}[y_{l-1}]$ scatters around its expected value
# (its relative spread shrinks like $1/\sqrt{\text{width}}$). Over 30 layers the
# scatter compounds multiplicatively, so a single narrow net wanders around the
# theory's line like a random walk in log scale — the wiggles above. Averaging
# the variance over independent draws recovers the line. Below, several draws
# of the MSRA (fan-in) and Xavier ReLU nets: thin lines are single draws, thick
# lines the square root of the variance averaged over the draws, dashed the
# theory.

# %%
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

# %% [markdown]
# ## The first layer's factor does not matter
#
# Strictly, the first layer sees an unrectified input and its condition is
# $n_1 \mathrm{Var}[w_1] = 1$, not ½. Using $1/n_1$ instead of $2/n_1$ on layer 1 only
# multiplies every response by the same constant $1/\sqrt2$ — by the homogeneity
# argument above, the ReLU masks do not change, so the whole forward curve
# shifts — and leaves the gradients $\partial E/\partial y_l$ of our linear loss
# exactly as they were. Both nets below draw the same numbers; only layer 1's std
# differs.

# %%
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

# %% [markdown]
# ## The paper's 30-layer model
#
# `models.model_30` is the network of Figure 3 (27 conv + 3 fc layers) with
# zero padding, max pooling between stages, SPP and dropout (switched off
# here), with the usual softmax loss; here `diagnostics.layer_statistics` does
# the measuring. We compare the paper's Xavier and MSRA in the backward form
# (Eq. 14), as in Figures 2 and 3. Zero padding on the small maps bends both
# curves downward (the border effect above), and pooling lifts the responses,
# so the theory's straight lines no longer apply — but the two inits draw the
# same normal numbers and differ by exactly $\sqrt2$ in every layer's std, so by
# the homogeneity argument the ratio of their responses at layer $l$ is exactly
# $2^{-l/2}$. The last panel, `decay_ratio`, is the size of the weight-decay term
# ($\lambda = 5\cdot 10^{-4}$) relative to the data gradient of each layer's weights:
# above 1, decay dominates the update — the paper's footnote 2 on the stalled
# Xavier net.

# %%
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

# %% [markdown]
# ## Findings in numbers
#
# *(Default setting stored above: 30 conv layers of widths 16/32/64 with
# circular padding on 64 normalized 8×8 digits; the table is one draw of
# weights, the "mean of draws" numbers average 8 draws.)*
#
# * **Xavier shrinks by about $1/\sqrt2$ per layer.** Measured forward factor
#   per layer: 0.659 in the stored draw (theory for its weights 0.705), 0.697
#   with the variance averaged over 8 draws (theory 0.706; $1/\sqrt2 = 0.7071$;
#   single draws 0.659–0.712). Backward: 0.717 (theory 0.722), 0.727 averaged
#   over draws. After 30 layers the response std is $5.3\cdot 10^{-6}$ (MSRA:
#   0.175) and the gradient std at layer 1 is $6.5\cdot 10^{-5}$ (MSRA: 1.5).
# * **MSRA keeps the signal flat, up to the scatter of one narrow draw.**
#   Forward factor per layer: 0.932 in the stored draw (theory 0.997) and 0.985
#   averaged over 8 draws (theory 0.999; single draws 0.932–1.007). Backward:
#   1.014 (theory 1.021 — the widening layers double the gradient's variance
#   going backwards, $d_L/c_2 = 4$ in all). The stored draw is the least
#   favourable of the 8; the gradients, which start from an i.i.d. Gaussian $r$,
#   follow the theory more closely than the responses, which start from 64
#   correlated digit images.
# * **Either MSRA form works.** The fan-out form (Eq. 14) is as flat as the
#   fan-in form (0.910 vs 0.932 per layer forward in the same draw, 0.990 vs
#   1.014 backward); its responses are lower by the constant factor 0.125 =
#   $\sqrt{c_2 / (d_1 d_L)}$ predicted above, not by anything growing with depth.
# * **Fixed std 0.01 vanishes:** 0.112 per layer forward (theory 0.120), a
#   response std of $5\cdot 10^{-30}$ at layer 30 and a gradient std of
#   $2\cdot 10^{-27}$ at layer 1.
# * **PReLU needs Eq. 15.** With $a = 0.25$ and the ReLU rule the signal grows
#   by $\sqrt{1 + a^2} = 1.031$ per layer relative to Eq. 15 (measured: 0.978 vs
#   0.949, a ratio of 1.031; theory 1.028 vs 0.997); Eq. 15 is as flat as MSRA for
#   ReLU.
# * **The first layer's factor does not matter:** $1/n$ instead of $2/n$ on
#   layer 1 lowers every response by exactly $\sqrt2$ (ratio 1.41421 at all 30
#   layers) and leaves every gradient unchanged (ratio 1.0000 ± 0.0001).
# * **The paper's 30-layer model:** with zero padding and pooling both inits'
#   curves bend, but Xavier's responses are exactly $2^{-l/2}$ of MSRA's at layer
#   $l$ ($3\cdot 10^{-5}$ at layer 30). Xavier's gradient at layer 1 is
#   $3\cdot 10^{-7}$ of that at layer 30 (MSRA: $7\cdot 10^{-3}$, the border
#   effect), and weight decay outweighs the data gradient in all 30 of its
#   layers (by a factor 400–8,000) and in none of MSRA's — footnote 2's
#   "diminishing gradients" at initialization.
