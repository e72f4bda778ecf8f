"""Run folders: nothing written is lost, no two writers, no silent mix on resume.

A run folder (``minirect train --out DIR``, ``minirect reproduce --out DIR``)
holds a run's ``config.json``, its history and its checkpoints. Three rules
keep what is in it:

* **A folder that holds a run is not replaced by accident.** Starting a new
  run there needs ``--resume`` (continue it) or ``--overwrite`` (replace it);
  ``check_target`` refuses otherwise and names the choices.
* **One writer at a time.** ``claim(folder)`` locks ``folder/.lock`` (the
  kernel's ``flock``) and writes into it who holds it (host, pid, command,
  start time); a second process stops with a message naming the first. The
  kernel releases the lock when its process ends (a crash, ``kill -9``), so
  it never stays stuck.
* **A resumed run keeps its options.** ``differences(saved, requested)``
  lists the options that differ from ``config.json``; they are refused
  instead of ignoring some (a checkpoint restores the saved learning rate,
  for one) or mixing two runs in one history.

``open_run(folder, config, resume, overwrite, may_change)`` applies all three
around a run: ``train``, ``reproduce`` and ``sweep`` each start with it.

What goes into a folder goes through here as well: ``run_folder`` names an
experiment's run folders, ``write_csv``/``write_json``/``write_text`` write
its tables, results and summaries (each file atomically: whole or not at all).
A run's history and checkpoints are written by ``train.fit`` (``History.write``,
``save_checkpoint``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time

from . import accel, files, train
from .train import write_csv  # noqa: F401  (rows → CSV; the training loop writes its history with it)

LOCK = ".lock"
CONFIG = "config.json"
# What minirect writes into a run folder (and what --overwrite removes; nothing else is touched).
RUN_FILES = ("checkpoint.npz", "history.csv", "iterations.csv", "evaluations.csv",
             "history.json", "summary.txt", "summary.json", "curves.png", "layers.png",
             "sweep.csv", "sweep.json", "sweep.txt", "sweep.png", "coefficients.png")
# An experiment (reproduce, sweep) keeps one folder per run in runs/, named by these;
# anything else in runs/ (another run's folder, a user's notes) is not part of it.
SUBRUNS = "runs"
SUBRUN_NAME = re.compile(r"(depth\d+-)?(msra|xavier|relu|prelu-shared|prelu)-seed-?\d+")
# config.json alone (a run that stopped before its first epoch) holds no results.
WRITTEN = (CONFIG,)


def run_folder(out_dir, init: str, seed: int, depth: int | None = None) -> str:
    """Where one run of an experiment keeps its history and checkpoint:
    ``out_dir/runs/<init>-seed<seed>`` (a sweep's: ``depth<L>-<init>-seed<seed>``; table2's:
    ``<activation>-seed<seed>``, the rectifier in place of the init)."""
    name = f"{init}-seed{seed}" if depth is None else f"depth{depth}-{init}-seed{seed}"
    return os.path.join(out_dir, SUBRUNS, name)


def write_json(path, value) -> None:
    """``value`` as indented JSON (what JSON cannot hold, as its ``str``)."""
    write_text(path, json.dumps(value, indent=1, default=str))


def write_text(path, text: str) -> None:
    """``text`` into the file ``path``, atomically (``files.write_atomically``)."""
    files.write_atomically(path, lambda f: f.write(text), text=True)


class RunFolderError(ValueError):
    """A run folder cannot be used as asked; the message says what to do instead."""


def holds_run(folder) -> bool:
    """True when ``folder`` already holds (part of) a minirect run: its files, or
    an experiment's run folders in runs/ holding theirs."""
    return any(os.path.exists(os.path.join(where, name))
               for where in [folder, *_subruns(folder)] for name in RUN_FILES)


def _subruns(folder) -> list:
    """The folders in ``folder``/runs/ named as an experiment names its runs."""
    try:
        names = sorted(os.listdir(os.path.join(folder, SUBRUNS)))
    except OSError:          # no runs/ (or not a folder)
        return []
    return [os.path.join(folder, SUBRUNS, name) for name in names
            if SUBRUN_NAME.fullmatch(name) and os.path.isdir(os.path.join(folder, SUBRUNS, name))]


def check_target(folder, resume: bool, overwrite: bool, flag: str = "--out") -> None:
    """Refuse to start a new run over an existing one without ``resume``/``overwrite``."""
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite contradict each other: pick one")
    _check_writable(folder, flag)
    if holds_run(folder) and not (resume or overwrite):
        raise RunFolderError(
            f"{folder} already holds a run. Use --resume to continue it, --overwrite to replace "
            f"it, or another {flag} for a new one")


def _check_writable(folder, flag) -> None:
    """Create ``folder`` if needed and make sure a file can be written in it, now, not after training."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise RunFolderError(f"{flag} {folder} is a file, not a folder: choose a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise RunFolderError(f"{flag} {folder} cannot be written ({error.strerror}): choose "
                             "a folder you can write to") from None


def clear(folder) -> None:
    """Remove the files of an earlier run (``--overwrite``): minirect's own files in
    ``folder`` and in its experiment run folders (runs/<init>-seed<s>/), nothing else.
    Refused while another process holds a lock in one of those (a run still being written)."""
    for where in _subruns(folder):
        if held(os.path.join(where, LOCK)):
            raise RunFolderError("--overwrite: " + _held_message(where, os.path.join(where, LOCK)))
    for where in _subruns(folder) + [folder]:
        for name in RUN_FILES + WRITTEN:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(where, name))
        if where != folder:
            with contextlib.suppress(OSError):        # empty now, unless a user put files there
                os.rmdir(where)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(folder, SUBRUNS))


@contextlib.contextmanager
def open_run(folder, config: dict, resume: bool, overwrite: bool, may_change=()):
    """Hold ``folder`` for one run with options ``config``: refuse to replace a run by
    accident, lock out a second writer, refuse a resume with other options (those in
    ``may_change`` excepted), then write ``config.json``."""
    check_target(folder, resume, overwrite)
    # The fast paths change results in the last digits: part of what a run was.
    config = {**config, "fast_paths": accel.enabled()}
    with claim(folder):
        if overwrite:
            clear(folder)
        saved = _resumable(folder, config) if resume else None
        changed = differences(saved, config, may_change) if saved else []
        if changed:
            raise RunFolderError(
                f"--resume: the options differ from the run saved in {folder} (config.json): "
                + "; ".join(changed) + ". Resume with the saved options, or start a new run "
                "(another --out, or --overwrite)")
        write_config(folder, config)
        yield


def _resumable(folder, config) -> dict:
    """The saved options of the run ``--resume`` continues; refused when there is no run, its
    options are unknown, or it has already trained more epochs than asked for."""
    saved = read_config(folder)
    if saved is None:
        raise RunFolderError(
            f"--resume: {folder} has no config.json, so " + (
                "the options of the run in it cannot be checked: use --overwrite to replace it"
                if holds_run(folder) else "it holds no run to continue: leave out --resume to "
                "start one"))
    done = max(train.checkpoint_epoch(os.path.join(where, "checkpoint.npz"))
               for where in [folder, *_subruns(folder)])
    if config.get("epochs") is not None and config["epochs"] < done:
        raise RunFolderError(f"--resume --epochs {config['epochs']}: the run in {folder} has "
                             f"already finished {done} epochs; ask for {done} or more")
    return saved


def differences(saved: dict, requested: dict, may_change=()) -> list[str]:
    """The options (keys) whose values differ, as lines 'key: saved X, now Y'.

    Only options both sides name are compared: one the saved run does not
    record was added to minirect after it ran, with a default that keeps the
    old behaviour (``inits``, say), and is no reason to refuse a resume.
    """
    lines = []
    for key in sorted(set(saved) & set(requested)):
        if key in may_change:
            continue
        old, new = _plain(saved.get(key)), _plain(requested.get(key))
        if old != new:
            lines.append(f"{key}: {old!r} in the saved run, {new!r} now")
    return lines


def _plain(value):
    """JSON turns tuples into lists: compare in JSON's terms."""
    return json.loads(json.dumps(value, default=str))


def read_config(folder) -> dict | None:
    """The options saved in ``folder``/config.json; None without one; RunFolderError when damaged."""
    path = os.path.join(folder, CONFIG)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as error:
        config = error
    if not isinstance(config, dict):
        raise RunFolderError(f"{path} is damaged or not minirect's ({' '.join(str(config).split())}):"
                             " restore it, or use --overwrite to start the run over")
    return config


def write_config(folder, config: dict) -> None:
    write_json(os.path.join(folder, CONFIG), config)


# ----------------------------------------------------------------------------
# The lock
# ----------------------------------------------------------------------------
#
# The lock is the kernel's: an exclusive ``flock`` on ``folder/.lock``. The kernel
# drops it when its process ends, however it ends (``kill -9``, a crash, a
# container restart), so liveness is never guessed from a pid, which may have
# been reused or be our own (PID 1 in a restarted container), and taking over an
# abandoned lock is the same atomic step as taking a free one: no window in which
# two processes both decide that a lock is stale. The file's text only names the
# holder for the message a second process gets.

@contextlib.contextmanager
def claim(folder):
    """Hold ``folder/.lock`` while the block runs; refuse if another process holds it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK)
    fd = _take(path, folder)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_me()).encode())
        yield
    finally:        # remove it while we hold it (no one else holds this file's lock), unless
        if _is_file_at(fd, path):        # someone deleted it by hand and another took the name
            os.remove(path)
        os.close(fd)


def _me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])}


def _take(path, folder) -> int:
    """Open ``path`` and take its lock; a file descriptor, or RunFolderError naming the holder."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:         # a folder named .lock, no permission, ...
            raise RunFolderError(f"{path} cannot be used as minirect's lock file ({error.strerror}): "
                                 "remove it if no minirect process writes this folder") from None
        if not _lock(fd):
            os.close(fd)
            raise RunFolderError(_held_message(folder, path))
        # The holder we waited for may have removed the file between our open and our lock:
        # then we hold the lock of a file no one else will open. Try again with the new one.
        if _is_file_at(fd, path):
            break
        os.close(fd)
    if _read_lock(path).get("host", socket.gethostname()) != socket.gethostname():
        os.close(fd)         # a network folder: the kernel may not see the other machine's lock
        raise RunFolderError(_held_message(folder, path) + f" (minirect cannot tell whether a "
                             f"process on another machine still runs: if it does not, delete {path})")
    return fd


def _lock(fd) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; False if another process holds it."""
    import fcntl            # POSIX (Linux, macOS); imported here so that the rest imports anywhere

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_file_at(fd, path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def held(path) -> bool:
    """Does a process hold the lock file ``path`` now?"""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        free = _lock(fd)            # closing the file releases it again
    finally:
        os.close(fd)
    return not free


def _held_message(folder, path) -> str:
    holder = _read_lock(path)
    who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
           f"{holder.get('started', '?')}: {holder.get('command', '?')}")
    return (f"{folder} is being written by another minirect process ({who}). Wait for it to "
            "finish or use another --out")


def _read_lock(path) -> dict:
    """The holder a lock file names; {} for an empty or damaged one."""
    try:
        with open(path) as f:
            holder = json.load(f)
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}
