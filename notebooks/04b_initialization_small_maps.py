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
# # Initialization on small maps: padding, pooling and finite width
#
# *An optional follow-up to notebook 04.* The paper's Eq. 7–14 assume that
# every response sums $n_l = k^2 c$ real inputs and that the maps are large. The
# nets of `minirect reproduce` work on 8×8 digits, where zero padding, max
# pooling and spatial pyramid pooling change the signal as much as the
# initialization does. This notebook derives those effects, checks them
# numerically, and compares the default nets against the paper's idealized
# theory and against a theory that follows the real maps
# (`theory.geometry_aware_stds`), including the Monte Carlo treatment of
# pooling and the finite-width correction. It assumes notebook 04.

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
from minirect import diagnostics, nn, theory
from minirect.backend import to_numpy

minirect.use(DEVICE)
minirect.fast_paths(False)   # the reference path: the code in minirect/functional is what runs
minirect.seed(SEED)
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "font.size": 9})
print("minirect", minirect.__version__, minirect.versions())
print("device:", minirect.default_device(), "| default dtype:", minirect.tensor([0.0]).dtype,
      "| FAST:", FAST)

# %% [markdown]
# ## Zero padding, position by position
#
# Eq. 7 counts $n_l = k^2 c$ terms in every response. With zero padding that
# holds only in the interior of the map: a $3\times3$ "same" conv sums 9
# in-map taps at an interior pixel, 6 at an edge and 4 at a corner. Eq. 7
# holds position by position, so with $T(p)$ the taps of position $p$ that fall
# inside the map,
#
# $$
# \mathrm{Var}[y_p] = c\,|T(p)|\,\mathrm{Var}[w]\,E[x^2] .
# $$
#
# Along one axis of an $s$-pixel map, the two border pixels see 2 of the 3 taps
# and the other $s - 2$ see all 3, on average $(3s - 2)/(3s)$; the two axes are
# independent, so for a white input a layer keeps, averaged over the map,
#
# $$
# \frac{1}{s^2}\sum_p \frac{|T(p)|}{9} = \Big(\frac{3s-2}{3s}\Big)^2
# $$
#
# of the variance that Eq. 7 promises. The loss is *per layer*: it compounds
# with depth exactly like the ½ of Xavier, for every initialization alike —
# on the digits' 8×8 and 4×4 maps it is far from negligible. The table counts
# the taps by hand, evaluates the formula, asks
# `theory.predicted_stds(conv, geometry=True, input_shape=(1, s, s))`, and
# measures a conv on white noise; the last columns are the std kept per layer
# and over 10 layers.

# %%
def padding_factor_by_hand(s, k=3):
    """Mean over an s×s map of the share of a k×k 'same' kernel's taps inside the map."""
    inside = [sum(0 <= i + t - k // 2 < s for t in range(k)) for i in range(s)]
    return sum(a * b for a in inside for b in inside) / (s * s * k * k)


noise_rng = np.random.default_rng(SEED)
print(f"{'map s':>5s} {'by hand':>8s} {'((3s-2)/3s)²':>13s} {'predicted_stds':>14s} {'measured':>9s}"
      f" {'std/layer':>10s} {'std, 10 layers':>15s}")
padding_table = {}
for s in (2, 4, 8, 14, 16, 28, 56, 224):
    formula = ((3 * s - 2) / (3 * s)) ** 2
    by_hand = padding_factor_by_hand(s)
    predicted_factor = measured = float("nan")
    if s <= 28:          # the theory carries a (s²)² matrix of moments: small maps only
        minirect.seed(SEED)
        conv = nn.Conv2d(1, 64, 3, padding=1)
        w2 = float((to_numpy(conv.weight.data).astype(np.float64) ** 2).mean())
        predicted = theory.predicted_stds(nn.Sequential(conv), geometry=True, input_shape=(1, s, s))
        predicted_factor = predicted["rms_response"][0] ** 2 / (9 * w2)
        assert abs(predicted_factor - formula) < 1e-9
        noise = minirect.tensor(noise_rng.standard_normal((512 if s <= 8 else 64, 1, s, s)),
                                dtype="float32", device=DEVICE)   # white noise through the same conv
        with minirect.no_grad():
            measured = float((to_numpy(conv(noise).data).astype(np.float64) ** 2).mean()) / (9 * w2)
    padding_table[s] = dict(formula=formula, by_hand=by_hand, predicted=predicted_factor, measured=measured)
    assert abs(by_hand - formula) < 1e-12
    print(f"{s:5d} {by_hand:8.4f} {formula:13.4f} {predicted_factor:14.4f} {measured:9.4f}"
          f" {np.sqrt(formula):10.4f} {formula ** 5:15.4f}")

# %% [markdown]
# (On the paper's ImageNet model B the stages are at 56, 28 and 14 pixels, so
# padding costs a few per cent per layer; on 8×8 digits it is 16 % of the
# variance per layer, on 4×4 maps 31 %.) Two more things bend the curves of the
# paper's nets. **Max pooling** acts once per pool: forward, the max of a window
# of rectified pixels has a larger second moment than one pixel (4 independent
# $\mathcal N(0, 1)$: $E[\mathrm{relu}(\max)^2] \approx 1.54$ instead of ½);
# backward, each window's gradient goes to its winner only. **Finite width**: a
# layer of $d$ channels averages only $d$ random draws, and the product of those
# random factors over many layers makes one seed's std fall, on average, below
# $\sqrt{E[\mathrm{Var}]}$.
#
# `theory.geometry_aware_stds(model, inputs=x)` — the same as
# `predicted_stds(model, geometry=True, inputs=x)` — carries the second moments
# $E[x_p x_q]$ of one channel over all positions through the net: convs by the
# in-map-tap rule, ReLU by the arc-cosine formula (whose diagonal is Eq. 8's ½),
# max pooling and SPP by the max of each bin over a Gaussian field with those
# moments (Monte Carlo), and backward $E[(\partial E/\partial x_p)^2]$ along the
# same taps; it corrects the response std for the finite width
# (docs/derivations/initialization.md has the details).
#
# Below, the **default nets** of `minirect reproduce` (the Figure 2 and 3 nets
# of `minirect.experiments.recipe`: 8×8 digits, a first stage at 8×8, a
# pool, then 4×4 maps, SPP and three fc layers), with the paper's Xavier and
# MSRA in the backward form, at initialization: measured per-layer stds
# (averaged over seeds, each seed its own weights and its own batch) against
# the paper's idealized theory (dotted) and the geometry-aware one (dashed).

# %%
from minirect.experiments import recipe

GEOMETRY_SEEDS = range(1) if FAST else range(32)    # one seed scatters ~2x at depth
SAMPLES = 2000 if FAST else theory.MONTE_CARLO_SAMPLES   # Monte Carlo draws per pooling layer


def conv_map_sizes(model, size):
    """The map size each conv layer works on (zero padding keeps it, a pool shrinks it)."""
    sizes = []
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d):
            sizes.append(size)
        elif isinstance(layer, nn.MaxPool2d):
            k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
            stride = layer.stride or k                       # the stride defaults to the kernel size
            stride = stride if isinstance(stride, int) else stride[0]
            size = (size - k) // stride + 1
    return sizes


def default_net(figure, scheme):
    """Mean over seeds of the measured stds and of both theories, per weighted layer."""
    config = recipe.make_config(figure)
    train, _, classes, channels, size = recipe.load_data(config)
    rows = {key: [] for key in ("response", "grad", "ideal_response", "ideal_grad",
                                "geometry_response", "geometry_grad")}
    for seed in GEOMETRY_SEEDS:
        train.load_state_dict({"seed": seed, "epoch": 0, "batch": 0})
        x_batch, y_batch = next(iter(train))
        if FAST:
            x_batch, y_batch = x_batch[:16], y_batch[:16]
        minirect.seed(seed)
        model = recipe.build_model(config, scheme, classes, channels, size)
        measured = diagnostics.layer_statistics(model, x_batch, y_batch)
        ideal = theory.predicted_stds(model, input_std=float(x_batch.data.std()))
        geometry = theory.geometry_aware_stds(model, inputs=x_batch, samples=SAMPLES)
        rows["response"].append([row["response_std"] for row in measured])
        rows["grad"].append([row["grad_std"] / measured[-1]["grad_std"] for row in measured])
        for name, theory_ in (("ideal", ideal), ("geometry", geometry)):
            rows[f"{name}_response"].append(theory_["response_std"])
            rows[f"{name}_grad"].append(theory_["grad_ratio"])
    result = {key: np.mean(values, axis=0) for key, values in rows.items()}
    result["conv_sizes"] = conv_map_sizes(model, size)
    result["kinds"] = [row["kind"] for row in measured]
    return result


def worst(ratios):
    """The largest factor by which measurement and theory differ over the layers."""
    return float(np.exp(np.max(np.abs(np.log(ratios)))))


default_nets = {(figure, scheme): default_net(figure, scheme)
                for figure in ("fig2", "fig3") for scheme in ("msra", "xavier")}

fig, axes = plt.subplots(2, 2, figsize=(12, 7))
for column, figure in enumerate(("fig2", "fig3")):
    for scheme, color in (("msra", "tab:red"), ("xavier", "tab:blue")):
        r = default_nets[figure, scheme]
        ls_ = np.arange(1, len(r["response"]) + 1)
        for row, (key, what) in enumerate((("response", "std of response y_l"),
                                           ("grad", "std of ∂E/∂y_l / last layer's"))):
            ax = axes[row, column]
            ax.semilogy(ls_, r[key], "o-", ms=3, color=color, label=f"{scheme}: measured")
            ax.semilogy(ls_, r[f"ideal_{key}"], ":", color=color, lw=1.5, label=f"{scheme}: paper's theory")
            ax.semilogy(ls_, r[f"geometry_{key}"], "--", color=color, lw=1.2,
                        label=f"{scheme}: geometry-aware")
            ax.set(ylabel=what)
    n_convs = len(default_nets[figure, "msra"]["conv_sizes"])
    axes[0, column].set_title(f"{figure}: {n_convs} conv + 3 fc layers, "
                              f"mean of {len(GEOMETRY_SEEDS)} seed(s)")
    axes[1, column].set_xlabel("weighted layer l")
for ax in axes.flat:
    ax.grid(alpha=0.3, which="both")
axes[0, 0].legend(fontsize=7)
plt.tight_layout()
plt.show()

print("worst layer: the largest factor between measured and predicted std, over the layers")
print(f"{'net':6s} {'init':6s} {'paper fwd':>10s} {'paper bwd':>10s}"
      f" {'geometry fwd':>13s} {'geometry bwd':>13s}")
geometry_worst = {}
for (figure, scheme), r in default_nets.items():
    row = [worst(r["response"] / r["ideal_response"]), worst(r["grad"] / r["ideal_grad"]),
           worst(r["response"] / r["geometry_response"]), worst(r["grad"] / r["geometry_grad"])]
    geometry_worst[figure, scheme] = row
    print(f"{figure:6s} {scheme:6s} {row[0]:9.1f}x {row[1]:9.1f}x {row[2]:12.2f}x {row[3]:12.2f}x")

# %% [markdown]
# Within a stage the only geometric effect is padding, so there the measured
# MSRA response should fall by $\sqrt{((3s-2)/3s)^2} = (3s-2)/3s$ per conv:
# 0.917 on the 8×8 maps and 0.833 on the 4×4 maps, where the paper's theory
# says 1. Geometric mean of $\mathrm{std}_{l+1}/\mathrm{std}_l$ over the convs
# of each stage (from the second conv on: the first layer sees the raw input):

# %%
print(f"{'net':6s} {'map':>5s} {'convs':>6s} {'measured/layer':>15s} {'geometry-aware':>15s}"
      f" {'(3s-2)/3s':>10s} {'paper':>6s}")
stage_factors = {}
for figure in ("fig2", "fig3"):
    r = default_nets[figure, "msra"]
    sizes = np.array(r["conv_sizes"])
    for s in sorted(set(sizes), reverse=True):
        index = np.flatnonzero(sizes == s)
        index = index[index > 0]                              # not the first layer
        first, last = index[0], index[-1]
        measured = (r["response"][last] / r["response"][first]) ** (1 / (last - first))
        predicted = (r["geometry_response"][last] / r["geometry_response"][first]) ** (1 / (last - first))
        stage_factors[figure, s] = (measured, predicted)
        print(f"{figure:6s} {s:3d}x{s:<2d} {len(index):6d} {measured:15.3f} {predicted:15.3f}"
              f" {(3 * s - 2) / (3 * s):10.3f} {1:6d}")

# %% [markdown]
# The geometry-aware theory follows the measured curves of both inits where
# the paper's idealized line misses by a large factor; what remains is mostly
# the finite width (16–32 channels), where one seed's std scatters widely (see
# the draws in notebook 04, and docs/derivations/initialization.md for 300 seeds). The
# two inits give the same ratios to their theories: they draw the same normal
# numbers, and a ReLU net with zero biases scales by a constant per layer —
# so the paper's comparison, MSRA against Xavier on the same net, is intact,
# but at 8×8 *both* start from a weaker signal than at ImageNet scale.

# %% [markdown]
# ## The typical net, not only the mean
#
# The theory gives $\mathbb E[\mathrm{Var}_l]$ over the weights. One seed's
# variance is that times a product of one random factor per layer: each layer
# averages only $d$ channels, and for $n$ i.i.d. ReLU units the relative
# variance of their mean energy is $\frac{3/2 - 1/4}{1/4}\cdot\frac1n = \frac5n$
# (Hanin & Nica 2019). Independent factors multiply to a roughly log-normal
# $F_l$ with $\log F_l \sim \mathcal N(-s_l^2/2,\, s_l^2)$, $s_l^2 = \sum_{k\le l} v_k$,
# so the sd of log std across seeds is $s_l/2$ and a typical (median) seed has
# $\sqrt{\mathbb E[\mathrm{Var}_l]}\,e^{-s_l^2/4}$ — below the mean at depth.
# `theory.finite_width_stds(model, x, y)` computes $v_l$ for the real maps
# (positions and images of a channel are correlated: alike images make a
# channel all-or-nothing, and the effective width falls from $d\cdot N\cdot P$
# towards $d$), forward and backward
# (docs/derivations/initialization.md). Below: many seeds of
# notebook 04's 30-layer model (`models.model_30`, MSRA, fan-out) on a batch of
# 64 normalized digits, each seed a thin line, the band median ×/÷
# $e^{\text{sd}}$ shaded.

# %%
from minirect import data, models

digits = data.Digits(train=True)
normalize = data.paper_input_transform(digits.images, digits.pixel_max, input_scale="unit")
digits_x, digits_y = next(iter(data.DataLoader(digits, batch_size=64, shuffle=True, seed=SEED,
                                                transform=normalize)))
widths = (4, 4, 8, 8) if FAST else (16, 16, 32, 32)
band_seeds = range(4 if FAST else 32)
logs = {"response_std": [], "grad_std": []}
for s in band_seeds:
    minirect.seed(s)
    model = models.model_30(widths=widths, fc_width=32 if FAST else 128, input_size=8, init="msra",
                            mode="fan_out")
    rows = diagnostics.layer_statistics(model, digits_x, digits_y)
    logs["response_std"].append(np.log([r["response_std"] for r in rows]))
    logs["grad_std"].append(np.log([r["grad_std"] / rows[-1]["grad_std"] for r in rows]))
    if s == band_seeds[0]:
        band = minirect.theory.finite_width_stds(model, digits_x, digits_y)
ls = np.arange(1, len(rows) + 1)                    # the weighted layers, 1..30

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
band_rows = []
for ax, key, median, spread in ((axes[0], "response_std", "response_median", "response_spread"),
                                (axes[1], "grad_std", "grad_median", "grad_spread")):
    values = np.array(logs[key])
    for v in values:
        ax.semilogy(ls, np.exp(v), "-", color="tab:red", lw=0.5, alpha=0.3)
    centre, width = np.array(band[median]), np.exp(band[spread])
    ax.fill_between(ls, centre / width, centre * width, color="tab:red", alpha=0.2,
                    label="theory: median ×/÷ e^sd")
    ax.semilogy(ls, centre, "k--", lw=1, label="theory: median seed")
    ax.semilogy(ls, np.exp(np.median(values, axis=0)), "k-", lw=2,
                label=f"measured median, {len(values)} seeds")
    if key == "response_std":
        ax.semilogy(ls, band["rms_response"], "k:", lw=1, label="theory: √E[Var] (the mean)")
    band_rows.append((key, np.exp(np.median(values, axis=0)) / centre,
                      values.std(axis=0, ddof=1)[:-1] / np.array(band[spread][:-1])))
axes[0].set(title="responses y_l over seeds", xlabel="layer")
axes[1].set(title="gradients ∂E/∂y_l / ∂E/∂y_30 over seeds", xlabel="layer")
for ax in axes:
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
for key, median_ratio, spread_ratio in band_rows:
    print(f"{key:12s} measured/predicted median {median_ratio.min():.2f}..{median_ratio.max():.2f},  "
          f"sd of log std {spread_ratio.min():.2f}..{spread_ratio.max():.2f}")
print(f"last layer: typical seed / √E[Var] = {band['response_median'][-1] / band['rms_response'][-1]:.2f} "
      f"(predicted), {np.exp(np.median(logs['response_std'], axis=0))[-1] / band['rms_response'][-1]:.2f} "
      f"(measured); sd of log std {band['response_spread'][-1]:.2f}")

# %% [markdown]
# ## Findings in numbers
#
# * **Small maps need the geometry-aware theory.** Zero padding keeps
#   $((3s-2)/3s)^2$ of the variance per 3×3 conv on an $s\times s$ map: 0.840
#   at 8×8 and 0.694 at 4×4 (counted by hand, from
#   `predicted_stds(..., geometry=True)` and measured on white noise alike),
#   0.976 at 56×56. On the default nets of `minirect reproduce` (mean of 32 seeds
#   at initialization) the paper's idealized theory misses the measured stds by
#   up to 7.1× (Fig. 2 net) and 17.5× (Fig. 3 net) forward and 16–37× backward;
#   the geometry-aware theory stays within 1.31× (Fig. 2) and 1.36× (Fig. 3)
#   forward and 1.14× backward, for MSRA and Xavier alike. Within a stage MSRA's response falls
#   by 0.940–0.946 per conv on the 8×8 maps and 0.850–0.853 on the 4×4 maps,
#   where padding alone predicts 0.917 and 0.833.
# * **The typical net sits below the mean.** Over 32 seeds of notebook 04's
#   30-layer model (MSRA), the measured median std is 0.76–1.06 of the finite-width theory's
#   median at every layer forward, 0.94–1.06 backward, and the sd of log std
#   0.76–1.01 (forward) and 0.75–1.13 (backward) of the predicted one; at layer
#   30 a typical seed has 0.39× (measured; predicted 0.50×) of
#   $\sqrt{\mathbb E[\mathrm{Var}]}$, with an sd of 0.83 in log std.
