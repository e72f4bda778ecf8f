"""Where the runs of an experiment execute: here, in local processes, or on a Dask cluster.

An experiment (``reproduce``, ``sweep depth``) is a list of independent runs,
one per (init, seed[, depth]). ``run_jobs(task, jobs, ...)`` calls
``task(*job, progress=..., report=...)`` for each job and returns the results
in the order of ``jobs``, wherever they ran:

* ``workers=1``: one after the other in this process (progress bars per epoch);
* ``workers=N``: ``N`` local processes (``concurrent.futures.ProcessPoolExecutor``,
  spawned); one progress bar over the epochs of all runs. Ctrl-C or the death
  of this process (even ``kill -9``) stops every worker at once;
* ``scheduler="tcp://HOST:PORT"``: a Dask distributed cluster. Dask's
  ``Client`` is a ``concurrent.futures``-style executor; the workers must
  share the output folder (a network file system) and have minirect
  installed. ``pip install -e ".[cluster]"``; docs/cluster.md says how to
  start a scheduler and workers.

Each run writes its own checkpoint after every epoch, so an interrupted
experiment resumes (``resume=True``) from what finished, on any executor.
The task must be a module-level function (it is pickled to the workers).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time


def run_jobs(task, jobs, epochs_per_job, workers=None, scheduler=None, progress=True) -> list:
    """Run ``task(*job)`` for every job; the results in the order of ``jobs``."""
    if scheduler:
        return _run_on_dask(task, jobs, scheduler, progress)
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

    context = multiprocessing.get_context("spawn")
    messages = context.SimpleQueue()
    lifeline, parent_end = context.Pipe(duplex=False)
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_start, initargs=(messages, lifeline))
    try:
        futures = [pool.submit(_in_worker, task, job) for job in jobs]
        _follow(futures, messages, total_epochs, progress)
        return [future.result() for future in futures]
    finally:       # normal end, an error or Ctrl-C: no run may go on without us
        parent_end.close()          # every worker's lifeline ends: they exit
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_start(messages, lifeline):
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
    def report(label, epoch, row):
        _messages.put((label, epoch, row.get("val_error")))
    return task(*job, progress=False, report=report)


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

def _run_on_dask(task, jobs, scheduler, progress):
    """Submit every job to the cluster at ``scheduler``; a bar counts finished runs."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ImportError("--scheduler needs Dask's distributed package: "
                          "pip install -e \".[cluster]\"") from None
    from tqdm.auto import tqdm

    with Client(scheduler) as client:
        futures = [client.submit(task, *job, progress=False, pure=False) for job in jobs]
        bar = tqdm(total=len(futures), desc=f"runs on {scheduler}", disable=not progress)
        try:
            for _ in as_completed(futures):
                bar.update(1)
            return client.gather(futures)
        finally:              # an error or Ctrl-C: the cluster drops what is left
            bar.close()
            client.cancel(futures)
