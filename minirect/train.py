"""Training and evaluation loops with progress, history and checkpoints.

``fit`` runs epochs of SGD over a loader, evaluates on a validation loader
after each epoch, and — when given an output folder — writes as it goes:

* ``history.csv``      one row per epoch (train loss/error, val loss/error, lr, time)
* ``iterations.csv``   one row per iteration (epoch, iteration, loss, error, lr)
* ``evaluations.csv``  with ``eval_every``: one row per validation pass, within
                       and at the end of each epoch
* ``history.json``     both, for programs
* ``checkpoint.npz``   model, optimizer, schedule, loaders, RNG and history after
                       the last finished epoch, written atomically

``fit(..., resume=True)`` continues from ``checkpoint.npz`` and, on the CPU,
reproduces the uninterrupted run's numbers exactly (the random generator, the
loaders' shuffling state and the momentum buffers are all restored).

A non-finite loss, or a finite one far above the run's first loss
(``DIVERGED_FACTOR`` times it: 1e10 is not "still training"), stops training
with ``TrainingDiverged``; so do non-finite weights at the end of an epoch.
The checkpoint of the last good epoch is left as it was.

On a GPU, ``minirect.accel`` supplies the loop's speed-only parts through one
named hook, ``backend.fast_path("gpu_training", model)`` (accel/gpu_training.py):
the step replayed from a CUDA graph, and the losses read back a batch of
steps at a time (``read_every``: the model in memory may then have taken a
few more updates when a NaN is seen; the iteration reported is exact). On the
CPU, or with ``minirect.fast_paths(False)``, the loop below is all there is.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field

from . import backend, files
from .autograd import no_grad
from .functional import softmax_cross_entropy
from .nn.module import load_arrays, save_arrays

CHECKPOINT = "checkpoint.npz"


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or exploded (see ``DIVERGED_FACTOR``)."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read (truncated, damaged, not minirect's)."""


class TrainingStopped(RuntimeError):
    """Another party asked this thread's training to stop (``stop_when``)."""


# A run in a thread that its owner may need to stop (a Dask task after Ctrl-C on
# the client: cancelling a future does not stop a task already running).
_stop = threading.local()


@contextlib.contextmanager
def stop_when(check):
    """While the block runs, training in this thread asks ``check()`` after every step and
    stops with ``TrainingStopped`` when it returns True (the last epoch's checkpoint stays)."""
    previous, _stop.check = getattr(_stop, "check", None), check
    try:
        yield
    finally:
        _stop.check = previous


def _check_stop(epoch, iteration) -> None:
    check = getattr(_stop, "check", None)
    if check is not None and check():
        raise TrainingStopped(f"stopped at epoch {epoch}, iteration {iteration + 1}, as asked")


# A loss this many times the run's first recorded loss has exploded: softmax
# cross-entropy starts near ln(classes), and a run that is learning never
# climbs three orders of magnitude above where it started.
DIVERGED_FACTOR = 1e3


@dataclass
class History:
    """Metrics recorded by ``fit``: one dict per epoch and one per iteration,
    and, with ``eval_every``, one per validation pass within and at the end of
    each epoch (``evaluations``, at fractional epochs)."""

    epochs: list = field(default_factory=list)
    iterations: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)

    def column(self, key: str) -> list:
        return [row[key] for row in self.epochs]

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "iterations": self.iterations,
                "evaluations": self.evaluations}

    def write(self, out_dir) -> None:
        write_csv(os.path.join(out_dir, "history.csv"), self.epochs)
        write_csv(os.path.join(out_dir, "iterations.csv"), self.iterations)
        write_csv(os.path.join(out_dir, "evaluations.csv"), self.evaluations)
        _atomic_text(os.path.join(out_dir, "history.json"), json.dumps(self.to_dict(), indent=1))


def write_csv(path, rows) -> None:
    """Rows (dicts with the same keys) as a CSV file, written atomically; none: no file."""
    if not rows:
        return

    def write(f):
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    files.write_atomically(path, write, text=True)


def _atomic_text(path, text) -> None:
    files.write_atomically(path, lambda f: f.write(text), text=True)


# ----------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------

def evaluate(model, loader, loss_fn=softmax_cross_entropy) -> tuple[float, float]:
    """Mean loss and top-1 error of ``model`` over ``loader``, in eval mode."""
    was_training = model.training
    model.eval()
    total_loss, wrong, count = 0.0, 0, 0       # sums stay on the device: one read at the end
    with no_grad():
        for x, y in loader:
            logits = model(x)
            n = len(y)
            total_loss = total_loss + loss_fn(logits, y).data * n
            wrong = wrong + _wrong_predictions(logits.data, y.data)
            count += n
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no batches (an empty dataset?)")
    total_loss, wrong = backend.to_numpy(total_loss), backend.to_numpy(wrong)   # the one host read
    return float(total_loss) / count, int(wrong) / count


def _wrong_predictions(logits, labels):
    """How many rows of ``logits`` do not have their largest entry at ``labels`` (a 0-d
    array that stays on the device: reading it is the caller's choice)."""
    xp = backend.array_module(logits, labels, op="error count")
    return xp.sum(xp.astype(xp.argmax(logits, axis=1) != labels, xp.int64))


# ----------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------

def save_checkpoint(path, model, optimizer=None, schedule=None, loaders=(), extra=None) -> None:
    """Write model, optimizer, schedule, loader and RNG state to one .npz file.

    Arrays are stored under ``model/<name>`` and ``velocity/<index>``; the rest
    is JSON in the ``meta`` entry. The write is atomic (temporary file, rename).
    """
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    meta = {"rng": _jsonable(backend.get_rng_state()), "extra": extra or {}}
    if optimizer is not None:
        state = optimizer.state_dict()
        arrays.update({f"velocity/{i}": v for i, v in state["velocity"].items()})
        meta["optimizer"] = state["param_groups"]
    if schedule is not None:
        meta["schedule"] = schedule.state_dict()
    meta["loaders"] = [ld.state_dict() if hasattr(ld, "state_dict") else None for ld in loaders]
    arrays["meta"] = files.encode_text(json.dumps(meta))
    save_arrays(path, arrays)


def load_checkpoint(path, model, optimizer=None, schedule=None, loaders=()) -> dict:
    """Restore what ``save_checkpoint`` wrote; returns its ``extra`` dict."""
    arrays, meta = _read_checkpoint(path)
    model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
    if optimizer is not None and "optimizer" in meta:
        velocity = {int(k[9:]): v for k, v in arrays.items() if k.startswith("velocity/")}
        optimizer.load_state_dict({"param_groups": meta["optimizer"], "velocity": velocity})
    if schedule is not None and "schedule" in meta:
        schedule.load_state_dict(meta["schedule"])
    for loader, state in zip(loaders, meta.get("loaders", [])):
        if state is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(state)
    backend.set_rng_state(meta["rng"])
    return meta["extra"]


def _read_checkpoint(path) -> tuple[dict, dict]:
    """The arrays and the meta data of a checkpoint, or CheckpointError saying what to do."""
    try:
        arrays = load_arrays(path)
        meta = json.loads(files.decode_text(arrays.pop("meta")))
        meta["extra"]["epoch"]
    except Exception as exc:       # a truncated zip, no meta, a foreign .npz, ...
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise CheckpointError(f"cannot read checkpoint {path} ({why}). Delete it to start over "
                              "(or use --overwrite), or resume from another run folder") from None
    return arrays, meta


def checkpoint_epoch(path) -> int:
    """The last epoch the checkpoint at ``path`` finished (0: no checkpoint there)."""
    return int(_read_checkpoint(path)[1]["extra"]["epoch"]) if os.path.exists(path) else 0


def _jsonable(obj):
    """RNG states hold large ints and nested dicts; JSON takes them as they are."""
    return json.loads(json.dumps(obj, default=int))


# ----------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------

def _progress(loader, desc, enabled):
    if not enabled:
        return loader, None
    from tqdm.auto import tqdm
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)
    return bar, bar


def training_step(model, optimizer, loss_fn=softmax_cross_entropy):
    """The step of SGD training as a function ``step(x, y) -> (loss, logits)``
    (backend arrays): forward, loss, backward, update."""
    def step(x, y):
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.data, logits.data
    return step


def train_one_epoch(model, loader, optimizer, epoch, history, loss_fn, progress, log_every=1,
                    mid_epoch=None, step=None, read_every=1):
    """One pass over ``loader``; appends per-iteration rows to ``history``.
    ``mid_epoch(i)``, if given, is called after iteration i (0-based).
    ``step`` is the training step (default ``training_step``; on a GPU ``fit``
    passes accel's, perhaps replayed from a CUDA graph). The losses and errors
    are read to the host ``read_every`` steps at a time (1: at once)."""
    step = step or training_step(model, optimizer, loss_fn)
    model.train()
    totals = {"loss": 0.0, "wrong": 0, "count": 0, "last_loss": math.nan}
    start = time.perf_counter()
    iterable, bar = _progress(loader, f"epoch {epoch}", progress)
    steps = len(loader)
    pending = []     # (iteration, loss, wrong predictions, batch size), still on the device

    def read_pending():
        _record(pending, epoch, steps, history, optimizer, totals, log_every)
        pending.clear()
        if bar is not None:
            rate = totals["count"] / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{totals['last_loss']:.3f}",
                            err=f"{totals['wrong'] / totals['count']:.3f}", img_s=f"{rate:.0f}")

    for i, (x, y) in enumerate(iterable):
        loss, logits = step(x, y)
        pending.append((i, loss, _wrong_predictions(logits, y.data), len(y)))
        if len(pending) >= read_every:
            read_pending()
        if mid_epoch is not None:
            mid_epoch(i)
        _check_stop(epoch, i)
    if pending:          # the last few (or a loader that stopped short of len(loader))
        read_pending()
    count = totals["count"]
    return totals["loss"] / count, totals["wrong"] / count, time.perf_counter() - start


def _record(pending, epoch, steps, history, optimizer, totals, log_every):
    """Read the pending losses and error counts in one transfer; stop on a
    non-finite loss; add the iterations to the history and the totals."""
    xp = backend.array_module(pending[0][1])
    losses = backend.to_numpy(xp.stack([loss for _, loss, _, _ in pending]))
    wrongs = backend.to_numpy(xp.stack([wrong for _, _, wrong, _ in pending]))
    for (i, _, _, n), loss_value, batch_wrong in zip(pending, losses.tolist(), wrongs.tolist()):
        first = history.iterations[0]["loss"] if history.iterations else totals.setdefault(
            "first_loss", loss_value)
        if not math.isfinite(loss_value) or loss_value > DIVERGED_FACTOR * max(first, 1e-3):
            raise TrainingDiverged(
                f"the loss became {loss_value:.4g} at epoch {epoch}, iteration {i + 1} (it "
                f"started at {first:.4g}). Training stopped; the checkpoint of the last "
                "finished epoch is intact. Try a smaller learning rate (deep plain nets are "
                "sensitive to it) or check the input scaling.")
        totals["loss"] += loss_value * n
        totals["wrong"] += batch_wrong
        totals["count"] += n
        totals["last_loss"] = loss_value
        if (i + 1) % log_every == 0 or i + 1 == steps:
            history.iterations.append({
                "epoch": round(epoch - 1 + (i + 1) / steps, 6),
                "iteration": len(history.iterations) + 1, "loss": loss_value,
                "error": batch_wrong / n, "lr": optimizer.param_groups[0]["lr"]})


def fit(model, train_loader, optimizer, epochs: int, val_loader=None, schedule=None,
        out_dir=None, resume: bool = False, loss_fn=softmax_cross_entropy, progress: bool = True,
        log_every: int = 1, on_epoch_end=None, eval_every: int = 0,
        cuda_graph: bool | None = None) -> History:
    """Train ``model`` for ``epochs`` epochs and return its ``History``.

    ``eval_every`` > 0 also evaluates on ``val_loader`` every that many
    iterations within an epoch (rows in ``history.evaluations``, with the
    epoch-end evaluations): on a large dataset the first epoch alone can
    hold the whole story of early convergence.

    ``schedule.step(val_error)`` is called after each epoch (step schedules
    ignore the argument). With ``out_dir`` the history and a checkpoint are
    written after every epoch; ``resume=True`` continues from that checkpoint.
    ``on_epoch_end(epoch, row)`` is called after each epoch (e.g. diagnostics).

    ``cuda_graph`` replays each training step from a recorded CUDA graph on a
    GPU (``minirect.accel``: the same arithmetic with far fewer kernel
    launches). None (the default) turns it on for a model on the GPU; a step
    that cannot be recorded then runs eagerly, with one line saying why. It
    changes nothing on the CPU, nor with ``minirect.fast_paths(False)``.
    """
    _check_loaders(train_loader, val_loader, eval_every)
    loaders = [ld for ld in (train_loader, val_loader) if ld is not None]
    checkpoint = os.path.join(out_dir, CHECKPOINT) if out_dir else None
    history, first_epoch = _start(checkpoint, resume, epochs, model, optimizer, schedule, loaders)
    elapsed = history.epochs[-1]["time"] if history.epochs else 0.0
    step, read_every = training_step(model, optimizer, loss_fn), 1
    if fast := backend.fast_path("gpu_training", model):      # on a GPU: accel/gpu_training.py
        step, read_every = fast.prepare(step, model, optimizer, cuda_graph)

    def mid_epoch(i):          # evaluation within the epoch (the loop's current ``epoch``)
        if (i + 1) % eval_every == 0 and i + 1 < len(train_loader):
            _record_evaluation(history, epoch - 1 + (i + 1) / len(train_loader),
                               *evaluate(model, val_loader, loss_fn))

    for epoch in range(first_epoch, epochs + 1):
        train_loss, train_error, seconds = train_one_epoch(          # step and record
            model, train_loader, optimizer, epoch, history, loss_fn, progress, log_every,
            mid_epoch if eval_every else None, step, read_every)
        row = {"epoch": epoch, "train_loss": train_loss, "train_error": train_error}
        if val_loader is not None:                                     # evaluate
            row["val_loss"], row["val_error"] = evaluate(model, val_loader, loss_fn)
            if eval_every:
                _record_evaluation(history, epoch, row["val_loss"], row["val_error"])
        elapsed += seconds
        row.update(lr=optimizer.param_groups[0]["lr"], time=elapsed)
        history.epochs.append(row)
        if schedule is not None:                                       # schedule
            schedule.step(row.get("val_error", train_error))
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        if progress:
            _print_epoch(row, epochs)
        if out_dir:                                                    # checkpoint
            _check_weights_finite(model, epoch)       # never overwrite a good checkpoint
            # the checkpoint first: history.csv is never ahead of it (a full disk, a crash)
            save_checkpoint(checkpoint, model, optimizer, schedule, loaders,
                            extra={"epoch": epoch, "history": history.to_dict()})
            history.write(out_dir)
    return history


def _check_loaders(train_loader, val_loader, eval_every) -> None:
    if eval_every and val_loader is None:
        raise ValueError("fit: eval_every needs a val_loader")
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if loader is not None and len(loader) == 0:
            raise ValueError(f"fit: {name} has no batches (an empty dataset?): nothing to train on")


def _start(checkpoint, resume, epochs, model, optimizer, schedule, loaders):
    """(history, first epoch): empty and 1, or, with ``resume``, those of the checkpoint."""
    if checkpoint:
        os.makedirs(os.path.dirname(checkpoint) or ".", exist_ok=True)
    if not (resume and checkpoint and os.path.exists(checkpoint)):
        return History(), 1
    extra = load_checkpoint(checkpoint, model, optimizer, schedule, loaders)
    if extra["epoch"] > epochs:       # the record would say fewer epochs than were trained
        raise ValueError(f"fit: the checkpoint in {os.path.dirname(checkpoint)} has finished "
                         f"{extra['epoch']} epochs, more than epochs={epochs}: ask for "
                         f"{extra['epoch']} or more")
    return History(**extra["history"]), extra["epoch"] + 1


def _check_weights_finite(model, epoch) -> None:
    """Raise ``TrainingDiverged`` if any parameter holds a NaN or an infinity."""
    params = list(model.parameters())
    xp = backend.array_module(params[0].data)
    finite = xp.all(xp.stack([xp.all(xp.isfinite(p.data)) for p in params]))
    if not bool(backend.to_numpy(finite)):                                   # one device read
        raise TrainingDiverged(
            f"the weights hold NaN or infinite values after epoch {epoch}; the checkpoint of "
            "the last good epoch was not replaced. Try a smaller learning rate.")


def _record_evaluation(history, epoch, val_loss, val_error) -> None:
    history.evaluations.append({"epoch": round(epoch, 6), "val_loss": val_loss,
                                "val_error": val_error})


def _print_epoch(row, epochs) -> None:
    from tqdm.auto import tqdm
    val = f", val loss {row['val_loss']:.4f}, val error {row['val_error']:.4f}" if "val_error" in row else ""
    tqdm.write(f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f}, "
               f"train error {row['train_error']:.4f}{val}, lr {row['lr']:.3g}, {row['time']:.1f}s")
