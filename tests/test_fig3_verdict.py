"""Figure 3's verdict judges what the paper claims: Xavier learns nothing (its
validation loss stays at ln K) and its gradient at initialization vanishes,
while MSRA converges. A flicker of Xavier's error below chance at chance loss
is reported as a flicker, not as learning."""

import math

from minirect.experiments import report

K = 10
LN_K = math.log(K)


def _stats(grad_first, layers=30, decay_ratio=0.1):
    return [{"name": f"layer{i}", "grad_std": grad_first if i == 0 else 5e-3,
             "decay_ratio": decay_ratio} for i in range(layers)]


def _run(init, seed, errors, losses, grad_first, decay_end):
    history = [{"epoch": e + 1, "val_error": err, "val_loss": loss, "train_loss": loss}
               for e, (err, loss) in enumerate(zip(errors, losses))]
    return {"init": init, "seed": seed, "history": history, "evaluations": [], "classes": K,
            "stats_start": _stats(grad_first, decay_ratio=10.0 if init == "xavier" else 0.1),
            "stats_end": _stats(grad_first, decay_ratio=decay_end), "seconds": 1.0}


def _result(xavier_errors, xavier_losses, xavier_grad=1e-9):
    msra = _run("msra", 1, [0.8, 0.5, 0.3, 0.15], [2.0, 1.4, 0.9, 0.5], 3e-5, 10.0)
    xavier = _run("xavier", 1, xavier_errors, xavier_losses, xavier_grad, 10.0)
    result = {"config": {"figure": "fig3"}, "chance_error": 1 - 1 / K, "runs": [msra, xavier]}
    return report.summarize(result)


def test_a_flicker_at_chance_loss_is_not_learning():
    # seed 1 of the CPU run: the error dipped to 0.875 for one epoch, the loss stayed ln K
    summary = _result([0.902, 0.875, 0.902, 0.902], [LN_K * 1.00001, LN_K, LN_K, LN_K])
    verdict = summary["verdict"]
    assert verdict[0].endswith("-> reproduced"), verdict
    assert "flickered to 0.875 at epoch 2" in verdict[1] and "not learning" in verdict[1]
    assert verdict[-1] == report.FIG3_CRITERION
    assert "ln K" in report.FIG3_CRITERION and "gradient" in report.FIG3_CRITERION


def test_an_error_band_kept_says_so():
    verdict = _result([0.902] * 4, [LN_K] * 4)["verdict"]
    assert verdict[0].endswith("-> reproduced") and "stayed within 2 points" in verdict[1]


def test_a_xavier_net_that_learns_is_not_a_stall():
    # the MNIST behaviour: at chance for two epochs, then it learns
    verdict = _result([0.887, 0.887, 0.785, 0.126], [LN_K, LN_K, 1.9, 0.4])["verdict"]
    assert verdict[0].endswith("-> NOT reproduced") and "Xavier learned" in verdict[1]


def test_a_gradient_that_did_not_vanish_fails_the_check():
    verdict = _result([0.902] * 4, [LN_K] * 4, xavier_grad=1e-5)["verdict"]
    assert verdict[0].endswith("-> NOT reproduced")


def test_footnote_2_counts_separate_a_stalled_net_from_a_converged_one():
    # both end with weight decay outweighing the data gradient; only the stalled one started so
    runs = {r["init"]: r for r in _result([0.902] * 4, [LN_K] * 4)["runs"]}
    assert runs["xavier"]["decay_dominated_layers_end"] == runs["msra"]["decay_dominated_layers_end"] == 30
    assert runs["xavier"]["decay_dominated_layers_start"] == 30
    assert runs["msra"]["decay_dominated_layers_start"] == 0
