"""(Log-)softmax, the losses (softmax cross-entropy, squared error) and the error rate.

Derivations: docs/derivations/softmax.md.
"""

import math

from .. import backend
from ..autograd import Function, document


class LogSoftmax(Function):
    """y_i = x_i - log Σ_j exp(x_j)  (along ``axis``).

    dE/dx = gy - softmax(x) · Σ_j gy_j.  Computed with the max subtracted first,
    so exp never overflows.
    """

    def forward(self, x):
        shifted = x - self.xp.max(x, axis=self.axis, keepdims=True)
        y = shifted - self.xp.log(self.xp.sum(self.xp.exp(shifted), axis=self.axis, keepdims=True))
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return gy - self.xp.exp(y) * self.xp.sum(gy, axis=self.axis, keepdims=True)


class Softmax(Function):
    """y_i = exp(x_i) / Σ_j exp(x_j)  (along ``axis``).

    dE/dx = y · (gy - Σ_j gy_j y_j): the Jacobian diag(y) - y yᵀ applied to gy
    without forming it. The max is subtracted first, so exp never overflows.
    """

    def forward(self, x):
        e = self.xp.exp(x - self.xp.max(x, axis=self.axis, keepdims=True))
        y = e / self.xp.sum(e, axis=self.axis, keepdims=True)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return y * (gy - self.xp.sum(gy * y, axis=self.axis, keepdims=True))


class MSELoss(Function):
    """E = (1/M) Σ_i (x_i - t_i)²  over all M elements (a target of x's shape).

    dE/dx = 2 (x - t) / M,   dE/dt = -2 (x - t) / M.
    """

    def forward(self, x, t):
        if x.shape != t.shape:
            raise ValueError(f"mse_loss: input {x.shape} and target {t.shape} differ; "
                             "broadcasting a target is a common silent bug, so shapes must match")
        diff = x - t
        self.save_for_backward(diff)
        return self.xp.mean(diff * diff)

    def backward(self, gy):
        (diff,) = self.saved
        g = diff * self.xp.astype(2 * gy / math.prod(diff.shape), diff.dtype)
        return g, -g


class SoftmaxCrossEntropy(Function):
    """E = -(1/N) Σ_n log softmax(x_n)[t_n]  for logits x (N, K), labels t (N,).

    dE/dx = (softmax(x) - onehot(t)) / N — the fused form is both cheaper and
    more stable than chaining log_softmax and indexing.
    """

    accepts = ("float", "int")     # logits, class labels (float labels are refused, not rounded)

    def forward(self, x, t):
        if x.ndim != 2 or t.shape != (x.shape[0],):
            raise ValueError(f"softmax_cross_entropy: expected logits (N, K) and labels (N,), "
                             f"got {x.shape} and {t.shape}")
        if x.shape[0] == 0:
            raise ValueError("softmax_cross_entropy: got an empty batch (logits of shape "
                             f"{x.shape}); the mean over no samples is undefined, pass at least one")
        xp = self.xp
        if backend.device_of(t) == "cpu" and t.shape[0] and (xp.min(t) < 0 or xp.max(t) >= x.shape[1]):
            # (checked on the host only: on a device, reading min/max would stall every step)
            raise ValueError(f"softmax_cross_entropy: labels must be in [0, {x.shape[1]}), got "
                             f"values from {xp.min(t)} to {xp.max(t)}")
        shifted = x - xp.max(x, axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))     # minus log Z
        t = xp.astype(t, xp.int64)
        self.save_for_backward(log_p, t)
        return -xp.mean(xp.sum(xp.where(_onehot(xp, t, log_p), log_p, 0.0), axis=1))

    def backward(self, gy):
        log_p, t = self.saved
        g = self.xp.exp(log_p) - self.xp.astype(_onehot(self.xp, t, log_p), log_p.dtype)
        return g * self.xp.astype(gy / log_p.shape[0], g.dtype), None


def _onehot(xp, t, like):
    """onehot[n, k] = (k == t[n]) for k < like.shape[1]: picks (or subtracts 1 at) the
    labels' entries without fancy indexing or index assignment, which the standard lacks."""
    return t[:, None] == xp.arange(like.shape[1], **backend.on_device_of(like))


def log_softmax(x, axis: int = -1):
    return LogSoftmax.apply(x, axis=axis)


def softmax(x, axis: int = -1):
    return Softmax.apply(x, axis=axis)


def mse_loss(input, target):
    """Mean squared error over all elements (PyTorch's default ``reduction='mean'``)."""
    return MSELoss.apply(input, target)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of ``logits`` (N, K) against integer ``labels`` (N,)."""
    return SoftmaxCrossEntropy.apply(logits, labels)


cross_entropy = softmax_cross_entropy


def accuracy(logits, labels) -> float:
    """Fraction of rows whose largest logit is the label (a Python float)."""
    x = getattr(logits, "data", logits)
    t = getattr(labels, "data", labels)
    xp = backend.array_module(x)
    return float(xp.mean(xp.astype(xp.argmax(x, axis=1) == t, xp.float64)))


def error_rate(logits, labels) -> float:
    """1 - accuracy: the paper reports top-1 error."""
    return 1.0 - accuracy(logits, labels)


for _wrapper, _function in [(log_softmax, LogSoftmax), (softmax, Softmax), (mse_loss, MSELoss),
                            (softmax_cross_entropy, SoftmaxCrossEntropy)]:
    document(_wrapper, _function)
