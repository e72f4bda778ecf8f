"""Where the runs of an experiment execute: here, in local processes, or on a Dask cluster.

An experiment (``reproduce``, ``sweep depth``) is a list of independent runs,
one per (init, seed[, depth]). ``run_jobs(task, jobs, ...)`` calls
``task(*job, progress=..., on_epoch=...)`` for each job and returns the results
in the order of ``jobs``, wherever they ran:

* ``workers=1``: one after the other in this process (progress bars per epoch);
* ``workers=N``: ``N`` local processes (``concurrent.futures.ProcessPoolExecutor``,
  spawned); one progress bar over the epochs of all runs. Ctrl-C or the death
  of this process (even ``kill -9``) stops every worker at once;
* ``scheduler="tcp://HOST:PORT"``: a Dask distributed cluster. Dask's
  ``Client`` is a ``concurrent.futures``-style executor; the workers must
  share the output folder (a network file system) and have minirect
  installed. ``pip install -e ".[cluster]"``; docs/cluster.md says how to
  start a scheduler and workers. Ctrl-C sets a flag the runs read after
  every step, and returns once they have all stopped.

Each run writes its own checkpoint after every epoch, so an interrupted
experiment resumes (``resume=True``) from what finished, on any executor.
The task must be a module-level function (it is pickled to the workers).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

from .. import accel


def run_jobs(task, jobs, epochs_per_job, workers=None, scheduler=None, progress=True,
             folder=None) -> list:
    """Run ``task(*job)`` for every job; the results in the order of ``jobs``. ``folder``,
    where the runs write, must be visible to a cluster's workers."""
    if scheduler is not None:
        return _run_on_dask(task, jobs, scheduler, progress, folder)
    if workers is None:
        workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [task(*job, progress=progress) for job in jobs]
    return _run_in_processes(task, jobs, workers, sum(epochs_per_job), progress)


# BLAS's thread count is one setting per process. threadpoolctl's limit restores it
# when its block ends, even while a run in another thread (a Dask worker runs
# several) still computes: the first run to start sets it, the last to end restores it.
_blas = {"lock": threading.Lock(), "runs": 0, "limit": None}


@contextlib.contextmanager
def blas_threads(n: int):
    """BLAS on ``n`` threads while the block runs, however many threads run such blocks."""
    from threadpoolctl import threadpool_limits

    with _blas["lock"]:
        if _blas["runs"] == 0:
            _blas["limit"] = threadpool_limits(n, user_api="blas")
        _blas["runs"] += 1
    try:
        yield
    finally:
        with _blas["lock"]:
            _blas["runs"] -= 1
            if _blas["runs"] == 0:
                _blas["limit"].restore_original_limits()


# ----------------------------------------------------------------------------
# Local processes
# ----------------------------------------------------------------------------

def _run_in_processes(task, jobs, workers, total_epochs, progress):
    import concurrent.futures
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    messages = context.SimpleQueue()
    lifeline, parent_end = context.Pipe(duplex=False)
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_start,
        initargs=(messages, lifeline, accel.enabled()))
    try:
        futures = [pool.submit(_in_worker, task, job) for job in jobs]
        _follow(futures, messages, total_epochs, progress)
        return [future.result() for future in futures]
    except BrokenProcessPool:
        raise WorkerDied("a worker process died (killed, or out of memory?) and the runs "
                         "stopped. Each run's last finished epoch is kept in its checkpoint: "
                         "run the same command with --resume to continue") from None
    finally:       # normal end, an error or Ctrl-C: no run may go on without us
        parent_end.close()          # every worker's lifeline ends: they exit
        pool.shutdown(wait=True, cancel_futures=True)


class WorkerDied(RuntimeError):
    """A local worker process ended without finishing its run (``kill -9``, out of memory)."""


def _worker_start(messages, lifeline, fast_paths):
    """Set up a worker process: the progress queue, Ctrl-C left to the parent,
    and a watch on ``lifeline`` (the read end of a pipe whose only writer is
    the parent). When the parent closes it (Ctrl-C) or dies (even ``kill -9``)
    the read ends with EOF and the worker exits at once: no orphans, no
    queued runs trained after an interrupt. Checkpoints are written atomically,
    so the last finished epoch of each run survives."""
    import signal
    import threading

    global _messages
    _messages = messages
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    accel.fast_paths(fast_paths)         # as in the parent, whatever its environment said

    def watch():
        try:
            lifeline.recv()
        except (EOFError, OSError):
            pass
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


_messages = None      # the progress queue, in a worker process


def _in_worker(task, job):
    """One job in a worker process; after each epoch it sends a line for the parent's bar."""
    def on_epoch(label, epoch, row):
        _messages.put((label, epoch, row.get("val_error")))
    return task(*job, progress=False, on_epoch=on_epoch)


def _follow(futures, messages, total_epochs, progress):
    """One tqdm bar over the epochs of all runs, fed by the workers' messages."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total_epochs, desc="epochs (all runs)", disable=not progress,
               dynamic_ncols=True)
    while True:
        if messages.empty():
            if all(f.done() for f in futures):
                break
            time.sleep(0.2)
            continue
        label, epoch, error = messages.get()
        bar.update(1)
        bar.set_postfix_str(f"{label} epoch {epoch}: val error {error:.3f}")
    bar.close()


# ----------------------------------------------------------------------------
# A Dask cluster
# ----------------------------------------------------------------------------

class ClusterError(RuntimeError):
    """The Dask cluster cannot be used as asked; the message says why and what to do."""


CONNECT_TIMEOUT = 10          # seconds to reach the scheduler before giving up
STOP_WAIT = 120               # seconds to wait, after Ctrl-C, for the runs to stop
SCHEMES = ("tcp", "tls", "ucx", "ws", "wss", "inproc")


def scheduler_address(text: str) -> str:
    """``text`` if it is a Dask scheduler address (tcp://HOST:PORT), else ValueError saying why."""
    scheme, _, rest = text.rpartition("://")
    if scheme in ("http", "https"):
        raise ValueError(f"{text!r} is a web address (the dashboard's?); the scheduler listens "
                         "on tcp://HOST:PORT (port 8786 by default)")
    host, _, port = rest.rpartition(":")
    if scheme not in SCHEMES + ("",) or not host or not port.isdigit():
        raise ValueError(f"{text!r} is not a Dask scheduler address: use tcp://HOST:PORT, e.g. "
                         "tcp://127.0.0.1:8786")
    return text


def _run_on_dask(task, jobs, scheduler, progress, folder=None):
    """Submit every job to the cluster at ``scheduler``; a bar counts finished runs.

    Ctrl-C (or an error) sets a stop flag that the runs read after every step and
    waits until every run has ended, so that nothing writes into the output
    folder once this returns (and its lock is released)."""
    try:
        from distributed import Client, Event, as_completed, wait
    except ImportError:
        raise ImportError("--scheduler needs Dask's distributed package: "
                          "pip install -e \".[cluster]\"") from None
    from tqdm.auto import tqdm

    try:
        client = Client(scheduler_address(scheduler), timeout=CONNECT_TIMEOUT)
    except (ValueError, OSError) as error:       # a bad address, refused, timed out
        raise ClusterError(f"cannot use the Dask scheduler at {scheduler!r}: {error}. Is it "
                           "running, and is its port open from here? (docs/cluster.md)") from None
    with client:
        _check_shared(client, folder)
        stop = Event(f"minirect-stop-{os.getpid()}-{time.time_ns()}", client=client)
        futures = [client.submit(_on_dask_worker, task, job, stop.name, accel.enabled(), pure=False)
                   for job in jobs]
        bar = tqdm(total=len(futures), desc=f"runs on {scheduler}", disable=not progress)
        try:
            for _ in as_completed(futures):
                bar.update(1)
            return client.gather(futures)
        except BaseException as error:      # Ctrl-C or a failed run: stop the others first
            stop.set()
            wait(futures, timeout=STOP_WAIT)
            if type(error).__name__ == "KilledWorker":     # a run took down its workers
                raise ClusterError(f"Dask workers died running a task ({error}); out of memory? "
                                   "Each run's last finished epoch is kept in its checkpoint: "
                                   "run the same command with --resume to continue") from None
            raise
        finally:
            bar.close()
            client.cancel(futures)


def _check_shared(client, folder) -> None:
    """Refuse an output folder that a worker cannot see (they must share it)."""
    if folder is None:
        return
    blind = [worker for worker, seen in client.run(os.path.isdir, folder).items() if not seen]
    if blind:
        raise ClusterError(f"the Dask workers {', '.join(blind)} cannot see the output folder "
                           f"{folder}: use a folder on a file system that every worker shares, "
                           "at the same path (docs/cluster.md)")


def _on_dask_worker(task, job, stop_name, fast_paths):
    """One job in a Dask worker's thread, with the client's fast-path setting, stopping after
    the step in which the client sets the event ``stop_name`` (read at most every half
    second: each read asks the scheduler)."""
    from distributed import Event

    from ..train import TrainingStopped, stop_when

    event, last = Event(stop_name), {"read": 0.0, "set": False}

    def stopped():
        if time.monotonic() - last["read"] > 0.5:
            last["read"], last["set"] = time.monotonic(), event.is_set()
        return last["set"]
    if stopped():
        raise TrainingStopped("not started: the client stopped the experiment")
    accel.fast_paths(fast_paths)
    with stop_when(stopped):
        return task(*job, progress=False)
