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
# # The depth sweep: where does "Xavier" stop converging?
#
# The paper shows two depths. At 22 layers (Figure 2) both initializations converge, MSRA
# earlier; at 30 layers (Figure 3) the paper's "Xavier", $\hat n_l\,\mathrm{Var}[w_l] = 1$,
# stalls. Section 2.2 explains why, and the explanation predicts what happens in between:
# with ReLU, each layer multiplies the variance of the backward signal by
# $\tfrac12 \hat n_l \mathrm{Var}[w_l]$. For the conv layers (backward form) that is 1 for MSRA
# and $\tfrac12$ for Xavier; the fc layers use the forward form, where MSRA's factor is
# $\hat n_l / n_l$ rather than 1, but Xavier's is half of MSRA's in every layer all the same. After
# the $L-1$ layers above the first, the gradient that reaches the first layer is smaller for
# Xavier by
#
# $$\frac{\mathrm{std}\,[\partial E/\partial y_1]_{\text{Xavier}}}
#        {\mathrm{std}\,[\partial E/\partial y_1]_{\text{MSRA}}}
#   \approx 2^{-(L-1)/2},$$
#
# about $7 \cdot 10^{-4}$ at 22 layers and $4 \cdot 10^{-5}$ at 30 (which power of 2 is which:
# `docs/derivations/conventions.md`). This notebook trains both inits at depths
# from 6 to 30 (three seeds each, fig3's recipe and budget, the embedded digits) and plots,
# against depth, how long each takes to bring the validation error below half of chance, the
# final error, and the measured gradient ratio at initialization beside $2^{-(L-1)/2}$.
#
# The same sweep runs from the command line: `minirect sweep depth` (its run time on two cores is
# in docs/depth-sweep.md; `--scheduler tcp://HOST:PORT` spreads it over a Dask cluster, see
# docs/cluster.md).

# %% tags=["parameters"]
# Parameters (papermill style: this cell is tagged "parameters").
import os

FAST = os.environ.get("MINIRECT_NOTEBOOK_FAST", "0") == "1"   # tiny sizes: the test suite
DEVICE = os.environ.get("MINIRECT_DEVICE", "cpu")              # "cpu" or "cuda"
SEED = 0
FULL = False   # unused here: the sweep runs on the embedded digits

# %%
# %matplotlib inline
import dataclasses
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

import minirect
from minirect import runs
from minirect.experiments import recipe, report, runner

minirect.use(DEVICE)
minirect.seed(SEED)
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "font.size": 9})
print("minirect", minirect.__version__, minirect.versions())
print("device:", minirect.default_device(), "| FAST:", FAST)

# %% [markdown]
# ## The setting
#
# Depth counts weighted layers: conv1, the stage convs (spread over three stages, the earlier
# ones taking the spare convs), and three fully connected layers; 22 and 30 are the nets of
# `minirect reproduce fig2` and `fig3`. Every run gets fig3's budget (30 epochs) and is
# evaluated four times per epoch.

# %%
out_dir = os.path.join("runs", "sweep-depth" + ("-fast" if FAST else ""))
depths = (6, 10) if FAST else recipe.DEPTHS
config = recipe.make_config("sweep", fast=FAST, device=DEVICE if DEVICE != "cpu" else None)
print("depths:", depths, "| seeds:", config.seeds, "| epochs per run:", config.epochs,
      "| lr:", config.lr, "| batch:", config.batch_size)
for depth in depths:
    print(f"  depth {depth:2d}: stage convs {dataclasses.replace(config, depth=depth).stage_counts}")

# %% [markdown]
# ## Run it
#
# Each run keeps a checkpoint after every epoch in `out_dir/runs/`. If the folder already
# holds the sweep, whole or interrupted (from `minirect sweep depth --out runs/sweep-depth`, or
# an earlier execution of this notebook), it is resumed: finished runs are only re-evaluated,
# which takes seconds.

# %%
result = runner.sweep(out_dir, depths=depths, config=config, progress=False,
                      resume=runs.holds_run(out_dir))
print(report.table_text(result))

# %% [markdown]
# ## Against depth
#
# Left: the iterations each run needed to bring the validation error below half of chance
# (a point above the dotted line: not within the budget). Middle: the final error, averaged
# over seeds. Right: Xavier's first-layer gradient over MSRA's at initialization (geometric
# mean over seeds) with the theory's $2^{-(L-1)/2}$. The geometry of the small maps (zero
# padding, pooling) affects both inits alike, so it cancels in this ratio.

# %%
fig = report.plot_sweep(result)
plt.show()

# %% [markdown]
# ## Reading it
#
# The gradient ratio at initialization follows $2^{-(L-1)/2}$ at every depth, at 0.7–0.9 of it
# (the gradient entering at the top is smaller for Xavier, whose softmax is nearly uniform; see
# docs/depth-sweep.md): the paper's variance argument holds at this scale. What that small gradient *does*
# to training is the empirical part: the crossover depth below is where, within fig3's
# budget, Xavier stops leaving chance in most seeds (and keeps failing at every greater
# depth). Deeper than that, a bigger budget or a larger learning rate might still rescue
# it; the paper's claim at 30 layers is that it "does not converge even given more epochs".

# %%
depth = result["crossover_depth"]
print("crossover depth:", depth if depth else "none: Xavier converged at every depth swept")
for row in result["table"]:
    if row["init"] == "xavier":
        msra = next(r for r in result["table"] if r["depth"] == row["depth"] and r["init"] == "msra")
        print(f"  depth {row['depth']:2d}: half of chance reached by Xavier in "
              f"{row['converged']}/{row['seeds']} seeds, by MSRA in {msra['converged']}/{msra['seeds']}")
