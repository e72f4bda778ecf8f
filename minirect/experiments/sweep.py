"""The depth sweep the paper implies: at which depth does the "Xavier" init stop converging?

The paper shows two depths: at 22 layers both inits converge (Figure 2), at
30 layers Xavier stalls (Figure 3). Its argument (Sec. 2.2) predicts a
smooth story in between: with n̂ Var[w] = 1 every ReLU layer halves the
variance of the backward signal, so at initialization the gradient reaching
the first layer is smaller than MSRA's by about

    2^{-(L-1)/2}     (L weighted layers; the first layer's own gradient is
                      shaped by the L - 1 layers above it)

and the deeper the net, the longer Xavier's first updates take to matter,
until within a fixed budget it does not learn at all.

``run(out_dir)`` trains both inits at every depth of ``DEPTHS`` for every
seed, with fig3's recipe and budget on the default data, and records per run
the iterations until the validation error first falls below half of chance
(None: not within the budget), the final error and the first layer's
gradient std at initialization. It writes ``sweep.csv`` (one row per run),
``sweep.json``, ``sweep.txt`` (the table and the crossover depth) and
``sweep.png`` (the three quantities against depth). Runs keep checkpoints in
``out_dir/runs/depth<L>-<init>-seed<s>/``: ``resume=True`` continues an
interrupted sweep from what finished. ``scheduler=`` runs it on a Dask
cluster (``executors``).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import asdict, replace

from .. import accel, runs
from ..train import write_csv
from . import convergence, executors

DEPTHS = (6, 10, 14, 18, 22, 26, 30)
SEEDS = (0, 1, 2)
INITS = ("msra", "xavier")
# The recipe and budget of fig3 (30 epochs on the embedded digits), with four
# validation passes per epoch so that "iterations to half of chance" is resolved
# to a quarter of an epoch.
BASE = replace(convergence.DEFAULTS["fig3"], figure="sweep", evals_per_epoch=4)
# Options a resumed sweep may change (more depths or seeds, another device or data location).
RESUMABLE = ("depths", "seeds", "device", "data_root", "download", "cuda_graph")


def make_config(fast: bool = False, **overrides):
    config = replace(BASE, **convergence.FAST) if fast else BASE
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def run(out_dir: str = "runs/sweep-depth", depths=DEPTHS, progress: bool = True, config=None,
        workers: int | None = None, scheduler: str | None = None, resume: bool = False,
        overwrite: bool = False, fast: bool = False, **options) -> dict:
    """Train both inits at every depth and seed; write and return the sweep's results."""
    config = config or make_config(fast, **options)
    depths = tuple(sorted(set(depths)))
    if min(depths) < 5:
        raise ValueError(f"depths must be at least 5 (conv1, one stage conv, three fc layers), "
                         f"got {min(depths)}")
    saved = {"depths": list(depths), **asdict(config)}
    if scheduler is not None:        # a worker would resolve a relative path in its own folder
        out_dir = os.path.abspath(out_dir)
    with runs.open_run(out_dir, saved, resume, overwrite, may_change=RESUMABLE):
        jobs = [(replace(config, depth=depth), init, seed, run_folder(out_dir, depth, init, seed),
                 resume) for depth in depths for seed in config.seeds for init in INITS]
        if progress:
            print(f"[sweep] {len(jobs)} runs (depths {list(depths)}, {config.epochs} epochs each, "
                  f"{config.dataset})", flush=True)
        if workers is None and config.device == "cuda":
            workers = 1
        finished = executors.run_jobs(sweep_run, jobs, [config.epochs] * len(jobs), workers,
                                      scheduler, progress, folder=out_dir)
        result = summarize(config, depths, finished)
        write_outputs(result, out_dir)
        return result


def run_folder(out_dir, depth, init, seed) -> str:
    return os.path.join(out_dir, "runs", f"depth{depth}-{init}-seed{seed}")


def sweep_run(config, init, seed, folder, resume, progress=False, report=None) -> dict:
    """One run of the sweep (an executor's task): the measurements the sweep keeps."""
    run = convergence.train_run(config, init, seed, folder, resume, progress, report)
    batches = len(convergence.cached_data(config)[0])
    chance = 1.0 - 1.0 / run["classes"]
    curve = convergence.validation_curve(run)
    below = convergence.first_epoch_below(curve, 0.5 * chance)
    return {"depth": config.depth, "init": init, "seed": seed,
            "iterations_to_half_chance": None if below is None else round(below * batches),
            "final_error": curve[-1][1], "chance_error": chance,
            "first_layer_grad_std": run["stats_start"][0]["grad_std"],
            "budget_iterations": config.epochs * batches, "seconds": run["seconds"]}


# ----------------------------------------------------------------------------
# Summary: per depth and init, the crossover, the table
# ----------------------------------------------------------------------------

def summarize(config, depths, finished) -> dict:
    rows = []
    for depth in depths:
        for init in INITS:
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
    c = result["config"]
    lines = [f"Depth sweep: plain nets on {c['dataset']}, {c['epochs']} epochs "
             f"({result['runs'][0]['budget_iterations']} iterations) per run, lr {c['lr']}, "
             f"batch {c['batch_size']}, seeds {list(c['seeds'])}, fast paths "
             f"{'on' if result.get('fast_paths', True) else 'off (MINIRECT_FAST_PATHS=0)'}",
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


def write_outputs(result, out_dir) -> None:
    write_csv(os.path.join(out_dir, "sweep.csv"), result["runs"])
    with open(os.path.join(out_dir, "sweep.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    with open(os.path.join(out_dir, "sweep.txt"), "w") as f:
        f.write(table_text(result))
    plot(result, os.path.join(out_dir, "sweep.png"))


def plot(result, path=None):
    """Iterations to half of chance, final error and the gradient ratio, against depth."""
    import matplotlib
    if path:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    depths = result["depths"]
    budget = result["runs"][0]["budget_iterations"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for init in INITS:
        color, label = convergence.COLORS[init], convergence.LABELS[init]
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
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
