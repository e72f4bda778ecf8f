"""Exercises on the rectifiers: ReLU, leaky ReLU, and the paper's PReLU (Sec. 2.1).

PReLU: f(y_i) = max(0, y_i) + a_i · min(0, y_i), with i the channel (axis 1).
The paper's Eq. 2 and 3 give the gradient of a_i: a sum over every position
of the channel's feature map and over the batch (and, for the channel-shared
variant, over the channels too).
"""

from __future__ import annotations

from .. import functional as F
from ._checker import Case, Exercise, case_rng, Mistake, engine_grads, np


def _kink_free(rng, shape, dtype="float32"):
    """Normal values with |v| ≥ 0.1: away from the kink at 0 (gradchecks need that)."""
    v = rng.standard_normal(shape)
    return (np.sign(v) * (np.abs(v) + 0.1)).astype(dtype)


def _channel_view(a, ndim):
    """a (C,) or (1,) as (1, C, 1, 1, ...), to broadcast along axis 1 of an ndim array."""
    return a.reshape((1, -1) + (1,) * (ndim - 2))


def _rectifier_cases(extra_args):
    """Cases on NCHW maps and on (N, C) fc outputs; ``extra_args(rng, C)`` adds a, slope..."""
    cases = []
    for seed, shape in [(0, (2, 3, 4, 5)), (1, (6, 4))]:
        rng = case_rng(seed)
        x = _kink_free(rng, shape)
        gy = rng.standard_normal(shape).astype("float32")
        cases.append(Case(f"float32 x{shape}, seed {seed}", dict(x=x, **extra_args(rng, shape[1]), gy=gy)))
    rng = case_rng(2)
    shape = (2, 3, 2, 2)
    x = _kink_free(rng, shape, "float64")
    extra = {k: (v.astype("float64") if hasattr(v, "astype") else v) for k, v in extra_args(rng, 3).items()}
    cases.append(Case("float64 gradcheck", dict(x=x, **extra, gy=rng.standard_normal(shape)),
                      gradcheck=True))
    return cases


# ----------------------------------------------------------------------------
# ReLU
# ----------------------------------------------------------------------------

def relu_backward(x, gy):
    """y = max(0, x); return dE/dx = gy · [x > 0] (0 at x = 0, as minirect does)."""
    return gy * (x > 0)


def _relu_cases():
    cases = _rectifier_cases(lambda rng, c: {})
    x = np.array([[-1.0, 0.0, 2.0], [0.0, 3.0, -0.5]], dtype="float32")
    cases.insert(2, Case("exact zeros in x", dict(x=x, gy=np.full(x.shape, 2.0, dtype="float32"))))
    return cases


RELU = Exercise(
    name="relu_backward", title="ReLU backward",
    hints=(
        "Differentiate max(0, x) on each side of 0.",
        "The task fixes the derivative at the kink x = 0; then multiply the local derivative by "
        "gy.",
    ),
    stars=1, unit="rectifiers", kind="code",
    task="The forward pass is y = max(0, x) elementwise. Return gx = dE/dx given gy = dE/dy. "
         "At x = 0 exactly (the kink) use the derivative 0, as minirect and PyTorch do.",
    math="dy/dx = 1 where x > 0 and 0 where x < 0, so dE/dx = gy · [x > 0]: the gradient "
         "passes through where the unit was active and is blocked elsewhere.",
    solution=relu_backward, outputs=("gx",), cases=_relu_cases,
    expected=lambda x, gy: engine_grads(F.relu, (x,), gy, (0,)),
    forward=lambda x, gy: np.maximum(x, 0), wrt=("x",),
    mistakes=[
        Mistake("at x = 0 the derivative is taken as 0: use x > 0, not x >= 0",
                lambda x, gy: (gy * (x >= 0),)),
        Mistake("multiply by the incoming gradient gy, not by x", lambda x, gy: (x * (x > 0),)),
        Mistake("the mask alone is dy/dx; dE/dx multiplies it by gy", lambda x, gy: ((x > 0) * 1.0,)),
    ])


# ----------------------------------------------------------------------------
# Leaky ReLU
# ----------------------------------------------------------------------------

def leaky_relu_backward(x, gy, slope):
    """y = x if x > 0 else slope · x; return dE/dx = gy · (1 if x > 0 else slope)."""
    return np.where(x > 0, gy, slope * gy)


LEAKY_RELU = Exercise(
    name="leaky_relu_backward", title="Leaky ReLU backward",
    hints=(
        "Differentiate each branch of the forward pass: x for x > 0, slope · x otherwise.",
        "Choose the branch by the sign of x and multiply by the incoming gy.",
    ),
    stars=1, unit="rectifiers", kind="code",
    task="The forward pass is y = x for x > 0 and y = slope · x otherwise (slope fixed, e.g. "
         "0.01). Return gx = dE/dx given gy.",
    math="dy/dx = 1 for x > 0 and slope for x < 0, so dE/dx = gy where x > 0 and slope · gy "
         "elsewhere. (PReLU is the same with a learned slope per channel.)",
    solution=leaky_relu_backward, outputs=("gx",),
    cases=lambda: _rectifier_cases(lambda rng, c: {"slope": float(rng.choice([0.01, 0.2, 0.3]))}),
    expected=lambda x, gy, slope: engine_grads(lambda t: F.leaky_relu(t, slope), (x,), gy, (0,)),
    forward=lambda x, gy, slope: np.where(x > 0, x, slope * x), wrt=("x",),
    mistakes=[
        Mistake("for x ≤ 0 the gradient is slope · gy, not 0 (that would be ReLU)",
                lambda x, gy, slope: (gy * (x > 0),)),
        Mistake("the slope applies where x ≤ 0 and 1 where x > 0, not the other way round",
                lambda x, gy, slope: (np.where(x > 0, slope * gy, gy),)),
        Mistake("multiply by gy: slope · x is the forward value, not the gradient",
                lambda x, gy, slope: (np.where(x > 0, gy, slope * x),)),
    ])


# ----------------------------------------------------------------------------
# PReLU, channel-wise and channel-shared
# ----------------------------------------------------------------------------

def prelu_backward(x, a, gy):
    """PReLU y = max(0, x) + a_c · min(0, x), a of shape (C,); return (dE/dx, dE/da).

    dE/dx = gy · (1 if x > 0 else a_c)
    dE/da_c = Σ_{n, positions} gy · min(0, x)        (Eq. 2: ∂y/∂a_c = x where x ≤ 0)
    """
    a_b = _channel_view(a, x.ndim)
    gx = np.where(x > 0, gy, a_b * gy)
    not_channel = (0,) + tuple(range(2, x.ndim))      # batch and spatial axes
    ga = (gy * np.minimum(x, 0)).sum(axis=not_channel)
    return gx, ga


def prelu_shared_backward(x, a, gy):
    """Channel-shared PReLU: one coefficient, a of shape (1,); return (dE/dx, dE/da).

    dE/da = Σ_{n, c, positions} gy · min(0, x): the channel-wise sum, summed over c too.
    """
    gx = np.where(x > 0, gy, a * gy)
    ga = (gy * np.minimum(x, 0)).sum().reshape(1)
    return gx, ga


def _prelu_forward(x, a, gy):
    return np.maximum(x, 0) + _channel_view(a, x.ndim) * np.minimum(x, 0)


def _coefficients(count):
    """PReLU coefficients: 0.25 (the paper's initial value) and a few learned-looking ones."""
    return lambda rng, c: {"a": rng.uniform(-0.2, 0.8, 1 if count == "shared" else c).astype("float32")}


def _sum_over(axes):
    return lambda x, a, gy: (np.where(x > 0, gy, _channel_view(a, x.ndim) * gy),
                             (gy * np.minimum(x, 0)).sum(axis=axes(x)))


PRELU = Exercise(
    name="prelu_backward", title="PReLU backward, channel-wise (Eq. 2)",
    hints=(
        "Write y as a function of x and a_c and differentiate by each; ∂y/∂a_c is 0 on one side "
        "of 0.",
        "a_c is used at every position of channel c in every sample: the chain rule adds up the "
        "contributions of all those uses.",
        "ga has a's shape (C,): which axes of x do you sum over?",
    ),
    stars=2, unit="rectifiers", kind="code",
    task="The forward pass is the paper's Eq. 1, y = max(0, x) + a_c · min(0, x), where c is "
         "the channel (axis 1 of x, which is (N, C, H, W) or (N, C)) and a has shape (C,). "
         "Return (gx, ga) = (dE/dx, dE/da) given gy.",
    math="∂y/∂x = 1 if x > 0 else a_c. ∂y/∂a_c = 0 if x > 0 else x, i.e. min(0, x). a_c is "
         "shared by every position of channel c and by every sample, so its gradient sums "
         "over all of them: dE/da_c = Σ_{n, h, w} gy[n, c, h, w] · min(0, x[n, c, h, w]) "
         "(Eq. 2). ga has a's shape (C,).",
    solution=prelu_backward, outputs=("gx", "ga"), cases=lambda: _rectifier_cases(_coefficients("wise")),
    expected=lambda x, a, gy: engine_grads(F.prelu, (x, a), gy, (0, 1)),
    forward=_prelu_forward, wrt=("x", "a"),
    shape_hint="ga has a's shape (C,): sum over the batch axis 0 and the positions (axes 2, 3)",
    mistakes=[
        Mistake("a_c is used at every position of every sample: sum over the batch and the "
                "positions, not only the batch", _sum_over(lambda x: 0)),
        Mistake("a_c is used by every sample too: sum over the batch axis, not only the positions",
                _sum_over(lambda x: tuple(range(2, x.ndim)))),
        Mistake("∂y/∂a is 0 where x > 0: only negative inputs contribute, min(0, x), not x",
                lambda x, a, gy: (prelu_backward(x, a, gy)[0],
                                  (gy * x).sum(axis=(0,) + tuple(range(2, x.ndim))))),
        Mistake("for x ≤ 0 the gradient of x is a_c · gy, not 0 (that would be ReLU)",
                lambda x, a, gy: (gy * (x > 0), prelu_backward(x, a, gy)[1])),
        Mistake("the slope a_c belongs to the negative side: gy where x > 0, a_c · gy elsewhere",
                lambda x, a, gy: (np.where(x > 0, _channel_view(a, x.ndim) * gy, gy),
                                  prelu_backward(x, a, gy)[1])),
    ])

PRELU_SHARED = Exercise(
    name="prelu_shared_backward", title="PReLU backward, channel-shared",
    hints=(
        "Start from the channel-wise gradient of prelu_backward: where is the single a used?",
        "One coefficient serves every channel too: which axes does that add to the sum? ga has "
        "shape (1,).",
    ),
    stars=2, unit="rectifiers", kind="code",
    task="As prelu_backward, but with one coefficient for the whole layer: a has shape (1,). "
         "Return (gx, ga) with ga of shape (1,).",
    math="The channel-wise gradient, summed over the channels too: "
         "dE/da = Σ_{n, c, h, w} gy · min(0, x). The paper: 'the sum Σ_i is over all channels "
         "of the layer'.",
    solution=prelu_shared_backward, outputs=("gx", "ga"),
    cases=lambda: _rectifier_cases(_coefficients("shared")),
    expected=lambda x, a, gy: engine_grads(F.prelu, (x, a), gy, (0, 1)),
    forward=_prelu_forward, wrt=("x", "a"),
    shape_hint="ga has shape (1,): sum over everything, channels included, and reshape(1)",
    mistakes=[
        Mistake("the single coefficient serves every channel: sum over the channels as well "
                "(ga has shape (1,))", _sum_over(lambda x: (0,) + tuple(range(2, x.ndim)))),
        Mistake("∂y/∂a is 0 where x > 0: sum gy · min(0, x), not gy · x",
                lambda x, a, gy: (prelu_shared_backward(x, a, gy)[0], (gy * x).sum().reshape(1))),
        Mistake("for x ≤ 0 the gradient of x is a · gy, not 0",
                lambda x, a, gy: (gy * (x > 0), prelu_shared_backward(x, a, gy)[1])),
    ])


EXERCISES = [RELU, LEAKY_RELU, PRELU, PRELU_SHARED]
