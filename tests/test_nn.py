"""Modules: registration, modes, devices, state_dict and save/load, repr, errors."""

import numpy as np
import pytest

import minirect as mr
from minirect import nn


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.PReLU(4), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10), nn.Dropout(0.5), nn.Linear(10, 3))


def test_parameters_are_registered_in_order():
    names = [n for n, _ in small_net().named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "4.weight", "4.bias", "6.weight", "6.bias"]


def test_train_eval_switches_dropout():
    net = small_net()
    x = mr.tensor(np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype(np.float32))
    net.eval()
    assert not net[5].training
    assert np.array_equal(net(x).numpy(), net(x).numpy())      # deterministic in eval
    net.train()
    assert net[5].training


def test_state_dict_round_trip_through_npz(tmp_path):
    mr.seed(0)
    a = small_net()
    path = tmp_path / "weights.npz"
    a.save(path)
    mr.seed(1)
    b = small_net()
    assert not np.array_equal(a[0].weight.numpy(), b[0].weight.numpy())
    b.load(path)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and np.array_equal(pa.numpy(), pb.numpy())
    assert not list(tmp_path.glob("*.tmp"))                      # written atomically


def test_load_state_dict_errors_name_the_problem():
    net = small_net()
    state = net.state_dict()
    state["0.weight"] = np.zeros((5, 1, 3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"0.weight (has shape|is) \(5, 1, 3, 3\) in the state but "
                                         r"\(4, 1, 3, 3\)"):
        net.load_state_dict(state)
    del state["0.weight"]
    with pytest.raises(KeyError, match="missing keys"):
        net.load_state_dict(state)


def test_to_device_moves_parameters(xp, device):
    net = small_net().to(device)
    assert all(p.device == device for p in net.parameters())
    x = mr.tensor(xp.ones((2, 1, 8, 8), dtype=xp.float32))
    assert net(x).shape == (2, 3)


def test_repr_is_readable():
    text = repr(small_net())
    assert "(0): Conv2d(1, 4, kernel_size=(3, 3), stride=1, padding=1)" in text
    assert "(1): PReLU(num_parameters=4, init=0.25)" in text
    assert "(5): Dropout(p=0.5)" in text


def test_conv2d_layer_errors_name_expected_and_received_shapes():
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, H, W\), got \(2, 1, 8, 8\)"):
        conv(mr.tensor(np.ones((2, 1, 8, 8), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, H, W\), got \(3, 8, 8\)"):
        conv(mr.tensor(np.ones((3, 8, 8), dtype=np.float32)))


def test_linear_layer_error():
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\), got \(2, 5\)"):
        nn.Linear(4, 2)(mr.tensor(np.ones((2, 5), dtype=np.float32)))


def test_forward_hook_and_removal():
    net = small_net()
    seen = []
    handle = net[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    x = mr.tensor(np.ones((2, 1, 8, 8), dtype=np.float32))
    net(x)
    handle.remove()
    net(x)
    assert seen == [(2, 4, 8, 8)]


def test_module_needs_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.w = 1

    with pytest.raises(RuntimeError, match="super"):
        Broken()
