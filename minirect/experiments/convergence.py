"""Figures 2 and 3: MSRA versus the paper's "Xavier" on deep plain nets.

Both figures train the same net twice per seed — once initialized with
½ n̂ Var[w] = 1 (MSRA, backward form, Eq. 14) and once with n̂ Var[w] = 1
(the paper's Xavier, backward form) — with the same SGD recipe, and plot the
validation error against epochs (MSRA red, Xavier blue).

* Figure 2, the 22-layer model B: both converge; MSRA starts reducing the
  error earlier.
* Figure 3, the 30-layer model: MSRA converges, Xavier stalls at chance and
  its gradients vanish.

``run("fig3", out_dir)`` does everything at the default (CPU, embedded
digits) scale and writes ``history.csv``, ``curves.png``, ``layers.png``,
``summary.txt`` and ``summary.json`` into ``out_dir``. Each run also keeps
its own history and checkpoint, after every epoch, in
``out_dir/runs/<init>-seed<seed>/``: an interrupted experiment continues
where it stopped with ``run(..., resume=True)`` (``minirect reproduce --resume``).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, replace

from .. import accel, backend, data, diagnostics, models, optim, runs
from . import executors
from ..train import write_csv, evaluate, fit


@dataclass(frozen=True)
class Config:
    """One convergence experiment: data, net, recipe, seeds."""

    figure: str
    dataset: str = "digits"
    depth: int = 30                       # 22 (model B layout) or 30
    widths: tuple = (16, 16, 32, 32)      # conv1, stage 1, 2, 3
    fc_width: int = 128
    spp_levels: tuple = (2, 1)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.001
    input_scale: str = "pixel"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    dropout: float = 0.5
    mode: str = "fan_out"                 # the figures use the backward form
    fc_init: str = "fan_in"
    seeds: tuple = (0, 1, 2)
    inits: tuple = ("msra", "xavier")     # e.g. ("xavier",): train one side longer on its own
    device: str = "cpu"
    train_limit: int | None = None        # use only the first N training images (tests)
    evals_per_epoch: int = 1              # validation passes per epoch (> 1: within epochs too)
    data_root: str | None = None          # dataset folder (default: $MINIRECT_DATA, then the cache)
    download: bool = False                # download a missing dataset (checksummed)
    cuda_graph: bool = False              # on a GPU: replay each step from a CUDA graph

    @property
    def stage_counts(self) -> tuple:
        """Stage convs for ``depth`` weighted layers: conv1, three stages, three fc layers;
        earlier stages take the spare convs (22: 6, 6, 6 as model B; 30: 9, 9, 8)."""
        convs, spare = divmod(self.depth - 4, 3)
        return tuple(convs + (stage < spare) for stage in range(3))


# Defaults chosen by the exploration recorded in docs/reproduction.md.
DEFAULTS = {
    "fig2": Config(figure="fig2", depth=22, epochs=120),
    "fig3": Config(figure="fig3", depth=30, epochs=30),
}

FULL = {   # the larger (GPU) setting of the notebooks and of --full: MNIST, stages at 14/7/7
    "fig2": replace(DEFAULTS["fig2"], dataset="mnist", widths=(32, 32, 64, 64), fc_width=256,
                    spp_levels=(4, 2, 1), epochs=6, evals_per_epoch=10),
    "fig3": replace(DEFAULTS["fig3"], dataset="mnist", widths=(32, 32, 64, 64), fc_width=256,
                    spp_levels=(4, 2, 1), epochs=4, evals_per_epoch=10),
}

FAST = dict(epochs=2, seeds=(0,), widths=(4, 4, 8, 8), fc_width=16, train_limit=256)

COLORS = {"msra": "tab:red", "xavier": "tab:blue"}
LABELS = {"msra": "MSRA (ours): ½ n̂ Var[w] = 1", "xavier": "Xavier: n̂ Var[w] = 1"}


def make_config(figure: str, fast: bool = False, full: bool = False, **overrides) -> Config:
    """The default config of a figure, with the fast/full presets and overrides."""
    if figure not in DEFAULTS:
        raise ValueError(f"unknown figure {figure!r}; use 'fig2' or 'fig3'")
    config = FULL[figure] if full else DEFAULTS[figure]
    if fast:
        config = replace(config, **FAST)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(config, **overrides)


def build_model(config: Config, init: str, num_classes: int, in_channels: int, input_size: int):
    spec = models.NetSpec(
        in_channels=in_channels, input_size=input_size, num_classes=num_classes,
        conv1_width=config.widths[0], stages=models.stage_plan(config.stage_counts, config.widths[1:]),
        spp_levels=config.spp_levels, fc_width=config.fc_width, dropout=config.dropout,
        activation="relu", init=init, mode=config.mode, fc_init=config.fc_init)
    return models.PlainNet(spec)


def load_data(config: Config):
    """Train and validation loaders, normalized with the training set's statistics."""
    where = dict(root=config.data_root, download=config.download)
    train_set = data.load_dataset(config.dataset, "train", **where)
    val_set = data.load_dataset(config.dataset, "test", **where)
    train_x, train_y = train_set.images, train_set.labels
    if config.train_limit:
        train_x, train_y = train_x[:config.train_limit], train_y[:config.train_limit]
    transform = data.paper_input_transform(train_x, train_set.pixel_max, config.input_scale)
    train = data.DataLoader(train_x, train_y, config.batch_size, shuffle=True, seed=0,
                            device=config.device, transform=transform)
    val = data.DataLoader(val_set.images, val_set.labels, 500, device=config.device,
                          transform=transform)
    return train, val, len(train_set.classes), train_x.shape[1], train_x.shape[2]


def run_one(config: Config, init: str, seed: int, loaders, out_dir=None, progress=False,
            on_epoch_end=None, resume=False):
    """Train one (init, seed) pair; returns its history and layer statistics.

    With ``out_dir``, fit writes the run's history and a checkpoint there
    after every epoch, and ``resume=True`` continues from that checkpoint.
    The statistics at initialization are recomputed on resume: the seed
    fixes the initial weights, so they are the same as in the first attempt.
    """
    with executors.blas_threads(BLAS_THREADS):
        return _train_run(config, init, seed, loaders, out_dir, progress, on_epoch_end, resume)


def _train_run(config, init, seed, loaders, out_dir, progress, on_epoch_end, resume):
    train, val, classes, channels, size = loaders
    backend.seed(seed)
    model = build_model(config, init, classes, channels, size).to(config.device)
    groups = optim.param_groups(model, config.weight_decay)
    opt = optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    train.load_state_dict({"seed": seed, "epoch": 0, "batch": 0})   # this seed's shuffles
    x, y = next(iter(train))
    stats_start = diagnostics.layer_statistics(model, x, y, config.weight_decay)
    # theory at init: on the real maps (padding, pooling, this batch's pixels) and the paper's ideal
    predicted = diagnostics.predicted_stds(model, geometry=True, inputs=x)
    idealized = diagnostics.predicted_stds(model, input_std=float(x.data.std()))
    initial_error = evaluate(model, val)[1]       # measured, so the curves start at epoch 0
    start = time.perf_counter()
    # On MNIST both inits pass half of chance within the first epoch: the
    # full setting evaluates 10 times per epoch (9 within, 1 at the end) to
    # see which one gets there first.
    eval_every = eval_interval(len(train), config.evals_per_epoch)
    history = fit(model, train, opt, config.epochs, val_loader=val, out_dir=out_dir,
                  resume=resume, progress=progress, on_epoch_end=on_epoch_end,
                  eval_every=eval_every, cuda_graph=config.cuda_graph)
    seconds = time.perf_counter() - start        # wall time of this call: a resumed run's new epochs
    stats_end = diagnostics.layer_statistics(model, x, y, config.weight_decay)
    return {"init": init, "seconds": seconds, "seed": seed, "history": history.epochs,
            "evaluations": history.evaluations,
            "initial_error": initial_error, "classes": classes,
            "stats_start": stats_start, "stats_end": stats_end,
            "predicted": predicted, "predicted_idealized": idealized}


def run(figure: str = "fig3", out_dir: str = "runs/fig3", progress: bool = True,
        config: Config | None = None, workers: int | None = None, resume: bool = False,
        overwrite: bool = False, scheduler: str | None = None, **options) -> dict:
    """Run a figure's experiment (both inits × seeds) and write its outputs.

    The (init, seed) runs are independent. On the CPU they run in ``workers``
    processes at once (default: one per core). Every run computes with one
    BLAS thread (``BLAS_THREADS``), in a worker or in this process: for these
    small layers that is also faster than BLAS threads fighting over tiny
    matrices, and it makes the results bit-identical whatever ``workers`` and
    the machine's core count (docs/reliability.md, "Determinism"). With
    ``scheduler="tcp://HOST:PORT"`` they run on a Dask cluster instead
    (``executors``; the workers must share ``out_dir``).

    A folder that already holds results is refused unless ``resume`` (continue
    it, with the same options: see ``RESUMABLE``) or ``overwrite`` (replace it).
    """
    config = config or make_config(figure, **options)
    if scheduler is not None:        # a worker would resolve a relative path in its own folder
        out_dir = os.path.abspath(out_dir)
    with runs.open_run(out_dir, asdict(config), resume, overwrite, may_change=RESUMABLE):
        return _run_all(figure, out_dir, progress, config, workers, resume, scheduler)


# Options that may change when a run is resumed: more epochs or seeds, another
# device or data location. Any other change would mix two experiments in one history.
RESUMABLE = ("epochs", "seeds", "device", "data_root", "download", "cuda_graph")


def _run_all(figure, out_dir, progress, config, workers, resume, scheduler=None):
    jobs = [(config, init, seed, run_folder(out_dir, init, seed), resume)
            for seed in config.seeds for init in config.inits]
    if workers is None:
        workers = 1 if config.device == "cuda" else min(len(jobs), os.cpu_count() or 1)
    if progress:
        where = f"on {scheduler}" if scheduler else f"{workers} at a time"
        print(f"[{figure}] {len(jobs)} runs ({config.depth} layers, {config.epochs} epochs, "
              f"{config.dataset}, {where})", flush=True)
    finished = executors.run_jobs(train_run, jobs, [config.epochs] * len(jobs), workers,
                                  scheduler, progress, folder=out_dir)
    for run in finished:
        _report(run, progress)
    chance = 1.0 - 1.0 / finished[0]["classes"]
    result = {"config": asdict(config), "chance_error": chance, "runs": finished,
              "fast_paths": accel.enabled()}         # (MINIRECT_FAST_PATHS: the last digits)
    result["summary"] = summarize(result)
    write_outputs(result, out_dir)
    return result


def train_run(config, init, seed, folder, resume, progress=False, report=None):
    """One run, as an executor calls it (``executors.run_jobs``): loads the data
    (kept for the next run of this process) and trains with checkpoints in ``folder``."""
    on_epoch_end = None if report is None else (
        lambda epoch, row: report(f"{init} seed {seed}", epoch, row))
    return run_one(config, init, seed, cached_data(config), out_dir=folder, progress=progress,
                   on_epoch_end=on_epoch_end, resume=resume)


# Per thread: a run moves its loaders' shuffle position, so two runs at once (the
# threads of a Dask worker) must not share them.
_data_cache = threading.local()


def cached_data(config):
    """``load_data(config)``, reused while the data options stay the same (the runs of an
    experiment, one after another in a thread, share their loaders; each run resets the
    shuffle to its seed)."""
    key = (config.dataset, config.data_root, config.download, config.train_limit,
           config.batch_size, config.input_scale, config.device)
    if getattr(_data_cache, "key", None) != key:
        _data_cache.loaders = load_data(config)
        _data_cache.key = key
    return _data_cache.loaders


def eval_interval(batches: int, evals_per_epoch: int) -> int:
    """Iterations between validation passes for ``fit(eval_every=...)`` so that
    an epoch has at most ``evals_per_epoch`` of them, the one at its end
    included (0: only that one)."""
    return math.ceil(batches / evals_per_epoch) if evals_per_epoch > 1 else 0


def run_folder(out_dir: str, init: str, seed: int) -> str:
    """Where one run keeps its history and checkpoint."""
    return os.path.join(out_dir, "runs", f"{init}-seed{seed}")


def _report(run, progress):
    if progress:
        errors = [row["val_error"] for row in run["history"]]
        print(f"  {run['init']:>6} seed {run['seed']}: final val error {errors[-1]:.3f} "
              f"({run['seconds']:.0f}s)", flush=True)


# Every run computes with one BLAS thread, in a worker process or not: OpenBLAS
# splits a GEMM differently for 1 and 2 threads, and float32 sums taken in
# another order differ in the last bits. One thread everywhere makes a run's
# numbers independent of the machine's core count and of ``workers``.
BLAS_THREADS = 1


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


def write_outputs(result: dict, out_dir: str) -> None:
    for name, key in (("history.csv", "history"), ("evaluations.csv", "evaluations")):
        rows = [{"init": r["init"], "seed": r["seed"], **row}
                for r in result["runs"] for row in r.get(key) or []]
        write_csv(os.path.join(out_dir, name), rows)          # no rows, no file
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({k: v for k, v in result.items() if k != "runs"} |
                  {"layers": [{k: r[k] for k in ("init", "seed", "stats_start", "stats_end")}
                              for r in result["runs"]]}, f, indent=1, default=str)
    with open(os.path.join(out_dir, "summary.txt"), "w") as f:
        f.write(summary_text(result))
    plot_curves(result, os.path.join(out_dir, "curves.png"))
    first_seed = {r["init"]: r for r in reversed(result["runs"])}
    label = {i: LABELS[i].split(":")[0] + " at init" for i in first_seed}
    diagnostics.plot_layer_statistics(
        {label[i]: first_seed[i]["stats_start"] for i in first_seed},
        os.path.join(out_dir, "layers.png"),
        theory={label[i]: first_seed[i]["predicted"] for i in first_seed},
        idealized={label[i]: first_seed[i]["predicted_idealized"] for i in first_seed},
        title=f"{result['config']['depth']}-layer net at initialization (seed {result['runs'][0]['seed']})")


def summary_text(result: dict) -> str:
    c, s = result["config"], result["summary"]
    lines = [f"{c['figure']}: {c['depth']}-layer plain net on {c['dataset']}, {c['epochs']} epochs, "
             f"lr {c['lr']}, batch {c['batch_size']}, momentum {c['momentum']}, "
             f"weight decay {c['weight_decay']} (none on PReLU), init mode {c['mode']}, "
             f"seeds {list(c['seeds'])}",
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


def plot_decay_ratios(result: dict, path=None):
    """Footnote 2, per layer: RMS(λ·W) / RMS(∂E/∂W) at initialization and after training.

    One line per run, MSRA red and Xavier blue. Above 1 (dotted line) a layer's
    update comes mostly from weight decay: its weights only shrink.
    """
    import matplotlib
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
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
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def plot_curves(result: dict, path=None):
    """Validation error vs. epoch in the paper's style: MSRA red, Xavier blue."""
    import matplotlib
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
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
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
