"""Exercises on the loss, the initialization (Sec. 2.2) and the update (Eq. 4).

Expected values come from ``minirect.functional.softmax_cross_entropy``,
``minirect.init.msra_std`` and one step of ``minirect.optim.SGD`` with the
parameter groups of ``minirect.optim.param_groups`` (no decay on PReLU).
"""

from __future__ import annotations

import math

from .. import functional as F
from .. import init, nn, optim
from ._checker import Case, Exercise, case_rng, Mistake, engine_grads, np

# ----------------------------------------------------------------------------
# Softmax cross-entropy
# ----------------------------------------------------------------------------


def softmax_cross_entropy_backward(logits, labels):
    """E = −(1/N) Σ_n log softmax(x_n)[t_n]; return dE/dx = (softmax(x) − onehot(t)) / N."""
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)     # same softmax, no overflow
    p = np.exp(shifted)
    p = p / p.sum(axis=1, keepdims=True)
    p[np.arange(N), labels] -= 1                              # minus the one-hot target
    return p / N


def _softmax_ce(logits, labels):
    """The forward loss in NumPy (float64), for the gradcheck."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels].mean()


def _softmax_cases():
    cases = []
    for seed, (N, K) in [(0, (4, 3)), (1, (8, 10)), (2, (1, 5))]:
        rng = case_rng(seed)
        cases.append(Case(f"float32 N={N}, K={K}", dict(
            logits=(3 * rng.standard_normal((N, K))).astype("float32"),
            labels=rng.integers(0, K, N))))
    rng = case_rng(3)
    cases.append(Case("float64 gradcheck", dict(logits=rng.standard_normal((3, 4)),
                                                labels=rng.integers(0, 4, 3)), gradcheck=True))
    return cases


def _onehot(labels, K):
    return np.eye(K)[labels]


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


SOFTMAX_CE = Exercise(
    name="softmax_cross_entropy_backward", title="Softmax cross-entropy backward",
    hints=(
        "Write −log softmax(x)[t] as −x_t + log Σ_j exp(x_j) and differentiate by x_k.",
        "The loss is a mean over the N samples: what does that do to each row's gradient?",
        "Subtract each row's maximum before exp: softmax does not change, overflow goes away.",
    ),
    stars=2, unit="training", kind="code",
    task="The loss is the mean cross-entropy E = −(1/N) Σ_n log softmax(x_n)[t_n] of logits x "
         "(N, K) against integer labels t (N,). Return dE/dx, shape (N, K).",
    math="With p = softmax(x_n), log p_t = x_t − log Σ_j exp(x_j), so ∂(−log p_t)/∂x_k = p_k − "
         "[k = t]. The mean divides by N: dE/dx = (softmax(x) − onehot(t)) / N. Subtract the "
         "row maximum before exp (it does not change softmax) to avoid overflow.",
    solution=softmax_cross_entropy_backward, outputs=("gx",), cases=_softmax_cases,
    expected=lambda logits, labels: engine_grads(F.softmax_cross_entropy, (logits, labels), None, (0,)),
    forward=_softmax_ce, wrt=("logits",),
    mistakes=[
        Mistake("the loss is a mean over the batch: divide by N",
                lambda logits, labels: softmax_cross_entropy_backward(logits, labels) * len(labels)),
        Mistake("the sign is flipped: it is softmax − onehot (raising the right logit lowers E)",
                lambda logits, labels: -softmax_cross_entropy_backward(logits, labels)),
        Mistake("subtract the one-hot target: dE/dx = (softmax(x) − onehot(t)) / N",
                lambda logits, labels: _softmax(logits) / len(labels)),
        Mistake("use softmax(x), not log softmax(x)",
                lambda logits, labels: (np.log(_softmax(logits)) - _onehot(labels, logits.shape[1]))
                / len(labels)),
    ])


# ----------------------------------------------------------------------------
# MSRA initialization (Eq. 10, 14, 15)
# ----------------------------------------------------------------------------

def msra_std(shape, a, mode):
    """The std of the paper's initialization for a weight of ``shape``.

    ½ (1 + a²) n Var[w] = 1  →  std = sqrt(2 / ((1 + a²) n)), where
    n = k²·c (fan_in, Eq. 10) or k²·d (fan_out, Eq. 14) for a conv weight
    (d, c, k, k), and n = in or out for a linear weight (out, in).
    """
    receptive = math.prod(shape[2:])                 # k² for a conv weight, 1 for a linear one
    n = shape[1] * receptive if mode == "fan_in" else shape[0] * receptive
    return math.sqrt(2.0 / ((1.0 + a * a) * n))


def _msra_cases():
    setups = [((64, 3, 3, 3), 0.0, "fan_in"), ((64, 32, 3, 3), 0.0, "fan_out"),
              ((128, 64, 3, 3), 0.25, "fan_in"), ((10, 256), 0.0, "fan_in"),
              ((256, 4096), 0.25, "fan_out"), ((16, 8, 5, 5), 1.0, "fan_out"),
              ((96, 3, 7, 7), 0.25, "fan_out")]
    return [Case(f"shape {shape}, a={a}, {mode}", dict(shape=shape, a=a, mode=mode))
            for shape, a, mode in setups]


def _fan(shape, mode):
    fan_in, fan_out = init.calculate_fans(shape)
    return fan_in if mode == "fan_in" else fan_out


MSRA = Exercise(
    name="msra_std", title="The MSRA std (Eq. 10, 14, 15)",
    hints=(
        "Start from Eq. 7: Var[y_l] = n_l Var[w_l] E[x_l²]. What is E[x_l²] after a ReLU (Eq. 8), "
        "and after a PReLU with coefficient a?",
        "Set the per-layer factor to 1 (Eq. 10 forward, Eq. 14 backward) and solve for Var[w]; "
        "the answer is a standard deviation.",
        "n counts the weights one unit sums over (fan_in) or, backwards, the outputs one input "
        "feeds (fan_out): read k, c and d from `shape` (a linear weight is (out, in)).",
    ),
    stars=2, unit="initialization", kind="code",
    task="Return the standard deviation (a float) of the paper's zero-mean Gaussian "
         "initialization for a weight of `shape`: (d, c, k, k) for a conv layer (d filters over "
         "c input channels), (out, in) for a fully connected one. `a` is the initial PReLU "
         "coefficient (0 for ReLU), `mode` is 'fan_in' (forward condition, Eq. 10) or "
         "'fan_out' (backward condition, Eq. 14).",
    math="Var[y_l] = n_l Var[w_l] E[x_l²], and after a ReLU E[x_l²] = ½ Var[y_{l−1}]. Keeping "
         "the variance constant needs ½ n_l Var[w_l] = 1 (Eq. 10), with n_l = k²c. Backwards, "
         "½ n̂_l Var[w_l] = 1 with n̂_l = k²d (Eq. 14). PReLU with coefficient a passes "
         "E[x²] = ½(1 + a²) Var[y], so ½(1 + a²) n Var[w] = 1 (Eq. 15). std = sqrt(Var[w]).",
    solution=msra_std, outputs=("std",), cases=_msra_cases,
    expected=lambda shape, a, mode: (init.msra_std(shape, a=a, mode=mode),),
    mistakes=[
        Mistake("the factor ½: a rectifier keeps half the second moment, so ½ n Var[w] = 1 and "
                "Var[w] = 2/n (n Var[w] = 1 is the paper's 'Xavier')",
                lambda shape, a, mode: math.sqrt(1.0 / ((1 + a * a) * _fan(shape, mode)))),
        Mistake("that is the variance: return the standard deviation, its square root",
                lambda shape, a, mode: 2.0 / ((1 + a * a) * _fan(shape, mode))),
        Mistake("fan_in counts the input channels (n = k²c, Eq. 10), fan_out the output "
                "channels (n̂ = k²d, Eq. 14); yours are swapped",
                lambda shape, a, mode: init.msra_std(shape, a, "fan_out" if mode == "fan_in" else "fan_in")),
        Mistake("n counts every weight a unit sums over: k²·c, not just the channels",
                lambda shape, a, mode: math.sqrt(2.0 / ((1 + a * a) * shape[1 if mode == "fan_in" else 0]))),
        Mistake("Eq. 15 has (1 + a²), not (1 + a)",
                lambda shape, a, mode: math.sqrt(2.0 / ((1 + a) * _fan(shape, mode)))),
        Mistake("the PReLU coefficient enters as ½(1 + a²) n Var[w] = 1; it is missing",
                lambda shape, a, mode: math.sqrt(2.0 / _fan(shape, mode))),
    ])


# ----------------------------------------------------------------------------
# SGD with momentum, Eq. 4, no weight decay on PReLU coefficients
# ----------------------------------------------------------------------------

def sgd_step(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    """One step of the paper's SGD (Eq. 4) on a conv weight W and PReLU coefficients a.

    v ← μ v + ε (g + λ w),  w ← w − v     with λ = weight_decay for W and λ = 0 for a.
    Returns the new (W, vW, a, va); the inputs are left unchanged.
    """
    vW_new = momentum * vW + lr * (gW + weight_decay * W)
    va_new = momentum * va + lr * ga                    # no weight decay on PReLU coefficients
    return W - vW_new, vW_new, a - va_new, va_new


class _ConvWithPReLU(nn.Module):
    """A conv weight and a PReLU layer, to get the paper's parameter groups from minirect."""

    def __init__(self, W, a):
        super().__init__()
        self.weight = nn.Parameter(W)
        self.prelu = nn.PReLU(len(a))
        self.prelu.weight = nn.Parameter(a)


def _engine_sgd(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    """One step of minirect.optim.SGD with optim.param_groups, from the given velocities."""
    model = _ConvWithPReLU(W, a)
    model.weight.grad, model.prelu.weight.grad = gW.copy(), ga.copy()
    opt = optim.SGD(optim.param_groups(model, weight_decay), lr=lr, momentum=momentum)
    state = opt.state_dict()
    order = list(opt.parameters())                      # velocities are indexed in this order
    state["velocity"] = {order.index(model.weight): vW, order.index(model.prelu.weight): va}
    opt.load_state_dict(state)
    opt.step()
    velocity = opt.state_dict()["velocity"]
    return (model.weight.numpy(), velocity[order.index(model.weight)],
            model.prelu.weight.numpy(), velocity[order.index(model.prelu.weight)])


def _sgd_cases():
    setups = [(0, 0.1, 0.9, 0.05, "zero velocity"), (1, 0.1, 0.9, 0.05, "running velocity"),
              (2, 0.5, 0.5, 0.2, "running velocity"), (3, 0.01, 0.9, 5e-4, "the paper's settings")]
    cases = []
    for seed, lr, mu, wd, what in setups:
        rng = case_rng(seed)

        def f32(shape, scale=1.0, rng=rng):
            return (scale * rng.standard_normal(shape)).astype("float32")
        zero = what == "zero velocity"
        args = dict(W=f32((4, 3, 3, 3)), gW=f32((4, 3, 3, 3)), vW=f32((4, 3, 3, 3), 0.0 if zero else 0.1),
                    a=(0.25 + f32(4, 0.1)), ga=f32(4), va=f32(4, 0.0 if zero else 0.1),
                    lr=lr, momentum=mu, weight_decay=wd)
        cases.append(Case(f"{what}: lr {lr}, momentum {mu}, weight decay {wd}", args))
    return cases


def _with_decay_on_a(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    va_new = momentum * va + lr * (ga + weight_decay * a)
    return sgd_step(W, gW, vW, a, ga, va, lr, momentum, weight_decay)[:2] + (a - va_new, va_new)


def _pytorch_form(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    vW_new = momentum * vW + gW + weight_decay * W
    va_new = momentum * va + ga
    return W - lr * vW_new, vW_new, a - lr * va_new, va_new


def _plus_step(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    _, vW_new, _, va_new = sgd_step(W, gW, vW, a, ga, va, lr, momentum, weight_decay)
    return W + vW_new, vW_new, a + va_new, va_new


SGD = Exercise(
    name="sgd_step", title="SGD with momentum (Eq. 4), no decay on PReLU coefficients",
    hints=(
        "Weight decay λw is added to the gradient of W before the velocity update; the PReLU "
        "coefficients get none (why would decay hurt them?).",
        "In Eq. 4 the learning rate sits inside the velocity: the velocity accumulates ε times "
        "the gradient, and the parameter moves by the whole velocity.",
        "Which way must the parameter move to lower the loss?",
    ),
    stars=2, unit="training", kind="code",
    task="Apply one step of the paper's SGD to a conv weight W (with gradient gW and momentum "
         "buffer vW) and to PReLU coefficients a (ga, va). Weight decay λ applies to W but not to "
         "a. The paper prints Eq. 4 as Δa := μΔa + ε∂E/∂a without saying how Δa is applied; "
         "minirect (like Caffe) applies it as a := a − Δa, so the velocity holds ε times the "
         "gradient. Return the new (W, vW, a, va) as new arrays.",
    math="Eq. 4 as printed: Δa := μ Δa + ε ∂E/∂a. The paper does not print how Δa is applied to a; "
         "since Δa carries +ε ∂E/∂a, the descent step subtracts it: a := a − Δa (Caffe's convention, "
         "which minirect follows; the learning rate ε is inside the velocity). Weight decay adds λ w "
         "to the gradient: v ← μ v + ε (g + λ w), w ← w − v. The paper applies no decay to the PReLU "
         "coefficients (it would push them to 0, i.e. towards ReLU).",
    solution=sgd_step, outputs=("W", "vW", "a", "va"), cases=_sgd_cases, expected=_engine_sgd,
    mistakes=[
        Mistake("no weight decay on PReLU coefficients: a's velocity uses ga alone",
                _with_decay_on_a),
        Mistake("weight decay is missing on W: its gradient is gW + λ W",
                lambda W, gW, vW, a, ga, va, lr, momentum, weight_decay: sgd_step(
                    W, gW, vW, a, ga, va, lr, momentum, 0.0)),
        Mistake("minirect and the paper put ε inside the velocity (v ← μ v + ε g, w ← w − v); "
                "v ← μ v + g, w ← w − ε v is PyTorch's form",
                _pytorch_form),
        Mistake("the paper prints Δa := μΔa + ε∂E/∂a without saying how Δa is applied; "
                "descending the loss needs a := a − Δa (and W := W − vW)",
                _plus_step),
    ])


EXERCISES = [SOFTMAX_CE, MSRA, SGD]
