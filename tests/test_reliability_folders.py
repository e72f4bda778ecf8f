"""Run folders: ``--overwrite`` replaces exactly the run ``--out`` names.

It removes the files minirect wrote for that run (its own files and, for an
experiment, those of its run folders in runs/), refuses while another process
holds a lock inside, and leaves everything else: other runs' folders, a
user's notes, and above all a run still being written.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minirect import cli, runs

TRAIN = ("train", "--model", "model_b", "--width", "2", "2", "2", "2", "--fc-width", "4", "--quiet")


def _cli(*argv):
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as stop:
        return stop.code


def _snapshot(folder) -> dict:
    """Every file under ``folder`` (path relative to it) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def _start_writer(cwd, out, epochs=100000):
    """A `minirect train` in another process, writing ``out`` until it is stopped."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    proc = subprocess.Popen([sys.executable, "-m", "minirect", *TRAIN, "--epochs", str(epochs),
                             "--out", str(out)], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (Path(cwd) / out / "checkpoint.npz").exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    return proc


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.stderr.read()


def test_overwrite_leaves_other_runs_notes_and_a_live_writer_alone(tmp_path, monkeypatch):
    """The issue's reproduction: `train` (into runs/<default>/), a user's runs/my-notes/,
    a live `train` in runs/live/, then `train --out . --overwrite`."""
    monkeypatch.chdir(tmp_path)
    notes = tmp_path / "runs" / "my-notes"
    notes.mkdir(parents=True)
    (notes / "ideas.txt").write_text("try lr 0.01")
    (notes / "history.csv").write_text("my own table")           # a name minirect also uses
    assert _cli(*TRAIN, "--epochs", "1") == 0                   # into runs/train-model_b-...
    writer = _start_writer(tmp_path, "runs/live")
    try:
        others = {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith("runs/live")}
        assert _cli(*TRAIN, "--epochs", "1", "--out", ".") == 0
        assert _cli(*TRAIN, "--epochs", "1", "--out", ".", "--overwrite") == 0
        after = _snapshot(tmp_path)
        for name, content in others.items():
            assert after.get(name) == content, f"--overwrite changed {name}"
        assert writer.poll() is None, "the live run stopped"
    finally:
        err = _stop(writer)
    assert "Traceback" not in err, err


def test_overwrite_refuses_while_a_run_inside_is_being_written(tmp_path, monkeypatch):
    """A live `train` in runs/xavier-seed0/ (where an experiment keeps a run): replacing
    the experiment in the folder above would delete its files, so --overwrite refuses."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "summary.txt").write_text("an earlier experiment")
    writer = _start_writer(tmp_path, "runs/xavier-seed0")
    try:
        before = _snapshot(tmp_path / "runs")
        assert _cli(*TRAIN, "--epochs", "1", "--out", ".", "--overwrite") == 2
        with pytest.raises(runs.RunFolderError, match="being written by another minirect process"):
            with runs.open_run(str(tmp_path), {}, resume=False, overwrite=True):
                pass
        assert (tmp_path / "summary.txt").exists()
        assert set(_snapshot(tmp_path / "runs")) >= set(before)
        assert writer.poll() is None, "the live run stopped"
    finally:
        err = _stop(writer)
    assert "Traceback" not in err, err


def test_overwrite_removes_exactly_the_runs_files(tmp_path):
    """minirect's files of the run and of its experiment folders go; nothing else does."""
    for name in ("config.json", "history.csv", "summary.txt", "curves.png", "sweep.csv"):
        (tmp_path / name).write_text("old")
    (tmp_path / "my-plot.png").write_text("mine")
    run = tmp_path / "runs" / "xavier-seed1"
    run.mkdir(parents=True)
    (run / "checkpoint.npz").write_text("old")
    (run / "history.csv").write_text("old")
    kept = tmp_path / "runs" / "depth6-msra-seed0"
    kept.mkdir()
    (kept / "checkpoint.npz").write_text("old")
    (kept / "notes.md").write_text("mine")
    other = tmp_path / "runs" / "train-model_b-digits-msra"
    other.mkdir()
    (other / "checkpoint.npz").write_text("another run")
    assert runs.holds_run(tmp_path)
    runs.clear(tmp_path)
    assert _snapshot(tmp_path) == {"my-plot.png": b"mine", "runs/depth6-msra-seed0/notes.md": b"mine",
                                   "runs/train-model_b-digits-msra/checkpoint.npz": b"another run"}
    assert not runs.holds_run(tmp_path)


def test_notes_in_runs_are_not_a_run(tmp_path):
    (tmp_path / "runs" / "my-notes").mkdir(parents=True)
    (tmp_path / "runs" / "my-notes" / "todo.txt").write_text("x")
    assert not runs.holds_run(tmp_path)
    runs.check_target(str(tmp_path), resume=False, overwrite=False)     # no refusal


# ----------------------------------------------------------------------------
# The lock: one holder, whatever the timing; pids that lie; damaged lock files
# ----------------------------------------------------------------------------

HOLDER = """import sys
from minirect import runs
sys.argv = ["minirect", "reproduce", "fig3"]
with runs.claim(FOLDER):
    print("held", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def holding_lock(folder):
    """Another process holds ``folder``'s lock while the block runs."""
    code = HOLDER.replace("FOLDER", repr(str(folder)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)


def _stale_lock(folder, pid):
    os.makedirs(folder, exist_ok=True)
    Path(folder, runs.LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": pid,
                                                   "started": "earlier", "command": "x"}))


def _racer(root, trials, barrier, counts, guard):
    """Try each trial's folder at the same moment as the other racers; count the holders
    inside at once (``counts[2 * trial]``: most at once, ``+ 1``: now)."""
    from minirect import runs as runs_
    for trial in range(trials):
        barrier.wait(60)
        try:
            with runs_.claim(os.path.join(root, str(trial))):
                with guard:
                    counts[2 * trial + 1] += 1
                    counts[2 * trial] = max(counts[2 * trial], counts[2 * trial + 1])
                time.sleep(0.02)
                with guard:
                    counts[2 * trial + 1] -= 1
        except runs_.RunFolderError:
            pass


def race(root, racers=4, trials=50) -> list:
    """``racers`` processes race for a stale lock in each of ``trials`` folders; the
    most holders seen at once, per trial."""
    dead = _dead_pid()
    for trial in range(trials):
        _stale_lock(os.path.join(root, str(trial)), dead)
    context = multiprocessing.get_context("spawn")
    barrier, guard = context.Barrier(racers), context.Lock()
    counts = context.Array("i", 2 * trials)
    procs = [context.Process(target=_racer, args=(str(root), trials, barrier, counts, guard))
             for _ in range(racers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return list(counts[0::2])


@pytest.mark.parametrize("racers", [4, 8])
def test_racing_for_a_stale_lock_never_gives_two_holders(tmp_path, racers):
    most = race(tmp_path, racers)
    assert max(most) == 1, f"two or more holders at once in {sum(m > 1 for m in most)} of 50 trials"


def test_a_live_holder_refuses_a_second_writer_and_the_message_names_it(tmp_path):
    with holding_lock(tmp_path) as holder:
        assert runs.held(str(tmp_path / runs.LOCK))
        with pytest.raises(runs.RunFolderError) as refused:
            with runs.claim(tmp_path):
                pass
        assert f"pid {holder.pid}" in str(refused.value) and "minirect reproduce fig3" in str(refused.value)
    with runs.claim(tmp_path):           # released when its process ended
        pass
    assert not (tmp_path / runs.LOCK).exists()


@pytest.mark.parametrize("pid", ["own", "parent"], ids=["our own pid", "a live process's pid"])
def test_a_lock_whose_pid_lives_but_holds_nothing_is_taken_over(tmp_path, pid):
    """A container's PID 1 after a restart finds its own pid in the lock; a reused pid
    names some other live process: neither holds the lock, so neither blocks."""
    _stale_lock(tmp_path, os.getpid() if pid == "own" else os.getppid())
    with runs.claim(tmp_path):
        assert json.loads((tmp_path / runs.LOCK).read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("text", ["{}", "[]", '{"pid": "abc"}', "", "\x00garbage"])
def test_a_damaged_lock_file_that_no_process_holds_is_taken_over(tmp_path, text):
    (tmp_path / runs.LOCK).write_text(text)
    with runs.claim(tmp_path):
        assert json.loads((tmp_path / runs.LOCK).read_text())["pid"] == os.getpid()


def test_a_damaged_lock_file_held_by_a_live_process_gets_a_message(tmp_path):
    with holding_lock(tmp_path):
        (tmp_path / runs.LOCK).write_text('{"pid": "abc"}')          # hand-edited while held
        with pytest.raises(runs.RunFolderError, match="being written by another minirect process"):
            with runs.claim(tmp_path):
                pass


def test_a_lock_from_another_machine_is_left_to_its_owner(tmp_path):
    """On a network folder the kernel may not see another machine's lock: refuse, and say so."""
    (tmp_path / runs.LOCK).write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    with pytest.raises(runs.RunFolderError, match="another machine"):
        with runs.claim(tmp_path):
            pass
    assert (tmp_path / runs.LOCK).exists()


def test_a_folder_named_lock_gets_a_message(tmp_path):
    (tmp_path / runs.LOCK).mkdir()
    with pytest.raises(runs.RunFolderError, match="cannot be used as minirect's lock file"):
        with runs.claim(tmp_path):
            pass


def test_a_lock_deleted_by_hand_is_not_removed_from_under_its_next_holder(tmp_path):
    mine = runs.claim(tmp_path)
    mine.__enter__()
    os.remove(tmp_path / runs.LOCK)                 # following an old message's advice
    with holding_lock(tmp_path):                    # another process takes the name
        mine.__exit__(None, None, None)
        assert runs.held(str(tmp_path / runs.LOCK)), "the other process's lock was removed"


def test_run_folders_are_named_as_overwrite_and_resume_find_them():
    """runs.run_folder names an experiment's runs; clear() and --resume find them by SUBRUN_NAME."""
    for depth in (None, 6):
        folder = runs.run_folder("out", "xavier", 2, depth=depth)
        assert os.path.dirname(folder) == os.path.join("out", runs.SUBRUNS)
        assert runs.SUBRUN_NAME.fullmatch(os.path.basename(folder))
