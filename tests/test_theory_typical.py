"""The typical net at finite width: ``theory.finite_width_stds`` against 64 seeds
of the default Figure 2 and 3 nets at initialization (MSRA; Xavier draws the
same normal numbers times a constant per layer, so its log spread is the same).

Measured per seed with ``diagnostics.layer_statistics`` on seed 0's first batch
(the spread across seeds comes from the weights: with a batch per seed it is
the same within 0.01); predicted once, from seed 0's net and that batch."""

import math

import numpy as np
import pytest

import minirect
from minirect import diagnostics, theory
from minirect.experiments import recipe

SEEDS = range(64)
BAR = 1.5


def _measure(figure):
    config = recipe.make_config(figure)
    train, _, classes, channels, size = recipe.load_data(config)
    train.load_state_dict({"seed": 0, "epoch": 0, "batch": 0})
    x, y = next(iter(train))
    logs = {"response": [], "grad": []}
    for seed in SEEDS:
        minirect.seed(seed)
        model = recipe.build_model(config, "msra", classes, channels, size)
        stats = diagnostics.layer_statistics(model, x, y)
        logs["response"].append([math.log(s["response_std"]) for s in stats])
        logs["grad"].append([math.log(s["grad_std"] / stats[-1]["grad_std"]) for s in stats])
        if seed == 0:
            predicted = theory.finite_width_stds(model, x, y)
    measured = {}
    for key, rows in logs.items():
        rows = np.array(rows)
        measured[f"{key}_median"] = np.exp(np.median(rows, axis=0))
        measured[f"{key}_spread"] = rows.std(axis=0, ddof=1)
    return measured, {k: np.array(v) for k, v in predicted.items()}


@pytest.fixture(scope="module", params=["fig2", "fig3"])
def typical(request):
    with minirect.fast_paths(True):
        return (request.param, *_measure(request.param))


def _worst(ratio):
    return float(np.exp(np.max(np.abs(np.log(ratio)))))


def test_median_within_1_5x_at_every_layer(typical):
    figure, measured, predicted = typical
    assert _worst(measured["response_median"] / predicted["response_median"]) < BAR, figure
    assert _worst(measured["grad_median"] / predicted["grad_median"]) < BAR, figure


def test_spread_of_log_std_within_1_5x_at_every_layer(typical):
    figure, measured, predicted = typical
    assert _worst(measured["response_spread"] / predicted["response_spread"]) < BAR, figure
    # the last layer's gradient ratio is 1 by definition: no spread to compare
    assert _worst(measured["grad_spread"][:-1] / predicted["grad_spread"][:-1]) < BAR, figure
    assert predicted["grad_spread"][-1] == 0.0


def test_typical_seed_sits_below_the_mean(typical):
    """The point of the exercise: at depth a typical seed is well below √E[Var]."""
    figure, measured, predicted = typical
    assert measured["response_median"][-1] / predicted["rms_response"][-1] < 0.7
    assert predicted["response_median"][-1] / predicted["rms_response"][-1] < 0.7


def test_small_logits_give_the_uniform_softmax_moments():
    """Assumption 4's limit: logits ≈ 0, so g = 1/K − onehot: |g|² = 1 − 1/K,
    g·g' = 1 − 1/K (same label) or −1/K (different)."""
    within, cross = theory.logit_gradient_moments(np.full((2, 2), 1e-12), 10, 0.1)
    assert within == pytest.approx(0.9, rel=1e-6)
    assert cross == pytest.approx(math.sqrt(0.1 * 0.81 + 0.9 * 0.01), rel=1e-6)


def test_wide_fully_connected_relu_net_gives_hanin_nica_5_over_n():
    """Hanin & Nica's limit: identical images (each unit all-or-nothing over the
    batch), n i.i.d. units per layer. y = Wx alone varies by 2/n (Var[z²]/E[z²]² = 2),
    each ReLU layer below it adds (3/2 − 1/4)/(1/4)/n = 5/n."""
    n, depth = 64, 6
    minirect.seed(0)
    layers = []
    for _ in range(depth):
        layers += [minirect.nn.Linear(n, n, bias=False), minirect.nn.ReLU()]
    model = minirect.nn.Sequential(*layers[:-1])
    x = np.ones((4, n), dtype="float32")                      # four identical images
    s2 = 4 * np.array(theory.finite_width_stds(model, x, pairs=2)["response_spread"]) ** 2
    # layer 1: y = Wx, n Gaussian units fully correlated over the batch: 2/n; then 5/n per ReLU layer
    assert s2 == pytest.approx([2 / n + 5 / n * k for k in range(depth)], rel=0.02)
