"""Tables 1 and 2 (``minirect reproduce table2``): the pairing by seed, the statistics
against hand computations, the report, the command line, determinism and resume."""

import csv
import json
import math

import numpy as np
import pytest

from minirect import backend, cli, nn, runs, train
from minirect.experiments import recipe, report, runner, stats

# Student's t 0.975 quantiles, from printed tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2)
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 19: 2.093,
         29: 2.045, 30: 2.042}


@pytest.mark.parametrize("df", sorted(T_975))
def test_t_quantile_matches_the_printed_table(df):
    assert stats.t_quantile(0.975, df) == pytest.approx(T_975[df], abs=6e-4)
    assert stats.t_quantile(0.025, df) == pytest.approx(-T_975[df], abs=6e-4)


def test_t_cdf_closed_forms():
    """df 1 is Cauchy: 1/2 + atan(t)/π; df 2: 1/2 + t / (2 sqrt(2 + t²)); the 0.95 quantile
    at 9 df is 1.833 (printed tables)."""
    for t in (-3.0, -0.5, 0.0, 0.7, 4.0):
        assert stats.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-14)
        assert stats.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-14)
    assert stats.t_quantile(0.95, 9) == pytest.approx(1.833, abs=6e-4)
    with pytest.raises(ValueError):
        stats.t_cdf(1.0, 2.5)


def test_paired_t_interval_by_hand():
    """Differences 1, 2, 3, 4: mean 2.5, sd sqrt(5/3), se sqrt(5/3)/2, t(0.975, 3) = 3.1824;
    interval 2.5 ± 3.18245 · 0.64550 = [0.44574, 4.55426]."""
    a, b = [11.0, 12.0, 13.0, 14.0], [10.0, 10.0, 10.0, 10.0]
    ci = stats.paired_t_interval(a, b)
    assert ci["mean"] == pytest.approx(2.5)
    assert ci["sd"] == pytest.approx(math.sqrt(5 / 3))
    assert ci["df"] == 3 and ci["t"] == pytest.approx(3.182446, abs=1e-6)
    assert (ci["low"], ci["high"]) == (pytest.approx(0.44574, abs=1e-5), pytest.approx(4.55426, abs=1e-5))
    assert stats.excludes_zero(ci)
    assert not stats.excludes_zero(stats.paired_t_interval([1.0, -1.0, 2.0], [0.0, 0.0, 0.0]))
    with pytest.raises(ValueError):
        stats.paired_t_interval([1.0, 2.0], [1.0])


def test_bootstrap_interval_is_reproducible_and_inside_the_data():
    a, b = [0.05, 0.07, 0.04, 0.06, 0.08], [0.07, 0.07, 0.06, 0.09, 0.08]
    first, again = stats.bootstrap_interval(a, b), stats.bootstrap_interval(a, b)
    assert first == again
    d = [x - y for x, y in zip(a, b)]
    assert min(d) <= first["low"] <= first["mean"] <= first["high"] <= max(d)
    flat = stats.bootstrap_interval([1.0] * 4, [0.5] * 4)
    assert flat["low"] == flat["high"] == 0.5


def _nets(config, seed):
    """The three nets of one seed, each built as ``runner.prelu_run`` builds it, and the
    generator's state after each build."""
    nets, states = {}, {}
    for activation in config.activations:
        backend.seed(seed)
        nets[activation] = recipe.build_model(config, "msra", 10, 1, 8, activation=activation)
        states[activation] = backend.get_rng_state()
    return nets, states


def test_paired_nets_share_their_draws_scaled_by_eq_15():
    """Same seed: the same random stream for every rectifier (the generator ends in the same
    state, so dropout masks are paired too), each weight the same draw times its own net's
    Eq.-15 std: PReLU's are ReLU's × 1/sqrt(1 + 0.25²), except the last fc layer (no
    rectifier after it: a = 0 in both)."""
    config = recipe.make_config("table2", fast=True)
    nets, states = _nets(config, seed=3)
    assert states["relu"] == states["prelu"] == states["prelu-shared"]
    relu = [p.numpy() for p in nets["relu"].parameters()]
    factor = 1.0 / math.sqrt(1.0 + 0.25 ** 2)
    for activation in ("prelu", "prelu-shared"):
        layers = [m for m in nets[activation].modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        relu_layers = [m for m in nets["relu"].modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert len(layers) == len(relu_layers) == 14
        for i, (mine, theirs) in enumerate(zip(layers, relu_layers)):
            expected = theirs.weight.numpy() * (1.0 if i == len(layers) - 1 else factor)
            np.testing.assert_allclose(mine.weight.numpy(), expected, rtol=1e-6, atol=0)
            assert not mine.bias.numpy().any()
        coefficients = [m.weight.numpy() for m in nets[activation].modules() if isinstance(m, nn.PReLU)]
        assert len(coefficients) == 13 and all((c == 0.25).all() for c in coefficients)
    assert len(relu) == 28          # weights and biases of 11 convs and 3 fc layers
    other, _ = _nets(config, seed=4)
    assert not np.array_equal(other["relu"][0].weight.numpy(), nets["relu"][0].weight.numpy())


def _fake_run(activation, seed, error, coefficients=None):
    return {"activation": activation, "seed": seed, "seconds": 1.0, "initial_error": 0.9,
            "history": [{"epoch": 1, "val_error": 0.5}, {"epoch": 2, "val_error": error}],
            "layer_names": list(report.TABLE1_LAYERS), "coefficients": coefficients or []}


def test_tables_summary_on_hand_made_runs():
    """Errors, paired differences and the patterns from runs whose numbers we choose."""
    relu = [0.10, 0.12, 0.08, 0.11]
    wise = [0.07, 0.10, 0.07, 0.08]             # lower in every seed: d = -3, -2, -1, -3 points
    paper = list(report.PAPER_TABLE1["prelu-shared"])
    runs_ = []
    for s in range(4):
        runs_ += [_fake_run("relu", s, relu[s]),
                  _fake_run("prelu-shared", s, relu[s], [[a] for a in paper]),
                  _fake_run("prelu", s, wise[s], [[a, a] for a in [0.25] * 13])]
    # a fifth seed whose channel-wise run diverged: the whole seed is left out, and named
    runs_ += [_fake_run("relu", 4, 0.5), _fake_run("prelu-shared", 4, 0.5, [[a] for a in paper]),
              {**_fake_run("prelu", 4, 0.9), "history": [], "diverged": "the loss became nan"}]
    config = {"activations": ["relu", "prelu-shared", "prelu"]}
    summary = report.tables_summary({"config": config, "runs": runs_})
    assert summary["seeds"] == [0, 1, 2, 3]
    assert summary["diverged"] == [{"activation": "prelu", "seed": 4,
                                    "message": "the loss became nan"}]
    by = {r["activation"]: r for r in summary["table2"]}
    assert by["relu"]["mean"] == pytest.approx(0.1025)
    wise_vs_relu = next(c for c in summary["comparisons"] if (c["a"], c["b"]) == ("prelu", "relu"))
    d = [-0.03, -0.02, -0.01, -0.03]
    se = np.std(d, ddof=1) / 2
    assert wise_vs_relu["t"]["mean"] == pytest.approx(-0.0225)
    assert wise_vs_relu["t"]["low"] == pytest.approx(-0.0225 - 3.182446 * se, abs=1e-7)
    assert wise_vs_relu["excludes_zero"] and "helps" in wise_vs_relu["verdict"]
    assert wise_vs_relu["lower_in"] == 4
    shared_vs_relu = next(c for c in summary["comparisons"] if c["a"] == "prelu-shared")
    assert not shared_vs_relu["excludes_zero"]         # all differences 0: [0, 0]
    assert "not resolved at 4 seeds" in shared_vs_relu["verdict"]
    # Table 1 with the paper's own coefficients in every seed: every pattern holds
    shared = summary["patterns"]["prelu-shared"]
    assert [p["verdict"] for p in shared] == ["holds"] * 4
    assert summary["table1"]["prelu-shared"][0]["mean"] == pytest.approx(0.681)
    # all coefficients at 0.25: no contrast anywhere (conv1 and the stages equal), fc not below
    assert {p["verdict"] for p in summary["patterns"]["prelu"]} == {"mixed"}


def test_pattern_contrasts_of_the_paper():
    """On the paper's own Table 1 the four contrasts are positive (shared and channel-wise)."""
    for a in ("prelu-shared", "prelu"):
        contrasts = report.pattern_contrasts(report.TABLE1_LAYERS, report.PAPER_TABLE1[a])
        assert all(c > 0 for c in contrasts), (a, contrasts)
    shared = report.pattern_contrasts(report.TABLE1_LAYERS, report.PAPER_TABLE1["prelu-shared"])
    assert shared[0] == pytest.approx(0.681 - np.mean(report.PAPER_TABLE1["prelu-shared"][1:11]))


def test_reproduce_table2_fast_cli(tmp_path, capsys):
    out = tmp_path / "t2"
    assert cli.main(["reproduce", "table2", "--fast", "--workers", "1", "--quiet",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PReLU, channel-wise vs ReLU:" in printed and "95 % paired t" in printed
    assert "large conv1:" in printed and "results in" in printed
    for name in ("summary.txt", "summary.json", "history.csv", "curves.png", "coefficients.png"):
        assert (out / name).exists(), name
    for activation in ("relu", "prelu-shared", "prelu"):
        assert (out / "runs" / f"{activation}-seed2" / "checkpoint.npz").exists()
    saved = json.loads((out / "summary.json").read_text())
    assert len(saved["runs"]) == 9 and len(saved["summary"]["table1"]["prelu"]) == 13
    # refused: a second run over it, and the options that are fig2/fig3's
    assert cli.main(["reproduce", "table2", "--fast", "--quiet", "--out", str(out)]) == 2
    for extra in (["--width", "1", "2", "3", "4"], ["--inits", "msra"], ["--seeds", "0"]):
        with pytest.raises(SystemExit):
            cli.main(["reproduce", "table2", "--fast", *extra])


def test_table2_is_deterministic_and_resumes_to_the_same_result(tmp_path, monkeypatch):
    """Same seeds, another worker count: bit-identical errors and coefficients. A run cut
    after its first seed and resumed with all seeds trains only the missing runs and ends
    equal to the uninterrupted one."""
    def outcome(result):
        return [(r["activation"], r["seed"], [row["val_error"] for row in r["history"]],
                 r["coefficients"]) for r in result["runs"]]
    common = dict(progress=False, fast=True, epochs=1)
    straight = runner.reproduce("table2", str(tmp_path / "a"), workers=1, seeds=(0, 1), **common)
    assert outcome(straight) == outcome(
        runner.reproduce("table2", str(tmp_path / "b"), workers=2, seeds=(0, 1), **common))
    with pytest.raises(ValueError, match="at least two seeds"):
        runner.reproduce("table2", str(tmp_path / "c"), workers=1, seeds=(0,), **common)
    # the cut: only seed 0's runs exist (as if stopped after them)
    first = runner.prelu_run
    calls = []
    monkeypatch.setattr(runner, "prelu_run", lambda c, a, s, *rest, **kw:
                        calls.append((a, s)) or first(c, a, s, *rest, **kw))
    for activation in ("relu", "prelu-shared", "prelu"):
        config = recipe.make_config("table2", fast=True, epochs=1, seeds=(0, 1))
        first(config, activation, 0, str(tmp_path / "cut" / "runs" / f"{activation}-seed0"))
    runs.write_config(str(tmp_path / "cut"), json.loads((tmp_path / "a" / "config.json").read_text()))
    trained = []
    one_epoch = train.train_one_epoch
    monkeypatch.setattr(train, "train_one_epoch",
                        lambda *a, **k: trained.append(a[3]) or one_epoch(*a, **k))
    resumed = runner.reproduce("table2", str(tmp_path / "cut"), workers=1, seeds=(0, 1),
                               resume=True, **common)
    assert len(trained) == 3                   # seed 1's three runs; seed 0's only reloaded
    assert outcome(resumed) == outcome(straight)
    rows = list(csv.DictReader(open(tmp_path / "cut" / "history.csv")))
    assert len(rows) == 6


def test_a_diverged_run_is_reported_not_fatal(tmp_path, monkeypatch):
    """One run's loss blows up: the experiment finishes, says so, and compares the other seeds."""
    fit = runner.fit

    def fit_or_blow_up(model, *args, **kw):
        if kw["out_dir"].endswith("prelu-seed1"):
            raise train.TrainingDiverged("the loss became nan at epoch 1")
        return fit(model, *args, **kw)
    monkeypatch.setattr(runner, "fit", fit_or_blow_up)
    result = runner.reproduce("table2", str(tmp_path), progress=False, fast=True, workers=1,
                              epochs=1)
    assert result["summary"]["seeds"] == [0, 2]
    assert [(d["activation"], d["seed"]) for d in result["summary"]["diverged"]] == [("prelu", 1)]
    assert "DIVERGED" in (tmp_path / "summary.txt").read_text()
