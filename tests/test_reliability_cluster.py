"""Dask runs obey Ctrl-C and the output folder (issue 23, item 4).

After Ctrl-C on the client nothing writes into the output folder any more
(the runs read a stop flag after every step, and the client waits for them
before it releases the lock); a relative ``--out`` means the client's folder,
not each worker's; a folder the workers cannot see is refused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minirect.experiments import executors, runner

distributed = pytest.importorskip("distributed")


def _files(folder) -> dict:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in Path(folder).rglob("*") if p.is_file()}


@pytest.mark.slow
def test_ctrl_c_stops_the_runs_on_the_cluster_and_out_is_the_clients(tmp_path, monkeypatch):
    workers_home, client_home = tmp_path / "workers", tmp_path / "client"
    workers_home.mkdir()
    client_home.mkdir()
    monkeypatch.chdir(workers_home)             # the workers start in another folder
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        monkeypatch.chdir(client_home)
        runner.reproduce("fig3", "rel", progress=False, fast=True, epochs=1,
                         scheduler=cluster.scheduler_address)
        assert (client_home / "rel" / "runs" / "msra-seed0" / "checkpoint.npz").exists()
        assert not (workers_home / "rel").exists(), "a worker wrote into its own folder"

        out = tmp_path / "long"
        env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "minirect", "reproduce", "fig3", "--fast", "--epochs", "300",
             "--quiet", "--scheduler", cluster.scheduler_address, "--out", str(out)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            deadline = time.time() + 120
            while time.time() < deadline and len(list(out.glob("runs/*/checkpoint.npz"))) < 2:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.2)
            os.killpg(proc.pid, signal.SIGINT)              # Ctrl-C in the client's terminal
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        err = proc.stderr.read()
        assert code == 130 and "--resume" in err and "Traceback" not in err, err
        assert not (out / ".lock").exists()
        before = _files(out)
        time.sleep(3)                              # several epochs' time: nothing may change
        assert _files(out) == before, "a run went on writing after Ctrl-C"


class _Client:
    """Just enough of a Dask client: each worker answers whether it sees a folder."""

    def __init__(self, seen):
        self.seen = seen

    def run(self, function, folder):
        return {worker: seen for worker, seen in self.seen.items()}


def test_a_folder_the_workers_cannot_see_is_refused():
    executors._check_shared(_Client({"tcp://a:1": True, "tcp://b:2": True}), "/shared/out")
    with pytest.raises(executors.ClusterError, match="tcp://b:2 cannot see the output folder"):
        executors._check_shared(_Client({"tcp://a:1": True, "tcp://b:2": False}), "/shared/out")


@pytest.mark.parametrize("address", ["", "not a url", "http://127.0.0.1:8787", "tcp://host",
                                     "tcp://:8786"])
def test_scheduler_addresses_that_cannot_be_right_are_refused(address):
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        executors.scheduler_address(address)


def test_scheduler_addresses_dask_takes():
    for address in ("tcp://127.0.0.1:8786", "tls://scheduler.example:8786", "10.0.0.1:8786"):
        assert executors.scheduler_address(address) == address


def _dies(*job, progress=False, on_epoch=None):
    os._exit(1)          # as a worker killed by the kernel for memory


@pytest.mark.slow
def test_a_run_that_kills_its_workers_gives_a_message_naming_resume(tmp_path):
    import dask
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None) as cluster:
        with pytest.raises(executors.ClusterError, match="--resume"):
            executors.run_jobs(_dies, [()], [1], scheduler=cluster.scheduler_address,
                               progress=False)
