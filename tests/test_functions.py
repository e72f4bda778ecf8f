"""Activations, linear, dropout and softmax cross-entropy: values, gradients, dtypes."""

import numpy as np
import pytest

import minirect as mr
import minirect.functional as F

RNG = np.random.default_rng(2)


def away_from_zero(shape):
    """Values in ±[0.1, 1]: no input sits on a rectifier's kink."""
    return RNG.uniform(0.1, 1.0, shape) * RNG.choice([-1.0, 1.0], shape)


def t(xp, values, grad=True, dtype=None):
    return mr.tensor(xp.asarray(values, dtype=dtype), requires_grad=grad)


def test_relu_values_and_grad(xp):
    x = t(xp, [-2.0, -0.5, 0.5, 3.0], dtype=xp.float32)
    y = F.relu(x)
    assert y.tolist() == [0.0, 0.0, 0.5, 3.0] and y.dtype == np.float32
    y.sum().backward()
    assert mr.backend.to_numpy(x.grad).tolist() == [0.0, 0.0, 1.0, 1.0]
    assert mr.gradcheck(F.relu, t(xp, away_from_zero((3, 4))))


def test_leaky_relu(xp):
    x = t(xp, [-2.0, 4.0], dtype=xp.float32)
    assert F.leaky_relu(x, 0.1).tolist() == pytest.approx([-0.2, 4.0])
    assert mr.gradcheck(lambda x: F.leaky_relu(x, 0.2), t(xp, away_from_zero((3, 4))))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3)])
def test_prelu_gradcheck(xp, channels, shape):
    x = t(xp, away_from_zero(shape))
    a = t(xp, RNG.uniform(0.1, 0.5, channels))
    assert mr.gradcheck(F.prelu, x, a)


def test_prelu_coefficient_gradient_by_hand(xp):
    """dE/da_c = Σ over negative inputs of channel c of gy · x (Eq. 2)."""
    x = t(xp, [[[[-1.0, 2.0]], [[-3.0, -4.0]]]])           # (1, 2, 1, 2)
    a = t(xp, [0.25, 0.5])
    y = F.prelu(x, a)
    assert y.tolist() == [[[[-0.25, 2.0]], [[-1.5, -2.0]]]]
    y.sum().backward()
    assert mr.backend.to_numpy(a.grad).tolist() == [-1.0, -7.0]
    assert mr.backend.to_numpy(x.grad).tolist() == [[[[0.25, 1.0]], [[0.5, 0.5]]]]
    shared = t(xp, [0.25])
    F.prelu(x.detach(), shared).sum().backward()
    assert mr.backend.to_numpy(shared.grad).tolist() == [-8.0]


def test_prelu_rejects_wrong_coefficient_shape(xp):
    x = t(xp, np.ones((2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"a must have shape \(1,\) or \(C,\) = \(3,\)"):
        F.prelu(x, t(xp, [0.1, 0.2]))


def test_linear_gradcheck(xp):
    x, W, b = t(xp, RNG.normal(size=(4, 3))), t(xp, RNG.normal(size=(5, 3))), t(xp, RNG.normal(size=5))
    assert mr.gradcheck(F.linear, x, W, b)
    assert mr.gradcheck(F.linear, x, W)


def test_log_softmax(xp):
    x = t(xp, RNG.normal(size=(3, 5)))
    y = F.log_softmax(x, axis=1)
    assert np.allclose(np.exp(y.numpy()).sum(axis=1), 1.0)
    assert mr.gradcheck(lambda x: F.log_softmax(x, axis=1), x)


def test_cross_entropy_value_and_gradcheck(xp):
    logits = RNG.normal(size=(4, 3))
    labels = np.array([0, 2, 1, 2])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.log(p[np.arange(4), labels]).mean()
    x = t(xp, logits)
    loss = F.softmax_cross_entropy(x, mr.tensor(xp.asarray(labels)))
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert mr.gradcheck(lambda x: F.softmax_cross_entropy(x, mr.tensor(xp.asarray(labels))), x)


def test_cross_entropy_is_stable_for_huge_logits(xp):
    x = t(xp, [[1000.0, 0.0], [0.0, -1000.0]], dtype=xp.float32)
    loss = F.softmax_cross_entropy(x, mr.tensor(xp.asarray([1, 1])))
    assert np.isfinite(loss.item()) and loss.dtype == np.float32


def test_cross_entropy_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values from -1 to 2"):
        F.softmax_cross_entropy(t(np, np.ones((2, 3))), mr.tensor(np.array([-1, 2])))


def test_cross_entropy_shape_error(xp):
    with pytest.raises(ValueError, match=r"expected logits \(N, K\) and labels \(N,\)"):
        F.softmax_cross_entropy(t(xp, np.ones((4, 3))), mr.tensor(xp.asarray([0, 1])))


def test_accuracy_and_error_rate(xp):
    logits = mr.tensor(xp.asarray([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]]))
    labels = mr.tensor(xp.asarray([0, 0, 0]))
    assert F.accuracy(logits, labels) == pytest.approx(2 / 3)
    assert F.error_rate(logits, labels) == pytest.approx(1 / 3)


def test_dropout_is_inverted_seeded_and_off_in_eval(xp):
    x = t(xp, np.ones((200, 50)), dtype=xp.float32)
    mr.seed(3)
    y1 = F.dropout(x, 0.5)
    mr.seed(3)
    y2 = F.dropout(x, 0.5)
    assert np.array_equal(y1.numpy(), y2.numpy())                  # seeded
    assert set(np.unique(y1.numpy())) == {0.0, 2.0}                # kept units scaled by 1/(1-p)
    assert abs(y1.numpy().mean() - 1.0) < 0.05                     # expectation preserved
    assert F.dropout(x, 0.5, training=False) is x
    y1.sum().backward()
    assert np.array_equal(mr.backend.to_numpy(x.grad), y1.numpy())   # same mask
    mr.seed(4)
    assert mr.gradcheck(lambda x: (mr.seed(5), F.dropout(x, 0.3))[1], t(xp, RNG.normal(size=(3, 4))))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_values_and_gradcheck(xp, axis):
    values = RNG.normal(size=(3, 5)) * 3
    x = t(xp, values)
    y = F.softmax(x, axis=axis)
    e = np.exp(values - values.max(axis=axis, keepdims=True))
    assert np.allclose(y.numpy(), e / e.sum(axis=axis, keepdims=True))
    assert np.allclose(np.exp(F.log_softmax(x, axis=axis).numpy()), y.numpy())
    assert mr.gradcheck(lambda x: F.softmax(x, axis=axis), x)
    big = F.softmax(t(xp, [[1000.0, 0.0]], dtype=xp.float32))      # no overflow
    assert np.allclose(big.numpy(), [[1.0, 0.0]]) and big.dtype == np.float32


def test_mse_loss_values_and_gradcheck(xp):
    x, target = t(xp, RNG.normal(size=(4, 3))), t(xp, RNG.normal(size=(4, 3)))
    loss = F.mse_loss(x, target)
    assert np.isclose(loss.item(), ((x.numpy() - target.numpy()) ** 2).mean())
    assert mr.gradcheck(F.mse_loss, x, target)
    assert mr.nn.MSELoss()(x, target).item() == loss.item()
    with pytest.raises(ValueError, match="shapes must match"):
        F.mse_loss(x, t(xp, RNG.normal(size=(4, 1))))


def test_softmax_module(xp):
    x = t(xp, RNG.normal(size=(2, 4)))
    assert np.allclose(mr.nn.Softmax(dim=1)(x).numpy(), F.softmax(x, axis=1).numpy())
