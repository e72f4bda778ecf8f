"""The command line and the reproduction experiments, in their fast settings."""

import csv
import json
import subprocess
import sys

import pytest

import minirect as mr
from minirect import cli, train
from minirect.data.download import DatasetError
from minirect.experiments import recipe, report, runner


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "minirect", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "reproduce" in out.stdout and "train" in out.stdout


def test_train_smoke_on_embedded_digits(tmp_path, capsys):
    code = cli.main(["train", "--model", "model_b", "--width", "4", "4", "8", "8", "--fc-width", "16",
                     "--epochs", "1", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "final validation error" in out and str(tmp_path) in out
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["epochs"]) == 1 and 0 <= history["epochs"][0]["val_error"] <= 1
    assert (tmp_path / "checkpoint.npz").exists()
    # resume with more epochs continues from the checkpoint
    cli.main(["train", "--model", "model_b", "--width", "4", "4", "8", "8", "--fc-width", "16",
              "--epochs", "2", "--out", str(tmp_path), "--quiet", "--resume"])
    history = json.loads((tmp_path / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]


def test_reproduce_fast_writes_plots_and_summary(tmp_path):
    result = runner.reproduce("fig3", str(tmp_path), progress=False, fast=True)
    for name in ("curves.png", "layers.png", "history.csv", "summary.txt", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    text = (tmp_path / "summary.txt").read_text()
    assert "30-layer plain net on digits" in text and "chance error: 0.900" in text
    # how the runs computed is on record, in both summaries
    on = mr.accel.enabled()
    assert json.loads((tmp_path / "summary.json").read_text())["fast_paths"] is on
    assert f"fast paths {'on' if on else 'off'}" in text.splitlines()[0]
    assert "fast paths off" in report.summary_text(dict(result, fast_paths=False)).splitlines()[0]
    inits = sorted(r["init"] for r in result["summary"]["runs"])
    assert inits == ["msra", "xavier"]
    # the diagnostics saw the paper's signal story at initialization:
    # Xavier's response shrinks far more across the net than MSRA's
    start = {r["init"]: r["stats_start"] for r in result["runs"]}
    shrink = {k: s[26]["response_std"] / s[0]["response_std"] for k, s in start.items()}
    assert shrink["xavier"] < shrink["msra"] / 100


def test_reproduce_cli_options(tmp_path, capsys):
    code = cli.main(["reproduce", "fig2", "--fast", "--epochs", "1", "--seeds", "3", "--out",
                     str(tmp_path), "--quiet"])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["depth"] == 22 and summary["config"]["seeds"] == [3]
    assert "results in" in capsys.readouterr().out


def test_interrupted_reproduction_resumes_to_the_same_result(tmp_path, monkeypatch):
    """Each run checkpoints every epoch; --resume after a 1-epoch stop gives
    the same 2-epoch curves as an uninterrupted run (CPU: bit-exact)."""
    common = ["reproduce", "fig3", "--fast", "--seeds", "0", "--workers", "1", "--quiet"]
    assert cli.main(common + ["--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert cli.main(common + ["--epochs", "1", "--out", str(tmp_path / "cut")]) == 0
    for init in ("msra", "xavier"):
        assert (tmp_path / "cut" / "runs" / f"{init}-seed0" / "checkpoint.npz").exists()
    trained = []                       # epochs trained by the resumed call
    one_epoch = train.train_one_epoch
    monkeypatch.setattr(train, "train_one_epoch",
                        lambda *a, **k: trained.append(a[3]) or one_epoch(*a, **k))
    assert cli.main(common + ["--epochs", "2", "--out", str(tmp_path / "cut"), "--resume"]) == 0
    assert trained == [2, 2]           # only the missing epoch, for each init
    straight, resumed = ([{k: v for k, v in row.items() if k != "time"}
                          for row in csv.DictReader(open(tmp_path / name / "history.csv"))]
                         for name in ("straight", "cut"))
    assert len(straight) == 4 and straight == resumed       # 2 inits × 2 epochs


def test_evaluations_within_epochs_drive_the_summary(tmp_path):
    """With evals_per_epoch > 1 (the full setting's 10) the curves, the CSV and
    the 'first epoch below' criteria use the fractional-epoch evaluations."""
    result = runner.reproduce("fig2", str(tmp_path), progress=False, fast=True, workers=1,
                             evals_per_epoch=2)
    rows = list(csv.DictReader(open(tmp_path / "evaluations.csv")))
    assert [float(r["epoch"]) for r in rows if r["init"] == "msra"] == [0.5, 1, 1.5, 2]
    for run, summary in zip(result["runs"], result["summary"]["runs"]):
        curve = report.validation_curve(run)
        assert summary["final_error"] == curve[-1][1]
        assert summary["epoch_below_final_plus_10"] == next(
            e for e, err in curve if err < curve[-1][1] + 0.10)
    assert recipe.FULL["fig2"].evals_per_epoch == 10


def test_missing_dataset_gives_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)        # the default --out (runs/fig3) lands here
    code = cli.main(["reproduce", "fig3", "--fast", "--dataset", "mnist", "--data-root",
                     str(tmp_path), "--workers", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in err and "--download" in err


def test_reproduce_passes_data_root_and_download_to_the_loader(tmp_path, monkeypatch):
    seen = []

    def fake_load(name, split, root=None, download=False):
        seen.append((name, root, download))
        raise DatasetError("stop here")

    monkeypatch.setattr(recipe.data, "load_dataset", fake_load)
    monkeypatch.chdir(tmp_path)        # the default --out (runs/fig3) lands here
    code = cli.main(["reproduce", "fig3", "--fast", "--dataset", "mnist", "--data-root",
                     str(tmp_path), "--download", "--workers", "1", "--quiet"])
    assert code == 1 and seen == [("mnist", str(tmp_path), True)]


def test_unknown_dataset_is_rejected():
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "fig3", "--dataset", "imagenet"])


def test_full_setting_evaluates_ten_times_per_epoch():
    """MNIST: 938 batches of 64; 10 evaluations per epoch, the epoch's end included."""
    every = recipe.eval_interval(938, 10)
    assert len(range(every, 938, every)) + 1 == 10
    assert recipe.eval_interval(938, 1) == 0


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    def histories(workers):
        result = runner.reproduce("fig3", str(tmp_path / str(workers)), progress=False, fast=True,
                                 workers=workers, epochs=1, seeds=(0,))
        return [[{k: v for k, v in row.items() if k != "time"} for row in r["history"]]
                for r in result["runs"]]
    assert histories(1) == histories(2)


def test_reproduce_one_init_only(tmp_path):
    """--inits xavier trains one side (e.g. for longer, as the paper's 'even given more epochs')."""
    assert cli.main(["reproduce", "fig3", "--fast", "--inits", "xavier", "--workers", "1", "--quiet",
                     "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [r["init"] for r in summary["summary"]["runs"]] == ["xavier"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["xavier-seed0"]


def test_reproduce_and_train_say_which_fast_paths_ran(tmp_path, capsys):
    import minirect
    with minirect.fast_paths(True):           # on, whatever MINIRECT_FAST_PATHS says
        assert cli.main(["reproduce", "fig3", "--fast", "--workers", "1", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "fast paths: on; ran: conv2d" in out
    with minirect.fast_paths(False):
        assert cli.main(["train", "--epochs", "1", "--width", "4", "4", "8", "8", "--fc-width", "16",
                         "--out", str(tmp_path / "t"), "--quiet"]) == 0
    assert "fast paths: off" in capsys.readouterr().out
