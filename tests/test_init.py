"""Initializers: sample std matches each formula, for conv and linear shapes."""

import math

import numpy as np
import pytest

import minirect as mr
from minirect import init

CONV = (64, 32, 3, 3)      # fan_in = 32·9 = 288, fan_out = 64·9 = 576
LINEAR = (500, 800)        # fan_in = 800, fan_out = 500


def empty(shape):
    return mr.nn.Parameter(np.zeros(shape, dtype=np.float32))


def test_fans():
    assert init.calculate_fans(CONV) == (288, 576)
    assert init.calculate_fans(LINEAR) == (800, 500)
    with pytest.raises(ValueError):
        init.calculate_fans((5,))


CASES = [
    ("gaussian", lambda w: init.gaussian_(w, 0.01), lambda fi, fo: 0.01),
    ("xavier_in", lambda w: init.paper_xavier_normal_(w, "fan_in"), lambda fi, fo: math.sqrt(1 / fi)),
    ("xavier_out", lambda w: init.paper_xavier_normal_(w, "fan_out"), lambda fi, fo: math.sqrt(1 / fo)),
    ("xavier_uniform", lambda w: init.paper_xavier_uniform_(w, "fan_out"),
     lambda fi, fo: math.sqrt(1 / fo)),
    ("glorot_normal", init.glorot_normal_, lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("glorot_uniform", init.glorot_uniform_, lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("msra_in", lambda w: init.msra_normal_(w, mode="fan_in"), lambda fi, fo: math.sqrt(2 / fi)),
    ("msra_out", lambda w: init.msra_normal_(w, mode="fan_out"), lambda fi, fo: math.sqrt(2 / fo)),
    ("msra_prelu", lambda w: init.msra_normal_(w, a=0.25, mode="fan_in"),
     lambda fi, fo: math.sqrt(2 / ((1 + 0.25 ** 2) * fi))),
    ("msra_uniform", lambda w: init.kaiming_uniform_(w, mode="fan_out"), lambda fi, fo: math.sqrt(2 / fo)),
    ("he_alias", lambda w: init.he_normal_(w), lambda fi, fo: math.sqrt(2 / fi)),
]


@pytest.mark.parametrize("shape", [CONV, LINEAR], ids=["conv", "linear"])
@pytest.mark.parametrize("name,fill,formula", CASES, ids=[c[0] for c in CASES])
def test_sample_std_matches_formula(shape, name, fill, formula):
    w = fill(empty(shape))
    fan_in, fan_out = init.calculate_fans(shape)
    expected = formula(fan_in, fan_out)
    values = w.numpy()
    assert w.dtype == np.float32
    assert abs(values.std() / expected - 1) < 0.02
    assert abs(values.mean()) < 0.02 * expected * 5


def test_uniform_bounds():
    w = init.msra_uniform_(empty(LINEAR))
    bound = math.sqrt(3) * math.sqrt(2 / 800)
    assert w.numpy().max() <= bound and w.numpy().min() >= -bound


def test_seeded_init_is_reproducible_and_layers_start_with_zero_bias():
    mr.seed(7)
    a = mr.nn.Conv2d(3, 8, 3)
    mr.seed(7)
    b = mr.nn.Conv2d(3, 8, 3)
    assert np.array_equal(a.weight.numpy(), b.weight.numpy())
    assert not a.bias.numpy().any()


def test_init_by_name_rejects_unknown():
    with pytest.raises(ValueError, match="unknown init scheme"):
        init.init_weight_(empty(LINEAR), "lecun")
    with pytest.raises(ValueError, match="mode must be"):
        init.msra_normal_(empty(LINEAR), mode="avg")


def test_same_initial_weights_on_cpu_and_gpu(xp, device):
    mr.seed(11)
    cpu = mr.nn.Linear(20, 30).weight.numpy()
    mr.seed(11)
    with mr.using(device):
        other = mr.nn.Linear(20, 30)
    assert other.weight.device == device
    assert np.array_equal(cpu, other.weight.numpy())


def test_one_meaning_of_xavier_per_function_name():
    """xavier_* is Glorot's rule (as torch.nn.init names it); the paper's rule
    is paper_xavier_*; the scheme string 'xavier' of init_weight_ (the
    experiments' run names) is the paper's, also spelled 'paper_xavier'."""
    assert init.xavier_normal_ is init.glorot_normal_ and init.xavier_uniform_ is init.glorot_uniform_
    shape = (64, 16, 3, 3)
    for scheme in ("xavier", "paper_xavier"):
        mr.seed(0)
        w = init.init_weight_(mr.tensor(np.zeros(shape, dtype=np.float32)), scheme, mode="fan_in")
        mr.seed(0)
        ref = init.paper_xavier_normal_(mr.tensor(np.zeros(shape, dtype=np.float32)), mode="fan_in")
        assert np.array_equal(w.numpy(), ref.numpy())
    assert init.paper_xavier_std(shape) == pytest.approx((16 * 9) ** -0.5)
