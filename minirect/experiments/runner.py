"""Run the experiments: Figures 2 and 3, Tables 1 and 2, the depth sweep, and their runs.

``reproduce("fig3", out_dir)`` trains both inits × seeds of a figure;
``reproduce("table2", out_dir)`` (``tables``) trains model 14 with each rectifier × seed,
paired by seed (``prelu_run``); ``sweep(out_dir, depths)`` trains both inits × seeds at
every depth. Each is a
list of independent runs, and a run is one call of ``train_run(config, init,
seed, folder, resume)``: it trains one (init, seed, depth) net with the recipe
(``recipe``) into its own folder (history and checkpoint after every epoch),
and measures the net's signals at initialization and at the end (``diagnostics``,
with ``theory``'s predictions beside them). ``executors`` runs the list here,
in local processes or on a Dask cluster; ``report`` turns the results into
the summaries, verdicts and plots of the output folder.

``reproduce`` writes ``history.csv``, ``curves.png``, ``layers.png``,
``summary.txt`` and ``summary.json`` into ``out_dir``; ``sweep`` writes
``sweep.csv``, ``sweep.json``, ``sweep.txt`` and ``sweep.png``. Runs keep their
history and checkpoint in ``out_dir/runs/<init>-seed<seed>/`` (sweep:
``depth<L>-<init>-seed<s>/``): an interrupted experiment continues where it
stopped with ``resume=True`` (``--resume``).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, replace

from .. import accel, backend, diagnostics, nn, runs, theory
from ..train import TrainingDiverged, evaluate, fit
from . import executors, recipe, report

# Options that may change when a run is resumed: more epochs or seeds (a sweep: or depths),
# another device or data location. Any other change would mix two experiments in one history.
RESUMABLE = ("epochs", "seeds", "device", "data_root", "download", "cuda_graph")
# table2 steps its learning rate down after a fraction of the epochs: more epochs would move
# the step of a run already past it, so its epochs stay as they were.
TABLES_RESUMABLE = ("seeds", "device", "data_root", "download", "cuda_graph")
SWEEP_RESUMABLE = ("depths", "seeds", "device", "data_root", "download", "cuda_graph")

# Every run computes with one BLAS thread, in a worker process or not: OpenBLAS
# splits a GEMM differently for 1 and 2 threads, and float32 sums taken in
# another order differ in the last bits. One thread everywhere makes a run's
# numbers independent of the machine's core count and of ``workers``.
BLAS_THREADS = 1


def reproduce(figure: str = "fig3", out_dir: str = "runs/fig3", progress: bool = True,
              config: recipe.Config | None = None, workers: int | None = None,
              resume: bool = False, overwrite: bool = False, scheduler: str | None = None,
              **options) -> dict:
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

    ``figure="table2"`` runs ``tables`` (Tables 1 and 2) with the same options.
    """
    config = config or recipe.make_config(figure, **options)
    if config.figure == "table2":
        return tables(out_dir, progress, config, workers, resume, overwrite, scheduler)
    if scheduler is not None:        # a worker would resolve a relative path in its own folder
        out_dir = os.path.abspath(out_dir)
    with runs.open_run(out_dir, asdict(config), resume, overwrite, may_change=RESUMABLE):
        jobs = [(config, init, seed, runs.run_folder(out_dir, init, seed), resume)
                for seed in config.seeds for init in config.inits]
        finished = _run_all(train_run, jobs, config, out_dir, workers, scheduler, progress, figure,
                            f"{config.depth} layers, {config.epochs} epochs, {config.dataset}")
        result = {"config": asdict(config), "chance_error": 1.0 - 1.0 / finished[0]["classes"],
                  "runs": finished, "fast_paths": accel.enabled()}  # (MINIRECT_FAST_PATHS: last digits)
        result["summary"] = report.summarize(result)
        report.write_outputs(result, out_dir)
        return result


def sweep(out_dir: str = "runs/sweep-depth", depths=recipe.DEPTHS, progress: bool = True,
          config: recipe.Config | None = None, workers: int | None = None,
          scheduler: str | None = None, resume: bool = False, overwrite: bool = False,
          fast: bool = False, **options) -> dict:
    """Train both inits at every depth and seed; write and return the sweep's results
    (``report.sweep_summary``). The options are those of ``reproduce``."""
    config = config or recipe.make_config("sweep", fast, **options)
    depths = tuple(sorted(set(depths)))
    if min(depths) < 5:
        raise ValueError(f"depths must be at least 5 (conv1, one stage conv, three fc layers), "
                         f"got {min(depths)}")
    saved = {"depths": list(depths), **asdict(config)}
    if scheduler is not None:        # a worker would resolve a relative path in its own folder
        out_dir = os.path.abspath(out_dir)
    with runs.open_run(out_dir, saved, resume, overwrite, may_change=SWEEP_RESUMABLE):
        jobs = [(replace(config, depth=depth), init, seed,
                 runs.run_folder(out_dir, init, seed, depth=depth), resume)
                for depth in depths for seed in config.seeds for init in recipe.SWEEP_INITS]
        finished = _run_all(train_run, jobs, config, out_dir, workers, scheduler, progress, "sweep",
                            f"depths {list(depths)}, {config.epochs} epochs each, {config.dataset}")
        result = report.sweep_summary(config, depths, finished)
        report.write_sweep_outputs(result, out_dir)
        return result


def train_run(config: recipe.Config, init: str, seed: int, folder=None, resume: bool = False,
              progress: bool = False, on_epoch=None) -> dict:
    """Train one (init, seed, ``config.depth``) run; its history and layer statistics.

    The task an executor calls (``executors.run_jobs``). With ``folder``, fit
    writes the run's history and a checkpoint there after every epoch, and
    ``resume=True`` continues from that checkpoint. The statistics at
    initialization are recomputed on resume: the seed fixes the initial
    weights, so they are the same as in the first attempt. ``report(label,
    epoch, row)`` is called after every epoch (a worker's progress line).
    The data loaders are kept for the next run of this thread (``recipe.cached_data``).
    """
    on_epoch_end = None if on_epoch is None else (
        lambda epoch, row: on_epoch(f"{init} seed {seed}", epoch, row))
    train, val, classes, channels, size = recipe.cached_data(config)
    with executors.blas_threads(BLAS_THREADS):
        backend.seed(seed)
        model = recipe.build_model(config, init, classes, channels, size).to(config.device)
        opt = recipe.make_optimizer(model, config)
        train.load_state_dict({"seed": seed, "epoch": 0, "batch": 0})   # this seed's shuffles
        x, y = next(iter(train))
        stats_start = diagnostics.layer_statistics(model, x, y, config.weight_decay)
        # theory at init: on the real maps (padding, pooling, this batch's pixels) and the paper's ideal
        predicted = theory.predicted_stds(model, geometry=True, inputs=x)
        idealized = theory.predicted_stds(model, input_std=float(x.data.std()))
        initial_error = evaluate(model, val)[1]       # measured, so the curves start at epoch 0
        start = time.perf_counter()
        accel.used(reset=True)                     # from here on: the fast paths this run's steps take
        # On MNIST both inits pass half of chance within the first epoch: the
        # full setting evaluates 10 times per epoch (9 within, 1 at the end) to
        # see which one gets there first.
        eval_every = recipe.eval_interval(len(train), config.evals_per_epoch)
        history = fit(model, train, opt, config.epochs, val_loader=val, out_dir=folder,
                      resume=resume, progress=progress, on_epoch_end=on_epoch_end,
                      eval_every=eval_every, cuda_graph=config.cuda_graph)
        seconds = time.perf_counter() - start      # wall time of this call: a resumed run's new epochs
        stats_end = diagnostics.layer_statistics(model, x, y, config.weight_decay)
    return {"init": init, "seconds": seconds, "seed": seed, "depth": config.depth,
            "history": history.epochs, "evaluations": history.evaluations,
            "initial_error": initial_error, "classes": classes, "batches": len(train),
            "stats_start": stats_start, "stats_end": stats_end,
            "predicted": predicted, "predicted_idealized": idealized,
            "fast_paths_ran": accel.used(reset=True)}


def tables(out_dir: str = "runs/table2", progress: bool = True,
           config: recipe.Config | None = None, workers: int | None = None,
           resume: bool = False, overwrite: bool = False, scheduler: str | None = None,
           **options) -> dict:
    """Tables 1 and 2: model 14 with each rectifier of ``config.activations`` × seed.

    Paired by seed: for one seed every rectifier's run starts from the same random draws
    (``recipe.build_model``), sees the same batches in the same order and the same dropout
    masks; only the rectifier (and with it the Eq.-15 scale of the weights) differs.
    ``report.tables_summary`` compares them seed by seed. Executors, workers, checkpoints,
    ``resume``/``overwrite`` and the determinism contract are those of ``reproduce``; runs
    keep their folders in ``out_dir/runs/<activation>-seed<seed>/``. Writes ``history.csv``,
    ``summary.json`` (with each run's history and learned coefficients), ``summary.txt``,
    ``curves.png`` and ``coefficients.png`` into ``out_dir``.
    """
    config = config or recipe.make_config("table2", **options)
    if len(config.seeds) < 2:
        raise ValueError("table2 compares rectifiers across seeds: give at least two seeds")
    if scheduler is not None:        # a worker would resolve a relative path in its own folder
        out_dir = os.path.abspath(out_dir)
    with runs.open_run(out_dir, asdict(config), resume, overwrite, may_change=TABLES_RESUMABLE):
        jobs = [(config, activation, seed, runs.run_folder(out_dir, activation, seed), resume)
                for seed in config.seeds for activation in config.activations]
        finished = _run_all(prelu_run, jobs, config, out_dir, workers, scheduler, progress, "table2",
                            f"model 14, {', '.join(config.activations)} × {len(config.seeds)} seeds, "
                            f"{config.epochs} epochs, {config.dataset}")
        result = {"config": asdict(config), "runs": finished, "fast_paths": accel.enabled()}
        result["summary"] = report.tables_summary(result)
        report.write_tables_outputs(result, out_dir)
        return result


def prelu_run(config: recipe.Config, activation: str, seed: int, folder=None,
              resume: bool = False, progress: bool = False, on_epoch=None) -> dict:
    """Train one (rectifier, seed) run of Tables 1–2; its history and learned coefficients.

    ``minirect.seed(seed)`` before the net (the same draws for every rectifier), the
    training loader reset to ``seed``'s shuffles, MSRA init (Eq. 15), the recipe's SGD and
    its one learning-rate step. ``coefficients``: per rectifier layer (conv1, conv2_1, ...,
    fc2), the learned PReLU coefficients (one value for the channel-shared net, one per
    channel for the channel-wise; none for ReLU). On resume a finished run only reloads its
    checkpoint. A run whose loss diverges (``TrainingDiverged``) does not stop the
    experiment: its result says so in ``diverged`` (the message; None otherwise), and the
    report leaves out its seed.
    """
    on_epoch_end = None if on_epoch is None else (
        lambda epoch, row: on_epoch(f"{activation} seed {seed}", epoch, row))
    train, val, classes, channels, size = recipe.cached_data(config)
    with executors.blas_threads(BLAS_THREADS):
        backend.seed(seed)
        model = recipe.build_model(config, "msra", classes, channels, size,
                                   activation=activation).to(config.device)
        opt = recipe.make_optimizer(model, config)
        schedule = recipe.make_schedule(opt, config)
        train.load_state_dict({"seed": seed, "epoch": 0, "batch": 0})   # this seed's shuffles
        initial_error = evaluate(model, val)[1]       # measured, so the curves start at epoch 0
        start = time.perf_counter()
        accel.used(reset=True)
        try:
            history = fit(model, train, opt, config.epochs, val_loader=val, schedule=schedule,
                          out_dir=folder, resume=resume, progress=progress,
                          on_epoch_end=on_epoch_end, cuda_graph=config.cuda_graph).epochs
            diverged = None
        except TrainingDiverged as error:   # reported, not fatal: the other runs still count
            history, diverged = [], " ".join(str(error).split())
        seconds = time.perf_counter() - start
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    return {"activation": activation, "seed": seed, "seconds": seconds, "diverged": diverged,
            "history": history, "initial_error": initial_error, "classes": classes,
            "batches": len(train), "layer_names": rectifier_names(model),
            "coefficients": [backend.to_numpy(p.weight.data).tolist() for p in prelus],
            "fast_paths_ran": accel.used(reset=True)}


def rectifier_names(model) -> list:
    """The paper's names of a plain net's rectifier layers: conv1, conv2_1, ..., fc1, fc2
    (stage s of the net is the paper's conv{s+1}_i)."""
    names = ["conv1"] + [f"conv{s + 2}_{i + 1}" for s, (count, _) in enumerate(model.spec.stages)
                         for i in range(count)]
    return names + ["fc1", "fc2"]


def _run_all(task, jobs, config, out_dir, workers, scheduler, progress, label, details):
    """Run an experiment's ``jobs`` through the executors (local processes, or a Dask
    cluster with ``scheduler``): by default one process on a GPU, else one per job up to
    the cores. Prints ``[label] N runs (details, where they run)`` first, a line per finished run after;
    returns the runs' results in the jobs' order."""
    if workers is None:
        workers = 1 if config.device == "cuda" else min(len(jobs), os.cpu_count() or 1)
    if progress:
        where = f"on {scheduler}" if scheduler else f"{workers} at a time"
        print(f"[{label}] {len(jobs)} runs ({details}, {where})", flush=True)
    finished = executors.run_jobs(task, jobs, [config.epochs] * len(jobs), workers, scheduler,
                                  progress, folder=out_dir)
    for run in finished:
        _print_finished(run, progress)
    return finished


def _print_finished(run, progress):
    if progress and run.get("diverged"):
        print(f"  {run['activation']:>6} seed {run['seed']}: DIVERGED: {run['diverged']}", flush=True)
    elif progress:
        errors = [row["val_error"] for row in run["history"]]
        name = run.get("init") or run["activation"]
        print(f"  {name:>6} seed {run['seed']}: final val error {errors[-1]:.3f} "
              f"({run['seconds']:.0f}s)", flush=True)
