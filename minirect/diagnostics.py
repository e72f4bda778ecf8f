"""Per-layer signal statistics: what a net's forward and backward signals measure.

``layer_statistics(model, x, y)`` runs one forward and backward pass and
records, for every Conv2d and Linear layer l (in order):

* ``response_std``   std of its response y_l = W_l x_l + b_l        (forward signal)
* ``grad_std``       std of ∂E/∂y_l                                  (backward signal)
* ``weight_grad``    RMS of the data gradient ∂E/∂W_l
* ``decay_ratio``    RMS of λ·W_l divided by RMS of ∂E/∂W_l — above 1 the weight's
                     update is driven mostly by weight decay (footnote 2 of the
                     paper: the "diminishing gradients" of the stalled Xavier net)

``vanishing_layers(stats)`` names the layers of footnote 2. What the theory
predicts for the same layers (the paper's Eq. 7–14, and the geometry-aware
version beyond it) is in ``minirect.theory``; the plot of both is
``experiments.report.plot_layer_statistics``.
"""

from __future__ import annotations

import math

from .autograd import Tensor
from .functional import softmax_cross_entropy
from .nn.layers import Conv2d, Linear


def weighted_layers(model):
    """(name, layer) for every Conv2d and Linear layer, in forward order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (Conv2d, Linear))]


def _std(array) -> float:
    # float64: the stalled nets' signals (1e-10 and below) underflow when squared in float32
    return float(array.astype("float64").std())


def _rms(array) -> float:
    a = array.astype("float64")
    return float((a * a).mean()) ** 0.5


def layer_statistics(model, x, y, weight_decay: float = 5e-4, loss_fn=softmax_cross_entropy) -> list:
    """Forward and backward once; one dict of statistics per weighted layer.

    The model's gradients are cleared before and after, so this can run in the
    middle of training without disturbing it. Dropout is switched off.
    """
    layers = weighted_layers(model)
    responses = {}

    def keep(name):
        def hook(module, inputs, output):
            responses[name] = output.retain_grad()
        return hook

    handles = [layer.register_forward_hook(keep(name)) for name, layer in layers]
    was_training = model.training
    model.eval()
    model.zero_grad()
    try:
        loss = loss_fn(model(x), y)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    stats = []
    for index, (name, layer) in enumerate(layers, start=1):
        out: Tensor = responses[name]
        w = layer.weight
        weight_grad = _rms(w.grad) if w.grad is not None else 0.0
        decay = weight_decay * _rms(w.data)
        stats.append({
            "layer": index, "name": name, "kind": type(layer).__name__,
            "response_std": _std(out.data),
            "grad_std": _std(out.grad) if out.grad is not None else 0.0,
            "weight_grad": weight_grad,
            "decay_ratio": decay / weight_grad if weight_grad > 0 else math.inf,
        })
    model.zero_grad()
    return stats


def vanishing_layers(stats: list, threshold: float = 1.0) -> list:
    """Names of layers whose update is dominated by weight decay (footnote 2)."""
    return [s["name"] for s in stats if s["decay_ratio"] > threshold]

