"""Run folders: nothing written is lost, no two writers, no silent mix on resume.

A run folder (``minirect train --out DIR``, ``minirect reproduce --out DIR``)
holds a run's ``config.json``, its history and its checkpoints. Three rules
keep what is in it:

* **A folder that holds a run is not replaced by accident.** Starting a new
  run there needs ``--resume`` (continue it) or ``--overwrite`` (replace it);
  ``check_target`` refuses otherwise and names the choices.
* **One writer at a time.** ``claim(folder)`` creates ``folder/.lock`` naming
  the process (host, pid, command, start time); a second process stops with
  a message naming the first. A lock whose process is gone (a crash,
  ``kill -9``) is stale and is taken over, so it never stays stuck.
* **A resumed run keeps its options.** ``differences(saved, requested)``
  lists the options that differ from ``config.json``; they are refused
  instead of ignoring some (a checkpoint restores the saved learning rate,
  for one) or mixing two runs in one history.

``open_run(folder, config, resume, overwrite, may_change)`` applies all three
around a run: ``train``, ``reproduce`` and ``sweep`` each start with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time

LOCK = ".lock"
CONFIG = "config.json"
# What minirect writes into a run folder (and what --overwrite removes; nothing else is touched).
RUN_FILES = ("checkpoint.npz", "history.csv", "iterations.csv", "evaluations.csv",
             "history.json", "summary.txt", "summary.json", "curves.png", "layers.png",
             "sweep.csv", "sweep.json", "sweep.txt", "sweep.png")
# An experiment (reproduce, sweep) keeps one folder per run in runs/, named by these;
# anything else in runs/ (another run's folder, a user's notes) is not part of it.
SUBRUNS = "runs"
SUBRUN_NAME = re.compile(r"(depth\d+-)?(msra|xavier)-seed-?\d+")
# config.json alone (a run that stopped before its first epoch) holds no results.
WRITTEN = (CONFIG,)


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
        holder = _read_lock(os.path.join(where, LOCK))
        if holder is not None and _alive(holder):
            raise RunFolderError(
                f"--overwrite: {where} is being written by another minirect process "
                f"({_holder_text(os.path.join(where, LOCK))}). Wait for it to finish, or use "
                "another --out")
    for where in _subruns(folder) + [folder]:
        for name in RUN_FILES + WRITTEN:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(where, name))
        if where != folder:
            with contextlib.suppress(OSError):        # empty now, unless a user put files there
                os.rmdir(where)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(folder, SUBRUNS))


def _holder_text(path) -> str:
    holder = _read_lock(path) or {}
    return f"pid {holder.get('pid')} on {holder.get('host')}: {holder.get('command')}"


@contextlib.contextmanager
def open_run(folder, config: dict, resume: bool, overwrite: bool, may_change=()):
    """Hold ``folder`` for one run with options ``config``: refuse to replace a run by
    accident, lock out a second writer, refuse a resume with other options (those in
    ``may_change`` excepted), then write ``config.json``."""
    check_target(folder, resume, overwrite)
    with claim(folder):
        if overwrite:
            clear(folder)
        saved = read_config(folder) if resume else None
        changed = differences(saved, config, may_change) if saved else []
        if changed:
            raise RunFolderError(
                f"--resume: the options differ from the run saved in {folder} (config.json): "
                + "; ".join(changed) + ". Resume with the saved options, or start a new run "
                "(another --out, or --overwrite)")
        write_config(folder, config)
        yield


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
    path = os.path.join(folder, CONFIG)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_config(folder, config: dict) -> None:
    tmp = os.path.join(folder, CONFIG + ".tmp")
    with open(tmp, "w") as f:
        json.dump(config, f, indent=1, default=str)
    os.replace(tmp, os.path.join(folder, CONFIG))


# ----------------------------------------------------------------------------
# The lock
# ----------------------------------------------------------------------------

@contextlib.contextmanager
def claim(folder):
    """Hold ``folder/.lock`` while the block runs; refuse if a live process holds it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK)
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%c"),
            "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])}
    while not _create_exclusive(path, json.dumps(mine)):
        holder = _read_lock(path)
        if holder is not None and _alive(holder):
            raise RunFolderError(
                f"{folder} is being written by another minirect process (pid {holder['pid']} on "
                f"{holder['host']}, started {holder['started']}: {holder['command']}). Wait for "
                f"it to finish or use another --out (if no such process runs, delete {path})")
        with contextlib.suppress(FileNotFoundError):      # stale: its process is gone
            os.remove(path)
    try:
        yield
    finally:
        if _read_lock(path) == mine:
            os.remove(path)


def _create_exclusive(path, text) -> bool:
    """Write ``text`` to ``path`` only if no file is there (atomic: a link cannot replace)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(tmp)


def _read_lock(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _alive(holder) -> bool:
    """Is the lock's process still running? On another host we cannot tell: assume so."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # someone else's live process
        return True
    return True
