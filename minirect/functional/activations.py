"""Rectifiers: ReLU, leaky ReLU and the paper's PReLU (Sec. 2.1).

    ReLU:        f(y) = max(0, y)
    leaky ReLU:  f(y) = max(0, y) + a · min(0, y)     (a fixed, e.g. 0.01)
    PReLU:       f(y_i) = max(0, y_i) + a_i · min(0, y_i)   (a_i learned)

Derivations: docs/derivations/activations.md.
"""

from .. import backend
from ..autograd import Function, document


class ReLU(Function):
    """y = max(0, x).   dE/dx = gy · [x > 0]."""

    def forward(self, x):
        y = self.xp.maximum(x, 0)
        self.save_for_backward(y)     # y > 0 exactly where x > 0
        return y

    def backward(self, gy):
        (y,) = self.saved
        return self.xp.where(y > 0, gy, 0.0)


class LeakyReLU(Function):
    """y = x if x > 0 else slope · x.   dE/dx = gy · (1 if x > 0 else slope)."""

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.where(x > 0, x, x * self.slope)       # a Python float keeps x's dtype

    def backward(self, gy):
        (x,) = self.saved
        return self.xp.where(x > 0, gy, gy * self.slope)


class PReLU(Function):
    """Parametric ReLU, Eq. 1 of the paper: y = max(0, x) + a · min(0, x).

    ``a`` has one entry per channel (channel-wise, shape (C,)) or one entry for
    the layer (channel-shared, shape (1,)). The channel axis is axis 1 (NCHW
    feature maps or (N, C) fc outputs).

        dE/dx = gy · (1 if x > 0 else a)
        dE/da_c = Σ_{batch, positions of channel c, x ≤ 0} gy · x     (Eq. 2)

    For the channel-shared variant the sum also runs over all channels.
    """

    def forward(self, x, a):
        if a.ndim != 1 or a.shape[0] not in (1, x.shape[1]):
            raise ValueError(f"prelu: a must have shape (1,) or (C,) = ({x.shape[1]},), "
                             f"got {a.shape}")
        a_b = self.xp.reshape(a, (1, -1) + (1,) * (x.ndim - 2))    # broadcast over N and space
        self.save_for_backward(x, a_b)
        return self.xp.maximum(x, 0) + a_b * self.xp.minimum(x, 0)

    def backward(self, gy):
        x, a_b = self.saved
        negative = self.xp.minimum(x, 0)                   # recomputed: cheaper than storing it
        gx = self.xp.where(x > 0, gy, gy * a_b)
        per_channel = self.xp.sum(gy * negative, axis=(0,) + tuple(range(2, x.ndim)))
        shared = a_b.shape[1] == 1                         # one a for all channels
        return gx, self.xp.reshape(self.xp.sum(per_channel) if shared else per_channel, (a_b.shape[1],))


def relu(x):
    return (backend.fast_path("relu", x) or ReLU).apply(x)    # a branch-free backward: accel/rectifiers.py


def leaky_relu(x, negative_slope: float = 0.01):
    return LeakyReLU.apply(x, slope=negative_slope)


def prelu(x, a):
    """PReLU with coefficients ``a`` of shape (C,) (channel-wise) or (1,) (shared)."""
    return PReLU.apply(x, a)


for _wrapper, _function in [(relu, ReLU), (leaky_relu, LeakyReLU), (prelu, PReLU)]:
    document(_wrapper, _function)
