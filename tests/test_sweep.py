"""The depth sweep (``minirect sweep depth``) and the executors it shares with ``reproduce``."""

import json

import pytest

from minirect import cli, models
from minirect.experiments import recipe, report, runner


def _without_time(runs):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in runs]


def test_stage_counts_for_any_depth():
    counts = {d: models.stage_counts(d) for d in (6, 10, 22, 30)}
    assert recipe.make_config("fig3", depth=30).stage_counts == counts[30]
    assert counts == {6: (1, 1, 0), 10: (2, 2, 2), 22: (6, 6, 6), 30: (9, 9, 8)}
    for depth, stages in counts.items():          # conv1 + stage convs + 3 fc = depth
        assert 1 + sum(stages) + 3 == depth


def test_crossover_is_where_xavier_stops_for_good():
    def rows(failed_at):
        return [{"depth": d, "init": "xavier", "seeds": 3, "converged": 0 if d in failed_at else 3}
                for d in (6, 10, 14, 18)]
    assert report.crossover(rows({14, 18})) == 14
    assert report.crossover(rows({10, 18})) == 18          # a lucky 14 moves it deeper
    assert report.crossover(rows(set())) is None


def test_fast_sweep_writes_its_table_and_plot(tmp_path, capsys):
    code = cli.main(["sweep", "depth", "--fast", "--depths", "6", "10", "--workers", "1", "--quiet",
                     "--out", str(tmp_path)])
    assert code == 0
    for name in ("sweep.csv", "sweep.json", "sweep.txt", "sweep.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    result = json.loads((tmp_path / "sweep.json").read_text())
    assert sorted({(r["depth"], r["init"]) for r in result["runs"]}) == [
        (6, "msra"), (6, "xavier"), (10, "msra"), (10, "xavier")]
    # at initialization Xavier's first-layer gradient is far below MSRA's, more so when deeper
    ratios = {int(d): r["measured"] for d, r in result["grad_ratio"].items()}
    assert ratios[10] < ratios[6] < 1
    assert "| depth | init |" in capsys.readouterr().out


def test_sweep_resumes_from_what_finished(tmp_path):
    first = runner.sweep(str(tmp_path), depths=(6,), fast=True, workers=1, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        runner.sweep(str(tmp_path), depths=(6, 8), fast=True, workers=1, progress=False)
    more = runner.sweep(str(tmp_path), depths=(6, 8), fast=True, workers=1, progress=False, resume=True)
    assert _without_time(more["runs"][:2]) == _without_time(first["runs"])
    assert {r["depth"] for r in more["runs"]} == {6, 8}


@pytest.mark.slow
def test_dask_cluster_gives_the_local_results_bit_for_bit(tmp_path):
    """The same tiny sweep on a local Dask cluster (two worker processes of two threads
    each, as Dask runs tasks by default, 127.0.0.1) and in this process: identical
    numbers (CPU, one BLAS thread per run; grad mode, seed and data per thread)."""
    distributed = pytest.importorskip("distributed")
    local = runner.sweep(str(tmp_path / "local"), depths=(6, 8), fast=True, workers=1, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = runner.sweep(str(tmp_path / "dask"), depths=(6, 8), fast=True, progress=False,
                           scheduler=cluster.scheduler_address)
        figure = runner.reproduce("fig3", str(tmp_path / "fig3"), progress=False, fast=True,
                                 scheduler=cluster.scheduler_address)
    assert _without_time(remote["runs"]) == _without_time(local["runs"])
    assert (tmp_path / "dask" / "runs" / "depth8-xavier-seed0" / "checkpoint.npz").exists()
    here = runner.reproduce("fig3", str(tmp_path / "fig3-here"), progress=False, fast=True, workers=1)
    def histories(result):
        return [[{k: v for k, v in row.items() if k != "time"} for row in r["history"]]
                for r in result["runs"]]
    assert histories(figure) == histories(here)
