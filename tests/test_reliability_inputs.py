"""Bad inputs to ops, layers and the optimizer are refused with a message
that names what is wrong and how to fix it (issue 13, item 6)."""

import numpy as np
import pytest

import minirect as mr
import minirect.functional as F
from minirect import nn, optim


def empty_batch():
    return mr.tensor(np.zeros((0, 3, 8, 8), dtype=np.float32))


# ----------------------------------------------------------------------------
# An empty batch
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("op, call", [
    ("conv2d", lambda x: F.conv2d(x, mr.tensor(np.ones((4, 3, 3, 3), dtype=np.float32)))),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2)),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2)),
    ("spp", lambda x: F.spp(x, (2, 1))),
    ("conv2d", lambda x: nn.Conv2d(3, 4, 3)(x)),
])
def test_an_empty_batch_is_refused(op, call):
    with pytest.raises(ValueError, match=rf"{op}: got an empty batch .*at least one sample"):
        call(empty_batch())


def test_cross_entropy_of_an_empty_batch_is_refused():
    logits = mr.tensor(np.zeros((0, 10), dtype=np.float32))
    labels = mr.tensor(np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: got an empty batch"):
        F.softmax_cross_entropy(logits, labels)


# ----------------------------------------------------------------------------
# Layers: checked when they are built, not at the first batch
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("kernel_size", [0, -1, 2.5, (3, 0), (3, -2), (3, 1.5), "3", (3, 3, 3), True])
def test_conv2d_layer_refuses_a_bad_kernel_size_at_construction(kernel_size):
    with pytest.raises(ValueError, match=r"Conv2d: kernel_size must be an int >= 1 or a pair"):
        nn.Conv2d(3, 4, kernel_size)


def test_conv2d_layer_accepts_good_kernel_sizes():
    assert nn.Conv2d(3, 4, 3).kernel_size == (3, 3)
    assert nn.Conv2d(3, 4, (2, 3)).weight.shape == (4, 3, 2, 3)
    assert nn.Conv2d(3, 4, np.int64(7)).kernel_size == (7, 7)


@pytest.mark.parametrize("levels, size", [((7, 3, 2, 1), (6, 6)), ((4, 2, 1), (8, 3))])
def test_spp_refuses_a_level_larger_than_the_map(levels, size):
    x = mr.tensor(np.zeros((2, 3) + size, dtype=np.float32))
    with pytest.raises(ValueError, match=r"spp: level \d+ asks for .* but the map is only "
                                         rf"{size[0]}x{size[1]}; use levels of at most {min(size)}"):
        F.spp(x, levels)
    with pytest.raises(ValueError, match="spp: level"):
        nn.SPP(levels)(x)


def test_spp_accepts_a_level_as_large_as_the_map():
    x = mr.tensor(np.arange(2 * 3 * 16, dtype=np.float32).reshape(2, 3, 4, 4))
    assert F.spp(x, (4, 2, 1)).shape == (2, 3 * 21)


# ----------------------------------------------------------------------------
# SGD
# ----------------------------------------------------------------------------

def model():
    return nn.Sequential(nn.Linear(3, 4), nn.PReLU(4), nn.Linear(4, 2))


def test_sgd_refuses_the_model_itself():
    with pytest.raises(TypeError, match=r"SGD: got the model Sequential itself.*model\.parameters\(\)"):
        optim.SGD(model(), lr=0.1)


def test_sgd_refuses_an_empty_parameter_list():
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)


def test_sgd_refuses_a_parameter_in_two_groups():
    net = model()
    groups = [{"params": list(net.parameters())}, {"params": [net[1].weight], "weight_decay": 0}]
    with pytest.raises(ValueError, match=r"SGD: group 1: a parameter of shape \(4,\) is already in "
                                         "another group"):
        optim.SGD(groups, lr=0.1)
    with pytest.raises(ValueError, match="already in another group"):
        optim.SGD([*net.parameters(), net[0].weight], lr=0.1)         # twice in one list


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_sgd_refuses_momentum_outside_0_1(momentum):
    with pytest.raises(ValueError, match=r"SGD: momentum must be in \[0, 1\)"):
        optim.SGD(model().parameters(), lr=0.1, momentum=momentum)


def test_sgd_refuses_negative_weight_decay():
    with pytest.raises(ValueError, match="SGD: weight decay must be >= 0"):
        optim.SGD(model().parameters(), lr=0.1, weight_decay=-5e-4)
    with pytest.raises(ValueError, match="SGD: weight decay must be >= 0, got nan"):
        optim.SGD(model().parameters(), lr=0.1, weight_decay=float("nan"))


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf"), "0.1", None])
def test_sgd_refuses_a_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="SGD: learning rate must be a finite number > 0"):
        optim.SGD(model().parameters(), lr=lr)


def test_sgd_checks_every_group():
    net = model()
    groups = optim.param_groups(net, 5e-4)
    groups[1]["lr"] = float("inf")
    with pytest.raises(ValueError, match="SGD: group 1: learning rate must be a finite number > 0"):
        optim.SGD(groups, lr=0.1)
    groups[1]["lr"], groups[0]["momentum"] = 0.1, 1.0
    with pytest.raises(ValueError, match=r"SGD: group 0: momentum must be in \[0, 1\)"):
        optim.SGD(groups, lr=0.1)


def test_sgd_accepts_the_papers_settings():
    opt = optim.SGD(optim.param_groups(model(), 5e-4), lr=np.float32(0.01), momentum=0.9)
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0]
