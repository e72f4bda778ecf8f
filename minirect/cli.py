"""The ``minirect`` command line.

    minirect reproduce fig3                  # Figure 3 at the default CPU scale
    minirect reproduce fig2 --dataset mnist --device cuda
    minirect reproduce table2 --workers 2    # Tables 1-2: ReLU vs PReLU, 10 paired seeds
    minirect train --model model_b --dataset digits --init msra --epochs 5
    minirect sweep depth --depths 6 14 22 30  # where does Xavier stop converging?
    minirect info                            # versions and devices

A mistake on the command line (``--epochs 0``, a negative learning rate, an
``--out`` that is a file, a folder that already holds a run) is reported in
one line with exit status 2, before any data is loaded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from . import runs
from .data.download import DatasetError
from .experiments import executors
from .train import CheckpointError, TrainingDiverged


class _Parser(argparse.ArgumentParser):
    """argparse, with each error on one line (and a pointer to --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def seed_value(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or a positive integer, got {text}")
    return value


def scheduler(text: str) -> str:
    try:
        return executors.scheduler_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def learning_rate(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def momentum(text: str) -> float:
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def weight_decay(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text}")
    return value


# argparse names the type in its message ("invalid positive_int value: '0'"):
# these names make that message read well.
positive_int.__name__ = "positive integer"
seed_value.__name__ = "seed"
scheduler.__name__ = "scheduler address"
learning_rate.__name__ = momentum.__name__ = weight_decay.__name__ = "number"


def _add_run_options(p):
    """The options of every command that trains (reproduce, sweep, train), defined once."""
    p.add_argument("--dataset", choices=["digits", "mnist", "fashion-mnist", "cifar10"],
                   help="dataset (default: the embedded 8×8 digits)")
    p.add_argument("--data-root", help="folder with the dataset files (else $MINIRECT_DATA)")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="replay each training step from a recorded CUDA graph (the same "
                        "arithmetic, far fewer kernel launches; docs/gpu.md). Default: on with "
                        "--device cuda, falling back to eager steps, with a line saying why, "
                        "where a step cannot be recorded")
    p.add_argument("--out", metavar="DIR", help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoints (after an interruption)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (default: refuse; see --resume)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_experiment_options(p):
    """The options of the experiments made of many runs (reproduce, sweep), defined once."""
    _add_run_options(p)
    p.add_argument("--seeds", type=seed_value, nargs="+",
                   help="seeds (default 0 1 2; table2: 0 to 9)")
    p.add_argument("--epochs", type=positive_int, help="the budget of every run (default: the "
                   "experiment's)")
    p.add_argument("--fast", action="store_true", help="tiny setting (seconds; for tests)")
    p.add_argument("--workers", type=positive_int,
                   help="runs at once, each in its own process (default: one per CPU core; "
                        "1 on a GPU, where 2 can overlap two small nets' kernels)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", type=scheduler,
                   help="run on this Dask cluster (pip install -e \".[cluster]\"; docs/cluster.md)")


def _cuda_graph(args) -> bool:
    """--cuda-graph / --no-cuda-graph, or by default on for --device cuda."""
    return args.device == "cuda" if args.cuda_graph is None else args.cuda_graph


def _parser():
    parser = _Parser(
        prog="minirect",
        description="Reproduce He et al. 2015, 'Delving Deep into Rectifiers', on NumPy/CuPy.")
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="run the Figure 2 or Figure 3 convergence experiment, "
                                           "or Tables 1-2 (table2: ReLU vs PReLU on model 14)")
    rep.add_argument("figure", choices=["fig2", "fig3", "table2"])
    _add_experiment_options(rep)
    rep.add_argument("--inits", nargs="+", choices=["msra", "xavier"],
                     help="initializations to train (default both)")
    rep.add_argument("--lr", type=learning_rate)
    rep.add_argument("--batch-size", type=positive_int)
    rep.add_argument("--width", type=positive_int, nargs=4, metavar=("CONV1", "S1", "S2", "S3"),
                     help="conv widths")
    rep.add_argument("--full", action="store_true", help="the larger setting (MNIST; meant for a GPU)")
    rep.add_argument("--train-limit", type=positive_int, metavar="N",
                     help="train on the first N training images only (a stated smaller size)")
    rep.add_argument("--val-limit", type=positive_int, metavar="N",
                     help="validate on the first N test images only")

    tr = sub.add_parser("train", help="train one model")
    _add_run_options(tr)
    tr.add_argument("--model", default="model_b",
                    choices=["model_a", "model_b", "model_c", "model_14", "model_30"])
    tr.add_argument("--init", choices=["xavier", "msra"], default="msra",
                    help="the paper's Xavier (n Var[w] = 1) or MSRA (½ n Var[w] = 1)")
    tr.add_argument("--mode", choices=["fan_in", "fan_out"], default="fan_out",
                    help="forward (Eq. 10) or backward (Eq. 14) form")
    tr.add_argument("--activation", choices=["relu", "prelu", "prelu-shared"], default="relu")
    tr.add_argument("--width", type=positive_int, nargs="+", metavar="W",
                    help="conv widths: conv1 then one per stage (default: small)")
    tr.add_argument("--fc-width", type=positive_int, default=128)
    tr.add_argument("--epochs", type=positive_int, default=10)
    tr.add_argument("--lr", type=learning_rate, default=0.001,
                    help="learning rate (the inputs are mean-subtracted 8-bit pixels, so keep it small)")
    tr.add_argument("--momentum", type=momentum, default=0.9)
    tr.add_argument("--weight-decay", type=weight_decay, default=5e-4)
    tr.add_argument("--batch-size", type=positive_int, default=64)
    tr.add_argument("--seed", type=seed_value, default=0)

    sw = sub.add_parser("sweep", help="train both inits across depths (the paper's 22 vs 30, "
                                      "in between and below)")
    sw.add_argument("what", choices=["depth"])
    _add_experiment_options(sw)
    sw.add_argument("--depths", type=positive_int, nargs="+", metavar="L",
                    help="depths in weighted layers (default 6 10 14 18 22 26 30)")

    sub.add_parser("info", help="print versions and devices")
    # parsed by minirect.exercises.main (main() hands it the rest of the line)
    sub.add_parser("exercises", add_help=False,
                   help="self-grading exercises: minirect exercises check student.py [--only NAME]")
    return parser


def _check_choices(parser, args) -> None:
    """Mistakes argparse cannot see on its own, refused before anything runs."""
    if getattr(args, "fast", False) and getattr(args, "full", False):
        parser.error("--fast and --full contradict each other: pick one")
    if getattr(args, "figure", None) == "table2":
        given = [flag for flag, value in (("--inits", args.inits), ("--width", args.width),
                                          ("--full", args.full)) if value]
        if given:
            parser.error(f"{', '.join(given)}: not for table2, which trains model 14 at the "
                         "scale of notebook 03 with MSRA init (docs/reproduction.md)")
        if args.seeds is not None and len(args.seeds) < 2:
            parser.error("table2 compares rectifiers across seeds: give at least two --seeds")
    inits = getattr(args, "inits", None) or []
    if len(set(inits)) != len(inits):
        parser.error("--inits lists an init twice: name each once")
    seeds = getattr(args, "seeds", None) or []
    if len(set(seeds)) != len(seeds):
        parser.error(f"--seeds lists a seed twice ({' '.join(map(str, seeds))}): each run needs "
                     "its own seed")
    if getattr(args, "device", None) == "cuda":
        from .backend import GPU_INSTALL_HINT, cuda_available
        if not cuda_available():
            parser.error(f"--device cuda: no usable GPU here (CuPy missing or no CUDA device). "
                         f"{GPU_INSTALL_HINT}")
    if args.command == "train" and args.width:
        from . import models
        try:        # the width count depends on the model: ask it, on a tiny net
            models.build(args.model, widths=(1,) * len(args.width), fc_width=1, in_channels=1,
                         input_size=8, num_classes=2)
        except ValueError as error:
            parser.error(f"--width for {args.model}: {error}")


def _experiment_options(args) -> dict:
    """The options reproduce and sweep hand to ``runner`` (None: the experiment's default)."""
    return dict(progress=not args.quiet, workers=args.workers, scheduler=args.scheduler,
                resume=args.resume, overwrite=args.overwrite, fast=args.fast, dataset=args.dataset,
                device=args.device if args.device != "cpu" else None,
                seeds=tuple(args.seeds) if args.seeds else None, epochs=args.epochs,
                data_root=args.data_root, download=args.download, cuda_graph=_cuda_graph(args))


def cmd_reproduce(args) -> int:
    from .experiments import report, runner
    out = args.out or os.path.join("runs", args.figure)
    start = time.perf_counter()
    result = runner.reproduce(
        args.figure, out, full=args.full, lr=args.lr, batch_size=args.batch_size,
        inits=tuple(args.inits) if args.inits else None,
        widths=tuple(args.width) if args.width else None, train_limit=args.train_limit,
        val_limit=args.val_limit, **_experiment_options(args))
    if args.figure == "table2":
        print(report.tables_text(result))
        print(_paths_that_ran(result["runs"]))
        print(f"finished in {time.perf_counter() - start:.0f}s; results in {os.path.abspath(out)}: "
              "summary.txt, summary.json, history.csv, curves.png, coefficients.png (each run's "
              "checkpoint under runs/)")
        return 0
    print(report.summary_text(result))
    print(_paths_that_ran(result["runs"]))
    print(f"finished in {time.perf_counter() - start:.0f}s; results in {os.path.abspath(out)}: "
          "curves.png, layers.png, history.csv, summary.txt, summary.json "
          "(evaluations.csv with --full; each run's checkpoint under runs/)")
    return 0


def _paths_that_ran(runs_done) -> str:
    """Which of accel's fast paths the runs' training took (each run records its own, in
    whatever process or worker it ran)."""
    from . import accel
    ran = sorted({name for run in runs_done for name in run.get("fast_paths_ran", ())})
    state = "on" if accel.enabled() else "off"
    return f"fast paths: {state}; ran: {', '.join(ran) or 'none (the reference code only)'}"


def cmd_sweep(args) -> int:
    from .experiments import recipe, report, runner
    out = args.out or os.path.join("runs", "sweep-depth")
    start = time.perf_counter()
    result = runner.sweep(out, depths=tuple(args.depths or recipe.DEPTHS), **_experiment_options(args))
    print(report.table_text(result))
    print(f"finished in {time.perf_counter() - start:.0f}s; results in {os.path.abspath(out)}: "
          "sweep.png, sweep.txt, sweep.csv, sweep.json (each run's checkpoint under runs/)")
    return 0


def cmd_train(args) -> int:
    dataset = args.dataset or "digits"
    out = args.out or os.path.join("runs", f"train-{args.model}-{dataset}-{args.init}")
    config = {k: v for k, v in vars(args).items() if k not in TRAIN_COMMAND_ONLY}
    with runs.open_run(out, config, args.resume, args.overwrite, may_change=TRAIN_RESUMABLE):
        return _train(args, dataset, out)       # (open_run checks the folder before any data loads)


# Options of `minirect train` that only steer this invocation (not written to config.json),
# and those a resumed run may change (more epochs, another device or data location).
TRAIN_COMMAND_ONLY = ("command", "quiet", "out", "resume", "overwrite")
TRAIN_RESUMABLE = ("epochs", "device", "data_root", "download", "cuda_graph")


def _train(args, dataset, out) -> int:
    """One named model with the experiments' recipe: their data loading and SGD."""
    from . import backend, models
    from .experiments import recipe
    from .train import fit
    config = recipe.Config(figure="train", dataset=dataset, batch_size=args.batch_size, lr=args.lr,
                           momentum=args.momentum, weight_decay=args.weight_decay,
                           device=args.device, data_root=args.data_root, download=args.download)
    backend.seed(args.seed)         # (before the loaders: the validation loader draws its seed)
    train, val, classes, channels, size = recipe.load_data(config, seed=args.seed)
    model = models.build(args.model, widths=tuple(args.width or config.widths),
                         fc_width=args.fc_width, in_channels=channels, input_size=size,
                         num_classes=classes, activation=args.activation, init=args.init,
                         mode=args.mode)
    model.to(args.device)
    opt = recipe.make_optimizer(model, config)
    print(f"training {args.model} ({model.spec.depth} layers) on {dataset} ({len(train.labels)} "
          f"images) with {args.init} init, {args.activation}, on {args.device}")
    history = fit(model, train, opt, args.epochs, val_loader=val, out_dir=out,
                  resume=args.resume, progress=not args.quiet, cuda_graph=_cuda_graph(args))
    last = history.epochs[-1]
    from . import accel
    print(accel.report())
    print(f"final validation error {last['val_error']:.4f} after {last['epoch']} epochs "
          f"({last['time']:.0f}s). Results in {os.path.abspath(out)}: history.csv, "
          "iterations.csv, history.json, checkpoint.npz")
    return 0


def cmd_info(args) -> int:
    from . import backend
    print(json.dumps(backend.versions(), indent=1))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["exercises"]:          # list | describe NAME | check FILE [--only NAME ...]
        from .exercises import main as exercises_main
        return exercises_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    _check_choices(parser, args)
    handler = {"reproduce": cmd_reproduce, "train": cmd_train, "sweep": cmd_sweep,
               "info": cmd_info}[args.command]
    try:
        return handler(args)
    except USER_ERRORS as error:        # a folder, a file, a cluster that cannot be used as asked
        return _fail(error)
    except DatasetError as error:      # missing or corrupt files: the message says what to do
        return _fail(f"{error} (on the command line: --data-root DIR or --download)", status=1)
    except OSError as error:          # a full disk, a folder that went away, ...
        return _fail(f"{error.strerror or error}: {error.filename or ''}{_resume_hint(args)}")
    except TrainingDiverged as error:
        return _fail(error, status=1)
    except KeyboardInterrupt:
        print("\ninterrupted; the last finished epoch's checkpoint is kept (use --resume)",
              file=sys.stderr)
        return 130


# Errors whose message says what to do: one line on stderr and exit status 2, by kind,
# wherever in a command they are raised.
USER_ERRORS = (runs.RunFolderError, CheckpointError, executors.ClusterError, executors.WorkerDied)


def _resume_hint(args) -> str:
    """After a file-system error: say --resume where --out holds a checkpoint to go on from."""
    out = getattr(args, "out", None)
    if out and next(Path(out).glob("**/checkpoint.npz"), None) is not None:
        return " (the last finished epoch's checkpoint is kept: after fixing it, use --resume)"
    return ""


def _fail(error, status: int = 2) -> int:
    print("minirect: error: " + " ".join(str(error).split()), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
