"""Per-layer signal statistics, and the theory of Sec. 2.2 to compare them with.

``layer_statistics(model, x, y)`` runs one forward and backward pass and
records, for every Conv2d and Linear layer l (in order):

* ``response_std``   std of its response y_l = W_l x_l + b_l        (forward signal)
* ``grad_std``       std of ∂E/∂y_l                                  (backward signal)
* ``weight_grad``    RMS of the data gradient ∂E/∂W_l
* ``decay_ratio``    RMS of λ·W_l divided by RMS of ∂E/∂W_l — above 1 the weight's
                     update is driven mostly by weight decay (footnote 2 of the
                     paper: the "diminishing gradients" of the stalled Xavier net)

``predicted_stds(model, input_std)`` gives what Eq. 7–14 predict for the same
layers from their actual shapes and weights' variances: for a rectified net

    Var[y_l]      = n_l Var[w_l] · ½ Var[y_{l-1}]           (n_l = k² c, fan-in)
    Var[∂E/∂x_l]  = n̂_l Var[w_l] · ½ Var[∂E/∂x_{l+1}]      (n̂_l = k² d, fan-out)

so MSRA (½ n Var[w] = 1) keeps the signal flat while the paper's Xavier
(n Var[w] = 1) shrinks it by 1/√2 per layer. Pooling and SPP are not part of
the theory; ``predicted_stds`` ignores them.
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


def predicted_stds(model, input_std: float = 1.0, rectified_input: bool = False) -> dict:
    """Theory of Sec. 2.2 for this model's weighted layers, from their weights.

    Returns {"response_std": [...], "grad_ratio": [...]}: the predicted std of
    each layer's response for an input of std ``input_std``, and the predicted
    std of ∂E/∂y_l relative to the last layer's. The first layer sees the raw
    input (no ½) unless ``rectified_input``.
    """
    layers = [m for _, m in weighted_layers(model)]
    variances = [float(m.weight.data.var()) for m in layers]
    fan_in = [m.weight.size // m.weight.shape[0] for m in layers]
    fan_out = [m.weight.shape[0] * (m.weight.size // (m.weight.shape[0] * m.weight.shape[1]))
               for m in layers]
    response, var = [], input_std ** 2
    for i, (v, n) in enumerate(zip(variances, fan_in)):
        half = 0.5 if (i > 0 or rectified_input) else 1.0
        var = n * v * half * var
        response.append(math.sqrt(var))
    grad, g = [1.0] * len(layers), 1.0
    for i in range(len(layers) - 1, 0, -1):
        # ∂E/∂y_{i-1} = ReLU'(·) ⊙ W_iᵀ ∂E/∂y_i: variance gains ½ n̂_i Var[w_i]
        g = g * math.sqrt(0.5 * fan_out[i] * variances[i])
        grad[i - 1] = g
    return {"response_std": response, "grad_ratio": grad}


def vanishing_layers(stats: list, threshold: float = 1.0) -> list:
    """Names of layers whose update is dominated by weight decay (footnote 2)."""
    return [s["name"] for s in stats if s["decay_ratio"] > threshold]


def plot_layer_statistics(stats_by_label: dict, path=None, title: str = "", theory: dict | None = None):
    """Plot response std and gradient std per layer (log scale), one line per label.

    ``theory`` maps the same labels to ``predicted_stds`` output, drawn dashed.
    Returns the matplotlib figure; saves it when ``path`` is given.
    """
    import matplotlib
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    colors = {"msra": "tab:red", "xavier": "tab:blue"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, stats in stats_by_label.items():
        color = colors.get(label.split()[0].lower())
        layers = [s["layer"] for s in stats]
        axes[0].semilogy(layers, [s["response_std"] for s in stats], "o-", ms=3, label=label, color=color)
        grads = [max(s["grad_std"], 1e-30) for s in stats]
        axes[1].semilogy(layers, grads, "o-", ms=3, label=label, color=color)
        if theory and label in theory:
            axes[0].semilogy(layers, theory[label]["response_std"], "--", color=color, alpha=0.6)
            last = grads[-1]
            axes[1].semilogy(layers, [r * last for r in theory[label]["grad_ratio"]], "--",
                             color=color, alpha=0.6)
    axes[0].set(xlabel="layer", ylabel="std of response y_l", title="forward signal")
    axes[1].set(xlabel="layer", ylabel="std of dE/dy_l", title="backward signal")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
