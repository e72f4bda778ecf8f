"""What the experiments' runs mean: summaries, verdicts and every plot.

Figures 2 and 3 (``reproduce``): ``summarize`` the runs (per-run numbers and
the verdict lines, by the criteria below), ``summary_text``, ``plot_curves``
(validation error against epochs, MSRA red and Xavier blue, as in the paper),
``plot_decay_ratios`` (footnote 2 per layer), ``plot_layer_statistics`` (the
measured signals per layer against the theory), and ``write_outputs`` (all of
them into the output folder). The depth sweep: ``sweep_summary`` (per depth
and init, the crossover), ``table_text``, ``plot_sweep``, ``write_sweep_outputs``.
Files are written through ``runs`` (the run folder's I/O).
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import asdict

from .. import accel, diagnostics, runs
from . import stats as paired
from .recipe import SWEEP_INITS

COLORS = {"msra": "tab:red", "xavier": "tab:blue"}
LABELS = {"msra": "MSRA (ours): ½ n̂ Var[w] = 1", "xavier": "Xavier: n̂ Var[w] = 1"}


def validation_curve(run: dict) -> list:
    """[(epoch, validation error)] of one run: the evaluations within epochs
    when the config asked for them (fractional epochs), else one per epoch."""
    rows = run.get("evaluations") or run["history"]
    return [(row["epoch"], row["val_error"]) for row in rows]


def first_epoch_below(curve, level):
    """First epoch of ``curve`` [(epoch, error)] whose error is below ``level``, or None."""
    for epoch, err in curve:
        if err < level:
            return epoch
    return None


# ----------------------------------------------------------------------------
# Figures 2 and 3: the summary and the verdict
# ----------------------------------------------------------------------------

# Figure 3's claim, as the summary judges it: Xavier "completely stalls" (it learns
# nothing: its validation loss never leaves ln K, the loss of uniform outputs) and
# "its gradients are all diminishing" (at initialization the gradient reaching its
# first layer is a small fraction of MSRA's), while MSRA converges (final error
# below half of chance). The validation *error* of a net at chance loss is the
# argmax of nearly equal logits and can flicker a few points below chance for an
# epoch; the summary reports such a flicker but does not judge by it.
STALL_LOSS = 0.99          # stalled: lowest validation loss >= STALL_LOSS * ln K
VANISHED_GRADIENT = 1e-2   # vanishing: layer-1 gradient std at init < this × MSRA's
CHANCE_BAND = 0.02         # the secondary line: error within 2 points of chance


def summarize(result: dict) -> dict:
    """Per-run numbers and the verdict lines of ``summary.txt`` (criteria above)."""
    chance = result["chance_error"]
    per_run = []
    for r in result["runs"]:
        curve = validation_curve(r)
        errors = [err for _, err in curve]
        final = errors[-1]
        losses = [row["val_loss"] for row in (r.get("evaluations") or r["history"])]
        lowest = min(range(len(errors)), key=errors.__getitem__)
        per_run.append({
            "init": r["init"], "seed": r["seed"], "final_error": final,
            "min_error": errors[lowest], "min_error_epoch": curve[lowest][0],
            "max_error": max(errors),
            "epoch_below_half_chance": first_epoch_below(curve, 0.5 * chance),
            "epoch_below_final_plus_10": first_epoch_below(curve, final + 0.10),
            "stayed_at_chance": min(errors) >= chance - CHANCE_BAND,
            # the loss of a net that outputs uniform probabilities is ln K
            "min_val_loss_over_chance_loss": min(losses) / math.log(r["classes"]),
            "first_layer_grad_std": r["stats_start"][0]["grad_std"],
            "last_layer_grad_std": r["stats_start"][-1]["grad_std"],
            # footnote 2: layers whose weight decay outweighs the data gradient; a stalled
            # net has them from initialization on, a converged one only at the end
            "decay_dominated_layers_start": len(diagnostics.vanishing_layers(r["stats_start"])),
            "decay_dominated_layers_end": len(diagnostics.vanishing_layers(r["stats_end"])),
            "layers": len(r["stats_start"]),
            "seconds": r["seconds"],
        })
    return {"chance_error": chance, "runs": per_run, "verdict": _verdict(result["config"], per_run,
                                                                          chance)}


def fig3_criterion(msra: dict, xavier: dict, chance: float) -> dict:
    """Figure 3's three checks on one seed's pair of ``summarize`` rows."""
    return {"msra_converged": msra["final_error"] < 0.5 * chance,
            "xavier_stalled": xavier["min_val_loss_over_chance_loss"] >= STALL_LOSS,
            "xavier_gradient_vanished":
                xavier["first_layer_grad_std"] < VANISHED_GRADIENT * msra["first_layer_grad_std"]}


FIG3_CRITERION = (f"criterion: MSRA's final error below half of chance; Xavier's lowest validation "
                  f"loss at least {STALL_LOSS} × ln K (no learning); Xavier's layer-1 gradient at "
                  f"init below {VANISHED_GRADIENT:g} × MSRA's")
FIG2_CRITERION = ("criterion: MSRA falls below half of chance and below its final error + 10 "
                  "points in earlier epochs than Xavier")


def _verdict(config, per_run, chance) -> list:
    lines = []
    by_seed = {}
    for r in per_run:
        by_seed.setdefault(r["seed"], {})[r["init"]] = r
    for seed, pair in sorted(by_seed.items()):
        m, x = pair.get("msra"), pair.get("xavier")
        if not m or not x:
            continue
        if config["figure"] == "fig3":
            checks = fig3_criterion(m, x, chance)
            ok = all(checks.values())
            lines.append(f"seed {seed}: MSRA final error {m['final_error']:.3f}; Xavier lowest val "
                         f"loss {x['min_val_loss_over_chance_loss']:.4f} × ln K, layer-1 gradient "
                         f"at init {x['first_layer_grad_std'] / m['first_layer_grad_std']:.1e} × "
                         f"MSRA's -> {'reproduced' if ok else 'NOT reproduced'}")
            if x["stayed_at_chance"]:
                lines.append(f"  Xavier's error stayed within {CHANCE_BAND * 100:.0f} points of "
                             f"chance (lowest {x['min_error']:.3f})")
            elif checks["xavier_stalled"]:
                lines.append(f"  Xavier's error flickered to {x['min_error']:.3f} at epoch "
                             f"{_epoch(x['min_error_epoch'])} while its loss stayed at ln K: the "
                             "argmax of near-uniform outputs, not learning")
            else:
                lines.append(f"  Xavier learned: its error fell to {x['min_error']:.3f} at epoch "
                             f"{_epoch(x['min_error_epoch'])}")
        else:
            me, xe = m["epoch_below_half_chance"], x["epoch_below_half_chance"]
            mf, xf = m["epoch_below_final_plus_10"], x["epoch_below_final_plus_10"]
            both = me is not None and xe is not None
            earlier = both and me < xe and mf is not None and xf is not None and mf < xf
            lines.append(f"seed {seed}: epochs to <50% chance MSRA {_epoch(me)} vs Xavier "
                         f"{_epoch(xe)}; to final+10pt MSRA {_epoch(mf)} vs Xavier {_epoch(xf)}; "
                         f"finals {m['final_error']:.3f} / "
                         f"{x['final_error']:.3f} -> {'reproduced' if earlier else 'NOT reproduced'}")
    if lines:
        lines.append(FIG3_CRITERION if config["figure"] == "fig3" else FIG2_CRITERION)
    return lines


def _epoch(epoch) -> str:
    return "never" if epoch is None else f"{epoch:.3g}"


def fast_paths_phrase(result: dict) -> str:
    """How the runs computed, for a summary's first line (results before the
    setting was recorded ran with the fast paths on, the default)."""
    return f"fast paths {'on' if result.get('fast_paths', True) else 'off (MINIRECT_FAST_PATHS=0)'}"


def summary_text(result: dict) -> str:
    """summary.txt: the recipe, one line per run, and the verdict."""
    c, s = result["config"], result["summary"]
    lines = [f"{c['figure']}: {c['depth']}-layer plain net on {c['dataset']}, {c['epochs']} epochs, "
             f"lr {c['lr']}, batch {c['batch_size']}, momentum {c['momentum']}, "
             f"weight decay {c['weight_decay']} (none on PReLU), init mode {c['mode']}, "
             f"seeds {list(c['seeds'])}, {fast_paths_phrase(result)}",
             f"chance error: {s['chance_error']:.3f}", ""]
    for r in s["runs"]:
        lines.append(f"{r['init']:>6} seed {r['seed']}: final val error {r['final_error']:.3f}, min "
                     f"{r['min_error']:.3f}, epoch <50% chance: {_epoch(r['epoch_below_half_chance'])}, "
                     f"grad std at init layer 1 / last: {r['first_layer_grad_std']:.2e} / "
                     f"{r['last_layer_grad_std']:.2e}, layers where weight decay outweighs the data "
                     f"gradient at init / end: {r['decay_dominated_layers_start']} / "
                     f"{r['decay_dominated_layers_end']} of {r['layers']}, {r['seconds']:.0f}s")
    lines += [""] + s["verdict"]
    return "\n".join(lines) + "\n"


def write_outputs(result: dict, out_dir: str) -> None:
    """history.csv, evaluations.csv, summary.json, summary.txt, curves.png and layers.png."""
    for name, key in (("history.csv", "history"), ("evaluations.csv", "evaluations")):
        rows = [{"init": r["init"], "seed": r["seed"], **row}
                for r in result["runs"] for row in r.get(key) or []]
        runs.write_csv(os.path.join(out_dir, name), rows)          # no rows, no file
    runs.write_json(os.path.join(out_dir, "summary.json"),
                    {k: v for k, v in result.items() if k != "runs"} |
                    {"layers": [{k: r[k] for k in ("init", "seed", "stats_start", "stats_end")}
                                for r in result["runs"]]})
    runs.write_text(os.path.join(out_dir, "summary.txt"), summary_text(result))
    plot_curves(result, os.path.join(out_dir, "curves.png"))
    first_seed = {r["init"]: r for r in reversed(result["runs"])}
    label = {i: LABELS[i].split(":")[0] + " at init" for i in first_seed}
    plot_layer_statistics(
        {label[i]: first_seed[i]["stats_start"] for i in first_seed},
        os.path.join(out_dir, "layers.png"),
        theory={label[i]: first_seed[i]["predicted"] for i in first_seed},
        idealized={label[i]: first_seed[i]["predicted_idealized"] for i in first_seed},
        title=f"{result['config']['depth']}-layer net at initialization (seed {result['runs'][0]['seed']})")


# ----------------------------------------------------------------------------
# The depth sweep: per depth and init, the crossover, the table
# ----------------------------------------------------------------------------

def sweep_row(run: dict, epochs: int) -> dict:
    """The numbers the sweep keeps of one run (``runner.train_run``'s result) of ``epochs``."""
    chance = 1.0 - 1.0 / run["classes"]
    curve = validation_curve(run)
    below = first_epoch_below(curve, 0.5 * chance)
    return {"depth": run["depth"], "init": run["init"], "seed": run["seed"],
            "iterations_to_half_chance": None if below is None else round(below * run["batches"]),
            "final_error": curve[-1][1], "chance_error": chance,
            "first_layer_grad_std": run["stats_start"][0]["grad_std"],
            "budget_iterations": epochs * run["batches"], "seconds": run["seconds"]}


def sweep_summary(config, depths, finished) -> dict:
    """The sweep's results from its runs: one ``sweep_row`` per run, the table per depth
    and init, the first-layer gradient ratio against 2^(-(L-1)/2), the crossover depth."""
    finished = [sweep_row(run, config.epochs) for run in finished]
    rows = []
    for depth in depths:
        for init in SWEEP_INITS:
            mine = [r for r in finished if r["depth"] == depth and r["init"] == init]
            reached = [r["iterations_to_half_chance"] for r in mine
                       if r["iterations_to_half_chance"] is not None]
            rows.append({"depth": depth, "init": init, "seeds": len(mine),
                         "converged": len(reached),
                         "median_iterations": statistics.median(reached) if reached else None,
                         "mean_final_error": statistics.fmean(r["final_error"] for r in mine)})
    ratios = {}
    for depth in depths:
        pairs = [(x, m) for x in finished for m in finished
                 if x["depth"] == m["depth"] == depth and x["seed"] == m["seed"]
                 and (x["init"], m["init"]) == ("xavier", "msra")]
        logs = [math.log(x["first_layer_grad_std"] / m["first_layer_grad_std"]) for x, m in pairs]
        ratios[depth] = {"measured": math.exp(statistics.fmean(logs)),
                         "theory": 2.0 ** (-(depth - 1) / 2)}
    return {"config": asdict(config), "depths": list(depths), "runs": finished,
            "table": rows, "grad_ratio": ratios, "crossover_depth": crossover(rows),
            "fast_paths": accel.enabled()}     # (MINIRECT_FAST_PATHS: the last digits)


def crossover(rows) -> int | None:
    """The smallest depth from which Xavier reaches half of chance in fewer than half
    of its seeds, at that depth and every deeper one (None: it converges everywhere)."""
    xavier = sorted((r["depth"], r["converged"] * 2 < r["seeds"]) for r in rows if r["init"] == "xavier")
    for i, (depth, _) in enumerate(xavier):
        if all(failed for _, failed in xavier[i:]):
            return depth
    return None


def table_text(result) -> str:
    """sweep.txt: the table per depth and init, and the crossover depth."""
    c = result["config"]
    lines = [f"Depth sweep: plain nets on {c['dataset']}, {c['epochs']} epochs "
             f"({result['runs'][0]['budget_iterations']} iterations) per run, lr {c['lr']}, "
             f"batch {c['batch_size']}, seeds {list(c['seeds'])}, {fast_paths_phrase(result)}",
             "",
             "| depth | init | reached half of chance | median iterations to it | mean final error "
             "| first-layer grad, Xavier / MSRA | 2^(-(L-1)/2) |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for row in result["table"]:
        ratio = result["grad_ratio"][row["depth"]]
        first = row["init"] == "msra"
        its = "not within the budget" if row["median_iterations"] is None else \
            f"{row['median_iterations']:.0f}"
        lines.append(f"| {row['depth']} | {row['init']} | {row['converged']}/{row['seeds']} | {its} "
                     f"| {row['mean_final_error']:.3f} | "
                     + (f"{ratio['measured']:.2e} | {ratio['theory']:.2e} |" if first else " | |"))
    depth = result["crossover_depth"]
    lines += ["", "Xavier stops converging within the budget at depth "
              f"{depth} (and deeper)." if depth else
              "Xavier converged within the budget at every depth swept."]
    return "\n".join(lines) + "\n"


def write_sweep_outputs(result, out_dir) -> None:
    """sweep.csv (one row per run), sweep.json, sweep.txt and sweep.png."""
    runs.write_csv(os.path.join(out_dir, "sweep.csv"), result["runs"])
    runs.write_json(os.path.join(out_dir, "sweep.json"), result)
    runs.write_text(os.path.join(out_dir, "sweep.txt"), table_text(result))
    plot_sweep(result, os.path.join(out_dir, "sweep.png"))


# ----------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------

def _pyplot(path):
    """matplotlib.pyplot; on the file-only Agg backend when the figure goes to ``path``
    (no display needed), else on the current one (a notebook shows the figure)."""
    import matplotlib
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path=None, dpi: int = 120):
    """Lay out ``fig``; with ``path``, save it there and close it. Returns ``fig``."""
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=dpi)
        import matplotlib.pyplot as plt
        plt.close(fig)
    return fig


def plot_curves(result: dict, path=None):
    """Validation error vs. epoch in the paper's style: MSRA red, Xavier blue."""
    fig, ax = _pyplot(path).subplots(figsize=(6, 4.2))
    seen = set()
    for r in result["runs"]:
        epochs, errors = zip(*validation_curve(r))
        label = LABELS[r["init"]] if r["init"] not in seen else None
        seen.add(r["init"])
        ax.plot([0, *epochs], [r["initial_error"], *errors], color=COLORS[r["init"]], lw=1.6,
                alpha=0.85, label=label)
    ax.axhline(result["chance_error"], color="gray", ls=":", lw=1, label="chance")
    c = result["config"]
    ax.set(xlabel="epoch", ylabel="validation error",
           title=f"{c['depth']}-layer net, {c['dataset']} ({len(c['seeds'])} seeds)", ylim=(0, 1))
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_decay_ratios(result: dict, path=None):
    """Footnote 2, per layer: RMS(λ·W) / RMS(∂E/∂W) at initialization and after training.

    One line per run, MSRA red and Xavier blue. Above 1 (dotted line) a layer's
    update comes mostly from weight decay: its weights only shrink.
    """
    fig, axes = _pyplot(path).subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, when in zip(axes, ("stats_start", "stats_end")):
        for r in result["runs"]:
            ratio = [max(s["decay_ratio"], 1e-3) for s in r[when]]     # 0 would break the log axis
            ax.semilogy(range(1, len(ratio) + 1), ratio, color=COLORS[r["init"]], alpha=0.7,
                        label=f'{r["init"]} seed {r["seed"]}')
        ax.axhline(1.0, color="gray", ls=":")
        ax.set(title="at initialization" if when == "stats_start" else "after training",
               xlabel="layer")
    axes[0].set_ylabel("RMS(λ·W) / RMS(∂E/∂W)")
    axes[1].legend(fontsize=7)
    return save_figure(fig, path)


def plot_layer_statistics(stats_by_label: dict, path=None, title: str = "", theory: dict | None = None,
                          idealized: dict | None = None):
    """Plot response std and gradient std per layer (log scale), one line per label.

    ``stats_by_label`` maps labels to ``diagnostics.layer_statistics`` output.
    ``theory`` maps the same labels to ``theory.predicted_stds`` output, drawn
    dashed (the geometry-aware theory, ``geometry=True``); ``idealized``
    likewise, drawn dotted (the paper's theory, no padding or pooling). Theory
    gradients are scaled to the measured gradient at the last layer. Where a
    theory entry has the finite-width keys (``theory.finite_width_stds``, which
    ``predicted_stds(geometry=True, inputs=x)`` adds), a shaded band shows
    where a typical seed lies: median ×/÷ exp(sd of log std). Returns
    the matplotlib figure; saves it when ``path`` is given.
    """
    fig, axes = _pyplot(path).subplots(1, 2, figsize=(10, 3.8))
    styles = [(theory or {}, "--", "theory, real maps (dashed)"),
              (idealized or {}, ":", "theory, paper's ideal (dotted)")]
    for label, stats in stats_by_label.items():
        color = COLORS.get(label.split()[0].lower())
        layers = [s["layer"] for s in stats]
        axes[0].semilogy(layers, [s["response_std"] for s in stats], "o-", ms=3, label=label, color=color)
        grads = [max(s["grad_std"], 1e-30) for s in stats]
        axes[1].semilogy(layers, grads, "o-", ms=3, label=label, color=color)
        for predictions, style, _ in styles:
            if label in predictions:
                axes[0].semilogy(layers, predictions[label]["response_std"], style, color=color, alpha=0.7)
                axes[1].semilogy(layers, [r * grads[-1] for r in predictions[label]["grad_ratio"]], style,
                                 color=color, alpha=0.7)
                _typical_band(axes, layers, predictions[label], grads[-1], color)
    for predictions, style, name in styles:
        if predictions:
            axes[0].plot([], [], style, color="gray", label=name)
    if any("response_median" in p for p in (theory or {}).values()):
        axes[0].fill_between([], [], [], color="gray", alpha=0.15,
                             label="typical seed: median ×/÷ e^(sd of log std)")
    axes[0].set(xlabel="layer", ylabel="std of response y_l", title="forward signal")
    axes[1].set(xlabel="layer", ylabel="std of dE/dy_l", title="backward signal")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def _typical_band(axes, layers, predicted, last_grad, color):
    """The finite-width band (``theory.finite_width_stds``): the median seed ×/÷
    exp(sd of log std), about 68% of seeds; drawn when ``predicted`` has it."""
    if "response_median" not in predicted:
        return
    for ax, median, spread, scale in ((axes[0], "response_median", "response_spread", 1.0),
                                      (axes[1], "grad_median", "grad_spread", last_grad)):
        centre = [m * scale for m in predicted[median]]
        width = [math.exp(s) for s in predicted[spread]]
        ax.fill_between(layers, [c / w for c, w in zip(centre, width)],
                        [c * w for c, w in zip(centre, width)], color=color, alpha=0.15, lw=0)


def plot_sweep(result, path=None):
    """Iterations to half of chance, final error and the gradient ratio, against depth."""
    depths = result["depths"]
    budget = result["runs"][0]["budget_iterations"]
    fig, axes = _pyplot(path).subplots(1, 3, figsize=(15, 4.2))
    for init in SWEEP_INITS:
        color, label = COLORS[init], LABELS[init]
        runs_ = [r for r in result["runs"] if r["init"] == init]
        its = [r["iterations_to_half_chance"] for r in runs_]
        axes[0].scatter([r["depth"] for r in runs_], [budget * 1.08 if i is None else i for i in its],
                        color=color, label=label, marker="o", alpha=0.7)
        rows = [r for r in result["table"] if r["init"] == init]
        axes[1].plot([r["depth"] for r in rows], [r["mean_final_error"] for r in rows], "o-",
                     color=color, label=label)
    axes[0].axhline(budget, color="gray", ls=":", lw=1)
    axes[0].text(depths[0], budget * 1.1, "not within the budget", fontsize=8, color="gray")
    axes[0].set(xlabel="depth (weighted layers)", ylabel="iterations to val error < ½ chance",
                title="time to leave chance")
    axes[1].axhline(result["runs"][0]["chance_error"], color="gray", ls=":", lw=1, label="chance")
    axes[1].set(xlabel="depth (weighted layers)", ylabel="final validation error",
                title=f"after {result['config']['epochs']} epochs")
    ratio = result["grad_ratio"]
    axes[2].semilogy(depths, [ratio[d]["measured"] for d in depths], "ko-",
                     label="measured (mean over seeds)")
    axes[2].semilogy(depths, [ratio[d]["theory"] for d in depths], "k--", label="2^(-(L-1)/2)")
    axes[2].set(xlabel="depth L", ylabel="first-layer gradient std, Xavier / MSRA",
                title="at initialization")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=110)


# ----------------------------------------------------------------------------
# Tables 1 and 2: PReLU against ReLU, paired by seed
# ----------------------------------------------------------------------------

ACTIVATION_LABELS = {"relu": "ReLU", "prelu-shared": "PReLU, channel-shared",
                     "prelu": "PReLU, channel-wise"}
ACTIVATION_COLORS = {"relu": "black", "prelu-shared": "tab:orange", "prelu": "tab:red"}
# Table 2 (14-layer model, ImageNet, 10-view top-1 / top-5 error, %)
PAPER_TABLE2 = {"relu": (33.82, 13.34), "prelu-shared": (32.71, 12.87), "prelu": (32.64, 12.75)}
# Table 1: learned coefficients (channel-shared; channel-wise: mean over channels)
TABLE1_LAYERS = (["conv1"] + [f"conv2_{i}" for i in range(1, 5)]
                 + [f"conv3_{i}" for i in range(1, 7)] + ["fc1", "fc2"])
PAPER_TABLE1 = {
    "prelu-shared": (0.681, 0.103, 0.099, 0.228, 0.561, 0.126, 0.089, 0.124, 0.062, 0.008, 0.210,
                     0.063, 0.031),
    "prelu": (0.596, 0.321, 0.204, 0.294, 0.464, 0.196, 0.152, 0.145, 0.124, 0.134, 0.198,
              0.074, 0.075)}
INITIAL_COEFFICIENT = 0.25
# A Table 1 pattern is judged seed by seed through a contrast that is positive where the
# pattern holds (``PATTERNS``): it "holds" when the contrast is positive in at least
# PATTERN_SHARE of the seeds (8 of 10), "fails" when it is negative in that many, and is
# "mixed" otherwise. The paired t interval of the contrast's mean is given beside it.
PATTERN_SHARE = 0.8
PATTERNS = (
    ("large conv1", "a(conv1) − mean a over the stage convs (conv2_*, conv3_*) > 0"),
    ("deeper convs smaller", "mean a(conv2_*) − mean a(conv3_*) > 0"),
    ("larger at the end of a stage", "in both stages, a(last conv) − mean a of the stage's other "
                                     "convs > 0 (the smaller of the two stages' contrasts)"),
    ("small fc", f"{INITIAL_COEFFICIENT} (the initial a) − max(a(fc1), a(fc2)) > 0: both fc "
                 "coefficients fell"),
)
COMPARISONS = (("prelu-shared", "relu"), ("prelu", "relu"), ("prelu", "prelu-shared"))


def layer_coefficients(run: dict) -> list:
    """One coefficient per rectifier layer of a PReLU run: the shared value, or the
    channel-wise values' mean (as Table 1 lists them)."""
    return [statistics.fmean(values) for values in run["coefficients"]]


def pattern_contrasts(names, a) -> list:
    """Per pattern of ``PATTERNS``, its contrast on one net's coefficients ``a`` (by layer
    ``names``): positive where the pattern holds."""
    at = dict(zip(names, a))
    stages = {}
    for name in names:
        if name.startswith("conv") and name != "conv1":
            stages.setdefault(name.split("_")[0], []).append(at[name])
    stage_convs = [v for values in stages.values() for v in values]
    first, last = (stages[k] for k in sorted(stages)[:1] + sorted(stages)[-1:])
    ends = [values[-1] - statistics.fmean(values[:-1]) for values in stages.values()]
    return [at["conv1"] - statistics.fmean(stage_convs),
            statistics.fmean(first) - statistics.fmean(last),
            min(ends),
            INITIAL_COEFFICIENT - max(at["fc1"], at["fc2"])]


def _judge(contrasts) -> dict:
    n = len(contrasts)
    holds, fails = sum(c > 0 for c in contrasts), sum(c < 0 for c in contrasts)
    need = math.ceil(PATTERN_SHARE * n)
    verdict = "holds" if holds >= need else "fails" if fails >= need else "mixed"
    interval = paired.paired_t_interval(contrasts, [0.0] * n) if n > 1 else None
    return {"holds_in": holds, "fails_in": fails, "seeds": n, "verdict": verdict,
            "contrast": interval}


def _describe(values) -> dict:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1
            else 0.0, "min": min(values), "max": max(values)}


def tables_summary(result: dict) -> dict:
    """Tables 1 and 2 from the runs of ``runner.tables``: per rectifier the final validation
    errors over seeds; per comparison (``COMPARISONS``) the paired differences with their
    95 % paired t interval (and the bootstrap's as a check) and a verdict; per PReLU
    variant and layer the learned coefficients over seeds beside the paper's, and Table 1's
    patterns judged seed by seed (``PATTERNS``, ``PATTERN_SHARE``)."""
    diverged = [{"activation": r["activation"], "seed": r["seed"], "message": r["diverged"]}
                for r in result["runs"] if r.get("diverged")]
    by = {(r["activation"], r["seed"]): r for r in result["runs"] if not r.get("diverged")}
    activations = [a for a in result["config"]["activations"] if any(k[0] == a for k in by)]
    # the comparisons are paired: a seed counts only where every rectifier's run finished
    seeds = sorted({s for a, s in by if all((b, s) in by for b in activations)})
    final = {a: [by[(a, s)]["history"][-1]["val_error"] for s in seeds] for a in activations}
    rows = [{"activation": a, "label": ACTIVATION_LABELS.get(a, a), "seeds": len(seeds),
             "errors": final[a], **_describe(final[a]),
             "paper_top1": PAPER_TABLE2.get(a, (None,))[0],
             "mean_seconds": statistics.fmean(by[(a, s)]["seconds"] for s in seeds)}
            for a in activations]
    comparisons = [_compare(final, a, b, seeds) for a, b in COMPARISONS
                   if a in final and b in final]
    coefficients, patterns = {}, {}
    for a in activations:
        if a == "relu":
            continue
        names = by[(a, seeds[0])]["layer_names"]
        per_seed = [layer_coefficients(by[(a, s)]) for s in seeds]
        paper = PAPER_TABLE1.get(a) if list(names) == list(TABLE1_LAYERS) else None
        coefficients[a] = [{"layer": name, "values": [p[i] for p in per_seed],
                            **_describe([p[i] for p in per_seed]),
                            "paper": paper[i] if paper else None,
                            "channel_sd": statistics.fmean(
                                statistics.pstdev(by[(a, s)]["coefficients"][i]) for s in seeds)}
                           for i, name in enumerate(names)]
        contrasts = [pattern_contrasts(names, p) for p in per_seed]
        paper_contrasts = pattern_contrasts(names, paper) if paper else [None] * len(PATTERNS)
        patterns[a] = [{"pattern": name, "criterion": criterion, "paper_contrast": paper_c,
                        **_judge([c[k] for c in contrasts])}
                       for k, ((name, criterion), paper_c) in enumerate(zip(PATTERNS,
                                                                              paper_contrasts))]
    return {"seeds": seeds, "diverged": diverged, "table2": rows, "comparisons": comparisons,
            "table1": coefficients, "patterns": patterns,
            "verdict": [c["verdict"] for c in comparisons]}


def _compare(final, a, b, seeds) -> dict:
    t = paired.paired_t_interval(final[a], final[b])
    boot = paired.bootstrap_interval(final[a], final[b])
    d = paired.paired_differences(final[a], final[b])
    lower, higher = sum(x < 0 for x in d), sum(x > 0 for x in d)
    la, lb = ACTIVATION_LABELS.get(a, a), ACTIVATION_LABELS.get(b, b)
    if paired.excludes_zero(t):
        meaning = (f"excludes zero: {la} {'helps' if t['mean'] < 0 else 'hurts'} against {lb} at "
                   "this scale")
    else:
        meaning = f"includes zero: not resolved at {len(seeds)} seeds"
    verdict = (f"{la} vs {lb}: {100 * t['mean']:+.2f} points [{100 * t['low']:+.2f}, "
               f"{100 * t['high']:+.2f}] (95 % paired t, {t['df']} df), {meaning}; lower in "
               f"{lower}, higher in {higher} of {len(d)} seeds; bootstrap [{100 * boot['low']:+.2f}, "
               f"{100 * boot['high']:+.2f}]")
    return {"a": a, "b": b, "differences": d, "t": t, "bootstrap": boot, "lower_in": lower,
            "higher_in": higher, "excludes_zero": paired.excludes_zero(t), "verdict": verdict}


def tables_text(result: dict, parts=("table2", "table1")) -> str:
    """summary.txt of table2: the recipe, Table 2 (errors, paired differences, verdicts),
    Table 1 (coefficients per layer beside the paper's) and its patterns; ``parts`` picks
    the tables."""
    c, s = result["config"], result["summary"]
    n = len(s["seeds"])
    sizes = "".join(f", first {c[k]} {what} images" for k, what in
                    (("train_limit", "training"), ("val_limit", "validation")) if c.get(k))
    lines = [f"table2: model 14 (widths {list(c['widths'])}, fc {c['fc_width']}) on {c['dataset']}{sizes}, "
             f"{c['epochs']} epochs, lr {c['lr']} ÷ 10 after {c['lr_drop']:.0%} of them, batch "
             f"{c['batch_size']}, momentum {c['momentum']}, weight decay {c['weight_decay']} (none "
             f"on PReLU), MSRA init ({c['mode']}, Eq. 15), input scale {c['input_scale']}, seeds "
             f"{list(s['seeds'])} (paired: same draws, data order and dropout masks per seed), "
             f"{fast_paths_phrase(result)}"]
    for d in s.get("diverged", []):
        lines.append(f"DIVERGED, left out with the other rectifiers of its seed: {d['activation']} "
                     f"seed {d['seed']}: {d['message']}")
    if "table2" in parts:
        lines += _table2_lines(s)
    for a, rows in s["table1"].items() if "table1" in parts else ():
        lines += ["", f"Table 1, {ACTIVATION_LABELS.get(a, a)}: learned a per layer over {n} seeds"
                  + (" (mean over channels per seed; 'channels sd': the spread within a layer)"
                     if a == "prelu" else ""),
                  "| layer | paper | mean ± sd | min–max |" + (" channels sd |" if a == "prelu" else ""),
                  "|---|---:|---:|---:|" + ("---:|" if a == "prelu" else "")]
        for r in rows:
            paper = "" if r["paper"] is None else f"{r['paper']:.3f}"
            lines.append(f"| {r['layer']} | {paper} | {r['mean']:.3f} ± {r['sd']:.3f} | "
                         f"{r['min']:.3f}–{r['max']:.3f} |"
                         + (f" {r['channel_sd']:.3f} |" if a == "prelu" else ""))
        lines += ["", f"Table 1's patterns, {ACTIVATION_LABELS.get(a, a)} (holds: contrast > 0 in "
                  f"≥ {math.ceil(PATTERN_SHARE * n)} of {n} seeds; fails: < 0 in as many):"]
        for p in s["patterns"][a]:
            ci = p["contrast"]
            paper = "" if p["paper_contrast"] is None else f"; paper {p['paper_contrast']:+.3f}"
            lines.append(f"  {p['pattern']}: {p['verdict']} (> 0 in {p['holds_in']}, < 0 in "
                         f"{p['fails_in']} of {p['seeds']}; mean contrast {ci['mean']:+.3f} "
                         f"[{ci['low']:+.3f}, {ci['high']:+.3f}]{paper}) -- {p['criterion']}")
    return "\n".join(lines) + "\n"


def _table2_lines(s: dict) -> list:
    n = len(s["seeds"])
    lines = ["", "Table 2: final validation error (%), mean ± sd over seeds [min, max]",
             "| rectifier | mean ± sd | min–max | paper top-1 (ImageNet) | s per run |",
             "|---|---:|---:|---:|---:|"]
    for r in s["table2"]:
        paper = "" if r["paper_top1"] is None else f"{r['paper_top1']:.2f}"
        lines.append(f"| {r['label']} | {100 * r['mean']:.2f} ± {100 * r['sd']:.2f} | "
                     f"{100 * r['min']:.2f}–{100 * r['max']:.2f} | {paper} | "
                     f"{r['mean_seconds']:.0f} |")
    lines += ["", f"Paired differences (percentage points), 95 % paired t interval over {n} seeds "
              "(normality of the differences assumed; percentile bootstrap as a check):"]
    return lines + [cmp["verdict"] for cmp in s["comparisons"]]


def write_tables_outputs(result: dict, out_dir: str) -> None:
    """history.csv, summary.json (with every run's history and coefficients), summary.txt,
    curves.png and coefficients.png."""
    rows = [{"activation": r["activation"], "seed": r["seed"], **row}
            for r in result["runs"] for row in r["history"]]
    runs.write_csv(os.path.join(out_dir, "history.csv"), rows)
    runs.write_json(os.path.join(out_dir, "summary.json"), result)
    runs.write_text(os.path.join(out_dir, "summary.txt"), tables_text(result))
    plot_table2_curves(result, os.path.join(out_dir, "curves.png"))
    if result["summary"]["table1"]:
        plot_coefficients(result["summary"], os.path.join(out_dir, "coefficients.png"))


def plot_table2_curves(result: dict, path=None):
    """Validation error against epochs per rectifier: the mean over seeds and its range."""
    fig, ax = _pyplot(path).subplots(figsize=(6, 4))
    for a in result["config"]["activations"]:
        mine = [r for r in result["runs"] if r["activation"] == a and not r.get("diverged")]
        if not mine:
            continue
        epochs = [0] + [row["epoch"] for row in mine[0]["history"]]
        curves = [[r["initial_error"]] + [row["val_error"] for row in r["history"]] for r in mine]
        columns = list(zip(*curves))
        color = ACTIVATION_COLORS.get(a)
        ax.plot(epochs, [statistics.fmean(c) for c in columns], color=color,
                label=f"{ACTIVATION_LABELS.get(a, a)} (mean of {len(mine)} seeds)")
        ax.fill_between(epochs, [min(c) for c in columns], [max(c) for c in columns],
                        color=color, alpha=0.12)
    ax.set(xlabel="epoch", ylabel="validation error", yscale="log",
           title=f"model 14, {result['config']['dataset']}: ReLU vs PReLU (band: min–max)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_coefficients(summary: dict, path=None):
    """Table 1: the learned coefficients per layer, the paper's (grey) beside ours (the mean
    over seeds, with the seeds as dots); the dashed line is the initial 0.25."""
    variants = list(summary["table1"])
    fig, axes = _pyplot(path).subplots(1, len(variants), figsize=(5.5 * len(variants), 3.6),
                                       sharey=True, squeeze=False)
    for ax, a in zip(axes[0], variants):
        rows = summary["table1"][a]
        index = range(len(rows))
        if all(r["paper"] is not None for r in rows):
            ax.bar([i - 0.2 for i in index], [r["paper"] for r in rows], 0.4, color="0.7",
                   label="paper, Table 1 (ImageNet)")
        ax.bar([i + 0.2 for i in index], [r["mean"] for r in rows], 0.4,
               color=ACTIVATION_COLORS.get(a), alpha=0.7, label="ours, mean over seeds")
        for i, r in zip(index, rows):
            ax.plot([i + 0.2] * len(r["values"]), r["values"], "k.", ms=3,
                    label="ours, one seed" if i == 0 else None)
        ax.axhline(INITIAL_COEFFICIENT, color="k", ls="--", lw=0.8)
        ax.set_xticks(list(index), [r["layer"] for r in rows], rotation=60, fontsize=8)
        ax.set_title(ACTIVATION_LABELS.get(a, a) + (" (mean over channels)" if a == "prelu" else ""))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("learned a")
    axes[0][-1].legend(fontsize=7)
    return save_figure(fig, path)
