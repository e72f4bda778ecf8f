"""The fully connected layer and dropout: the layers of the paper's classifier.

Derivations: docs/derivations/matmul.md (linear) and docs/derivations/dropout.md.
"""

from .. import backend
from ..autograd import Function, document


class Linear(Function):
    """y = x Wᵀ + b, with x (N, in), W (out, in), b (out,).

    dE/dx = gy W,   dE/dW = gyᵀ x,   dE/db = Σ_n gy.
    """

    def forward(self, x, W, b=None):
        if x.ndim != 2 or x.shape[1] != W.shape[1]:
            raise ValueError(f"linear: expected input of shape (N, {W.shape[1]}), got {x.shape}")
        self.save_for_backward(x, W)
        y = backend.matmul(x, W.mT)
        return y if b is None else y + b

    def backward(self, gy):
        x, W = self.saved
        gx = backend.matmul(gy, W) if self.inputs[0].requires_grad else None
        gW = backend.matmul(gy.mT, x)
        return (gx, gW, self.xp.sum(gy, axis=0)) if len(self.inputs) == 3 else (gx, gW)


class Dropout(Function):
    """Inverted dropout: y = x · m / (1 - p), m ~ Bernoulli(1 - p) per element.

    dE/dx = gy · m / (1 - p). The mask comes from minirect's seeded generator
    (u < 1 - p for u ~ U[0, 1)). Scaling at training time means evaluation
    needs no change.
    """

    def forward(self, x):
        keep = 1.0 - self.p
        mask = backend.random_uniform(x.shape, like=x) < keep
        scale = self.xp.astype(mask, x.dtype) * (1.0 / keep)     # a Python float keeps x's dtype
        self.save_for_backward(scale)
        return x * scale

    def backward(self, gy):
        (scale,) = self.saved
        return gy * scale


def linear(x, W, b=None):
    return Linear.apply(x, W) if b is None else Linear.apply(x, W, b)


def dropout(x, p: float = 0.5, training: bool = True):
    """Inverted dropout; the identity when not training or p == 0."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    return Dropout.apply(x, p=p)


document(linear, Linear)
document(dropout, Dropout)
