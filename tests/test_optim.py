"""SGD (Eq. 4 form), parameter groups and learning-rate schedules."""

import numpy as np
import pytest

import minirect as mr
from minirect import nn, optim


def param(values, xp=np):
    return nn.Parameter(xp.asarray(values, dtype=xp.float64))


def test_sgd_steps_by_hand(xp):
    w = param([1.0, -2.0], xp)
    opt = optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01)
    grads = [[0.5, 0.5], [1.0, -1.0], [0.0, 2.0]]
    w_ref, v_ref = np.array([1.0, -2.0]), np.zeros(2)
    for g in grads:
        w.grad = xp.asarray(g, dtype=xp.float64)
        opt.step()
        v_ref = 0.9 * v_ref + 0.1 * (np.array(g) + 0.01 * w_ref)     # v ← μv + ε(g + λw)
        w_ref = w_ref - v_ref                                          # w ← w − v
    assert np.allclose(w.numpy(), w_ref, atol=1e-12)
    # the first step, written out: v = 0.1·(0.5 + 0.01·1) = 0.051 → w = 0.949
    assert w_ref[0] != 1.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sgd_step_matches_the_formula(xp, dtype):
    """SGD.step (one fused kernel on a GPU with fast paths on) against Eq. 4
    in float64 NumPy, over a few steps; w and v keep their dtype."""
    rng = np.random.default_rng(0)
    w_ref, v_ref = rng.standard_normal(1000), np.zeros(1000)
    w = nn.Parameter(xp.asarray(w_ref, dtype=getattr(xp, dtype)))
    opt = optim.SGD([w], lr=0.05, momentum=0.9, weight_decay=5e-4)
    for _ in range(4):
        g_ref = rng.standard_normal(1000)
        w.grad = xp.asarray(g_ref, dtype=getattr(xp, dtype))
        opt.step()
        v_ref = 0.9 * v_ref + 0.05 * (g_ref + 5e-4 * w_ref)
        w_ref = w_ref - v_ref
    v = opt.velocity[id(w)]
    assert w.dtype == mr.backend.dtype(v.dtype) == np.dtype(dtype)
    tolerance = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(w.numpy(), w_ref, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(mr.backend.to_numpy(v), v_ref, rtol=tolerance, atol=tolerance)


def test_first_step_value():
    w = param([1.0])
    opt = optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01)
    w.grad = np.array([0.5])
    opt.step()
    assert w.numpy()[0] == pytest.approx(1.0 - 0.1 * (0.5 + 0.01))


def test_nesterov_and_plain():
    w = param([1.0])
    opt = optim.SGD([w], lr=0.1)
    w.grad = np.array([2.0])
    opt.step()
    assert w.numpy()[0] == pytest.approx(0.8)
    w = param([1.0])
    opt = optim.SGD([w], lr=0.1, momentum=0.5, nesterov=True)
    w.grad = np.array([2.0])
    opt.step()                    # v = 0.2; w ← w − (0.5·0.2 + 0.2)
    assert w.numpy()[0] == pytest.approx(0.7)


def test_param_groups_skip_decay_on_prelu():
    model = nn.Sequential(nn.Linear(3, 4), nn.PReLU(4), nn.Linear(4, 2))
    groups = optim.param_groups(model, weight_decay=0.5)
    prelu = model[1].weight
    assert [g["weight_decay"] for g in groups] == [0.5, 0.0]
    assert groups[1]["params"] == [prelu]
    opt = optim.SGD(groups, lr=1.0)
    for p in model.parameters():
        p.grad = p.xp.zeros_like(p.data)
    before = {id(p): p.numpy().copy() for p in model.parameters()}
    opt.step()
    assert np.array_equal(prelu.numpy(), before[id(prelu)])       # zero gradient, no decay
    w = model[0].weight
    assert np.allclose(w.numpy(), before[id(w)] * 0.5)            # decayed: w − 1·0.5·w
    with_bias = optim.param_groups(model, 0.5, no_decay_bias=True)
    assert len(with_bias[1]["params"]) == 3


def test_momentum_state_survives_state_dict_round_trip(tmp_path):
    def run(split):
        mr.seed(0)
        model = nn.Linear(3, 2)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x = mr.tensor(np.ones((4, 3), dtype=np.float32))
        for step in range(4):
            if step == split:
                state = opt.state_dict()
                weights = model.state_dict()
                mr.seed(0)
                model = nn.Linear(3, 2)
                model.load_state_dict(weights)
                opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
                opt.load_state_dict(state)
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()
        return model.weight.numpy()
    assert np.array_equal(run(split=None), run(split=2))


def test_optimizer_state_follows_parameter_device(xp, device):
    w = param([1.0, 2.0])
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = np.ones(2)
    opt.step()
    w.data, w.grad = mr.backend.to_device(w.data, device), xp.ones(2)
    opt.step()
    assert mr.backend.device_of(opt.velocity[id(w)]) == device


def test_step_and_multistep_schedules():
    w = param([1.0])
    opt = optim.SGD([w], lr=0.1)
    sched = optim.StepLR(opt, step_size=2)
    lrs = []
    for _ in range(5):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.01, 0.01, 0.001, 0.001])
    opt = optim.SGD([w], lr=1.0)
    sched = optim.MultiStepLR(opt, milestones=[1, 3])
    lrs = []
    for _ in range(4):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01])


def test_reduce_on_plateau_divides_by_ten():
    w = param([1.0])
    opt = optim.SGD([w], lr=0.01)
    sched = optim.ReduceLROnPlateau(opt, patience=1)
    for err in [0.5, 0.4, 0.4, 0.4]:
        sched.step(err)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)
    state = sched.state_dict()
    opt2 = optim.SGD([w], lr=0.01)
    sched2 = optim.ReduceLROnPlateau(opt2, patience=1)
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.001)


def test_plateau_min_lr_survives_resume():
    w = param([1.0])
    opt = optim.SGD([w], lr=0.5)
    sched = optim.ReduceLROnPlateau(opt, patience=0, min_lr=0.05)
    for err in [0.5, 0.5, 0.5, 0.5]:
        sched.step(err)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    opt2 = optim.SGD([w], lr=0.5)
    sched2 = optim.ReduceLROnPlateau(opt2, patience=0, min_lr=0.05)
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05)
