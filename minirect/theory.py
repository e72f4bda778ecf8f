"""The theory of the signal's size, layer by layer, to set beside what ``diagnostics`` measures.

**The paper's theory** (Sec. 2.2, Eq. 7–14), ``idealized_stds``: for a rectified net

    Var[y_l]      = n_l Var[w_l] · ½ Var[y_{l-1}]           (n_l = k² c, fan-in)
    Var[∂E/∂x_l]  = n̂_l Var[w_l] · ½ Var[∂E/∂x_{l+1}]      (n̂_l = k² d, fan-out)

so MSRA (½ n Var[w] = 1) keeps the signal flat while the paper's Xavier
(n Var[w] = 1) shrinks it by 1/√2 per layer. It assumes large maps and no pooling.

**Beyond the paper: the geometry-aware theory**, ``geometry_aware_stds``. The
same argument, position by position, on the maps a net really has: zero padding
(a 3×3 "same" conv on a 4×4 map keeps 100/144 of the variance), max pooling and
SPP (the max of a Gaussian field, by Monte Carlo), and the finite width's effect
on one seed's std (docs/derivations/initialization.md). The paper does none of
this; it is minirect's own, to explain what the small nets of the reproduction
measure. It reads the window geometry and the SPP bins from
``functional.conv`` (``window_geometry``, ``spp_bins``): the same windows the
layers compute with.

``predicted_stds(model, ...)`` picks one of the two (``geometry=True``: the second).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from . import backend
from .diagnostics import weighted_layers
from .functional.conv import spp_bins, window_geometry
from .nn import SPP, Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d, PReLU, ReLU

_host = backend.module_for("cpu")    # the theory is small host arithmetic, in float64


# ----------------------------------------------------------------------------
# The paper's theory (Sec. 2.2)
# ----------------------------------------------------------------------------

def predicted_stds(model, input_std: float = 1.0, rectified_input: bool = False, *,
                   geometry: bool = False, input_shape=None, inputs=None) -> dict:
    """The theory's per-layer stds for this model's weighted layers, from their weights.

    Returns {"response_std": [...], "grad_ratio": [...]}: the predicted std of
    each layer's response for an input of std ``input_std``, and the predicted
    std of ∂E/∂y_l relative to the last layer's. The first layer sees the raw
    input (no ½) unless ``rectified_input``.

    ``geometry=False`` (default): the paper's idealized theory, Eq. 9 and its
    backward twin (``idealized_stds``). ``geometry=True``: the same theory on
    the net's actual maps — zero padding, max pooling, SPP
    (``geometry_aware_stds``; the map size comes from ``input_shape``,
    ``inputs`` or the model's ``spec``).
    """
    if geometry:
        return geometry_aware_stds(model, input_std, rectified_input=rectified_input,
                                   input_shape=input_shape, inputs=inputs)
    return idealized_stds(model, input_std, rectified_input)


def idealized_stds(model, input_std: float = 1.0, rectified_input: bool = False) -> dict:
    """The paper's theory (Eq. 9 and its backward twin): every layer multiplies the
    variance by ½ n_l Var[w_l] forward and ½ n̂_l Var[w_l] backward, as if every
    map were infinitely large (no padding) and there were no pooling."""
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


# ----------------------------------------------------------------------------
# Beyond the paper: the same theory on the nets' real maps (zero padding, max
# pooling, SPP, finite width). minirect's extension, not the paper's.
# ----------------------------------------------------------------------------

MONTE_CARLO_SAMPLES = 20000     # Gaussian fields drawn per pooling layer (≈1% error on E[max²])


def geometry_aware_stds(model, input_std: float = 1.0, *, input_shape=None, inputs=None,
                        rectified_input: bool = False, samples: int = MONTE_CARLO_SAMPLES,
                        seed: int = 0) -> dict:
    """Sec. 2.2's theory, position by position, on the maps the net really has
    (beyond the paper: minirect's extension, see the module notes).

    Same return format as ``predicted_stds``, plus "rms_response" (√E[Var y_l]
    before the finite-width correction below). The model is a chain of layers
    (like ``nn.Sequential``): Conv2d, Linear, ReLU, LeakyReLU, PReLU,
    MaxPool2d, SPP, Dropout (off, as in ``layer_statistics``) and Flatten.

    **Padding.** Forward, we carry M[p, q] = E[x_p x_q], the second moments of
    one channel at map positions p, q (all channels alike: their weights are
    i.i.d.). A conv sums only the taps that fall inside the map:

        E[y_p y_q] = c · E[w²] · Σ_t E[x_{p+t} x_{q+t}]   (taps t with p+t and q+t in the map)

    — Eq. 7 with n_l = k²c replaced, on the diagonal, by c times the number of
    in-map taps. It is exact in expectation over the weights. A rectifier
    turns M into E[f(u) f(v)] for Gaussian (u, v) (``rectified_moments``; on
    the diagonal Eq. 8's ½). Backward, G[p] = E[(∂E/∂x_p)²] goes back along
    the same in-map taps, G_in[q] = d E[w²] Σ_{(p,t): p+t=q} G_out[p] (Eq. 13),
    and a rectifier multiplies it by E[f'²] = (1 + a²)/2.

    **Max pooling and SPP** (``max_pool_moments``): the pre-activations of
    one channel are taken as a Gaussian field with covariance M, and the
    moments of each bin's max, and how often each pixel wins it (backward:
    the gradient goes to the winner only), are computed over that Gaussian.

    **Finite width.** For a given seed the variance is E[Var]·(random factor):
    each layer's d channels average d independent draws, and the product of
    those factors over many layers is roughly log-normal, with log-variance
    s² = Σ_l (relative variance of layer l's output energy) (``energy_fluctuation``).
    Its mean is E[Var], but a typical seed — and the average of std over a few
    seeds — falls below: E[std] = √E[Var] · exp(−s²/8). "response_std" is
    that expected std. To get s² we carry the moments of two different images
    side by side (a 2P × 2P matrix): their cross-moments say how alike the
    images look to the layer, and alike inputs make each channel's rectified
    energy all-or-nothing. "grad_ratio" has no such correction.

    ``inputs`` (a batch, N × C × H × W) gives the input's own moments — real
    images are neither white nor uniform (a digit's corners are always 0) —
    and N. Without it the input is white noise of std ``input_std`` on a map
    of ``input_shape`` ((C, H, W) or (H, W)) or of the model's ``spec.input_size``,
    for a large batch.
    """
    rng = _host.random.default_rng(seed)
    signal = _input_signal(model, input_std, input_shape, inputs, rectified_input)
    rms, expected, backward_steps = [], [], []
    for layer in _chain(model):
        if isinstance(layer, (Conv2d, Linear)):
            signal, step = _apply_pending_rectifier(signal)
            backward_steps.append((step, False))
            signal, step = (_conv_forward if isinstance(layer, Conv2d) else _linear_forward)(signal, layer)
            backward_steps.append((step, True))
            variance = float(_host.diag(signal.same).mean())
            own = energy_fluctuation(signal.moments, 1.0, signal.channels, signal.batch)
            rms.append(math.sqrt(variance))
            expected.append(math.sqrt(variance) * math.exp(-(signal.log_variance + own) / 8))
        elif isinstance(layer, (ReLU, LeakyReLU, PReLU)):
            signal = signal.with_slope(_negative_slope(layer))
        elif isinstance(layer, (MaxPool2d, SPP)):
            signal, step = _pool_forward(signal, layer, rng, samples)
            backward_steps.append((step, False))
        elif isinstance(layer, Flatten):
            signal = replace(signal, shape=None)
        elif not isinstance(layer, Dropout):
            raise TypeError(f"geometry_aware_stds: no theory for layer {layer!r}")
    grad_ratio = _backward(backward_steps, signal.positions)
    return {"response_std": expected, "grad_ratio": grad_ratio, "rms_response": rms}


@dataclass(frozen=True)
class _Signal:
    """The second moments of one channel of the signal between two layers.

    moments       the 2P × 2P matrix E[x x'] of the signal of two different images
                  side by side: [[S, X], [Xᵀ, S]], S[p, q] = E[x_p x_q] within one
                  image, X the cross-moments between two (P = 1 for a vector)
    shape         (H, W) of the map; None once it is a vector (after SPP, Flatten, Linear)
    channels      number of channels (features of a vector)
    batch         images in the measured batch (inf: many)
    slope         the rectifier f(y) = max(y, a·y) still to apply (1.0: none)
    log_variance  s² accumulated so far (see ``energy_fluctuation``)
    """

    moments: object
    shape: tuple | None
    channels: int
    batch: float = math.inf
    slope: float = 1.0
    log_variance: float = 0.0

    @property
    def positions(self) -> int:
        return self.moments.shape[0] // 2

    @property
    def same(self):
        """S: the moments within one image."""
        return self.moments[:self.positions, :self.positions]

    def with_slope(self, slope):
        if self.slope != 1.0:
            raise TypeError("geometry_aware_stds: two rectifiers in a row")
        return replace(self, slope=slope)


def _two_images(same, cross):
    return _host.block([[same, cross], [cross.T, same]])


def _chain(model):
    """The model's leaf layers in the order they were added (= forward order for a chain)."""
    return [m for m in model.modules() if next(iter(m.children()), None) is None]


def _negative_slope(layer) -> float:
    """a of f(y) = max(y, a·y): 0 for ReLU, the mean coefficient of a PReLU."""
    if isinstance(layer, ReLU):
        return 0.0
    if isinstance(layer, LeakyReLU):
        return float(layer.negative_slope)
    return float(backend.to_numpy(layer.weight.data).mean())


def _mean_square(array) -> float:
    return float((backend.to_numpy(array).astype("float64") ** 2).mean())


def _input_signal(model, input_std, input_shape, inputs, rectified_input) -> _Signal:
    """Moments of the input: measured from ``inputs``, or white noise of ``input_std``."""
    slope = 0.0 if rectified_input else 1.0
    if inputs is not None:
        x = backend.to_numpy(getattr(inputs, "data", inputs)).astype("float64")
        n, c = x.shape[:2]
        per_channel = x.reshape(n, c, -1).transpose(1, 0, 2)          # (C, N, P)
        same = _host.einsum("cnp,cnq->pq", per_channel, per_channel) / (n * c)
        totals = per_channel.sum(axis=1)                                # Σ_n x_n, per channel
        cross = (totals.T @ totals / c - same * n) / (n * (n - 1))     # mean over pairs n ≠ n'
        shape = x.shape[2:] if x.ndim == 4 else None
        return _Signal(_two_images(same, cross), shape, c, n, slope)
    shape = input_shape
    if shape is None and hasattr(model, "spec"):
        shape = (model.spec.in_channels, model.spec.input_size, model.spec.input_size)
    if shape is None:
        first = weighted_layers(model)[0][1]
        if isinstance(first, Conv2d):
            raise ValueError("geometry_aware_stds: give input_shape=(C, H, W) or inputs: "
                             "the model does not say how large its input maps are")
        return _Signal(_two_images(_host.eye(1) * input_std ** 2, _host.zeros((1, 1))), None,
                       first.weight.shape[1], slope=slope)
    c, h, w = (1, *shape) if len(shape) == 2 else shape
    white = input_std ** 2 * _host.eye(h * w)
    return _Signal(_two_images(white, 0 * white), (h, w), c, slope=slope)


def _correlations(moments):
    """(σ_p σ_q, ρ_pq) of a second-moment matrix."""
    std = _host.sqrt(_host.clip(_host.diag(moments), 0.0, None))
    scale = _host.outer(std, std)
    rho = _host.divide(moments, scale, out=_host.zeros_like(moments), where=scale > 0)
    return scale, _host.clip(rho, -1.0, 1.0)


def rectified_moments(moments, slope: float = 0.0):
    """E[f(u) f(v)] for (u, v) Gaussian with second moments ``moments``, f(y) = max(y, a·y).

    With σ_u, σ_v the stds, ρ = cos θ their correlation and
    J(ρ) = E[relu(u) relu(v)] = σ_u σ_v (sin θ + (π − θ) cos θ) / 2π (the arc-cosine
    kernel; J(1) = σ²/2 is Eq. 8's ½), and f(y) = relu(y) − a·relu(−y):

        E[f(u) f(v)] = (1 + a²) J(ρ) − 2a J(−ρ)

    (a = 1 gives back ``moments``: no rectifier).
    """
    if slope == 1.0:
        return moments
    scale, rho = _correlations(moments)

    def arc_cosine(r):
        return scale * (_host.sqrt(1 - r * r) + (_host.pi - _host.arccos(r)) * r) / (2 * _host.pi)
    return (1 + slope ** 2) * arc_cosine(rho) - 2 * slope * arc_cosine(-rho)


def energy_fluctuation(moments, slope: float, channels: int, batch: float) -> float:
    """Relative variance, over one layer's weights, of the energy it passes on,
    Ē = mean over the batch's N images, P positions and d channels of f(y)².

    Given its input, each channel's y is a Gaussian field over its own weights,
    so Var[Ē] = (1/d) · mean over point pairs of Cov(f(u)², f(v)²), with
    (J₂ the degree-2 arc-cosine kernel, ρ = cos θ)

        E[relu(u)² relu(v)²] = σ_u² σ_v² (3 sin θ cos θ + (π − θ)(1 + 2cos²θ)) / 2π = J₂(ρ),
        E[f(u)² f(v)²]        = (1 + a⁴) J₂(ρ) + 2a² J₂(−ρ).

    A fraction 1/N of the pairs lie in one image (moments S), the rest in two (X).
    """
    p = moments.shape[0] // 2
    scale, rho = _correlations(moments)
    theta = _host.arccos(rho)
    j2 = (3 * _host.sin(theta) * rho + (_host.pi - theta) * (1 + 2 * rho * rho)) / (2 * _host.pi)
    j2_flipped = (-3 * _host.sin(theta) * rho + theta * (1 + 2 * rho * rho)) / (2 * _host.pi)
    square_mean = (1 + slope ** 2) / 2
    cov = scale ** 2 * ((1 + slope ** 4) * j2 + 2 * slope ** 2 * j2_flipped - square_mean ** 2)
    within, between = cov[:p, :p].mean(), cov[:p, p:].mean()
    variance = within / batch + between * (1 - 1 / batch)
    mean = square_mean * float(_host.diag(moments)[:p].mean())
    return float(variance) / (channels * mean * mean) if mean > 0 else 0.0


def _apply_pending_rectifier(signal):
    """A rectifier just before a Conv2d or Linear: moments by the arc-cosine formula,
    and backward the factor E[f'²] = (1 + a²)/2 (½ for ReLU, Eq. 12)."""
    a = signal.slope
    if a == 1.0:
        return signal, lambda g: g
    gain = (1 + a * a) / 2
    s2 = signal.log_variance + energy_fluctuation(signal.moments, a, signal.channels, signal.batch)
    rectified = replace(signal, moments=rectified_moments(signal.moments, a), slope=1.0,
                        log_variance=s2)
    return rectified, lambda g: g * gain


def tap_index(shape, kernel_size, stride=1, padding=0):
    """For each output position (rows) and kernel tap (columns): the input
    position the tap reads, row-major, or H·W where it falls on the zero padding.
    Returns (index table of shape (H_out·W_out, kh·kw), (H_out, W_out)); the
    windows are ``functional.conv.window_geometry``'s."""
    (kernel, stride, padding), (h_out, w_out) = window_geometry(shape, kernel_size, stride, padding,
                                                                "tap_index")
    (h, w), (kh, kw), (sh, sw), (ph, pw) = shape, kernel, stride, padding
    rows = (_host.arange(h_out)[:, None] * sh - ph + _host.arange(kh))[:, None, :, None]
    cols = (_host.arange(w_out)[:, None] * sw - pw + _host.arange(kw))[None, :, None, :]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    index = _host.where(inside, rows * w + cols, h * w)
    return index.reshape(h_out * w_out, kh * kw), (h_out, w_out)


def _conv_forward(signal, conv):
    """E[y_p y_q] = c E[w²] Σ_t E[x_{p+t} x_{q+t}] over the in-map taps, + E[b²]."""
    index, shape = tap_index(signal.shape, conv.kernel_size, conv.stride, conv.padding)
    p = signal.positions
    # the two images' positions 0..2P-1, and 2P for the zeros of the padding
    inside = index < p
    both = _host.concatenate([_host.where(inside, index, 2 * p), _host.where(inside, index + p, 2 * p)])
    padded = _host.zeros((2 * p + 1, 2 * p + 1))
    padded[:2 * p, :2 * p] = signal.moments
    summed = sum(padded[_host.ix_(both[:, t], both[:, t])] for t in range(index.shape[1]))
    w2, b2 = _mean_square(conv.weight.data), _bias_mean_square(conv)
    d = conv.weight.shape[0]

    def backward(g):
        """G_in[q] = d E[w²] Σ of G_out over the (output, tap) pairs that read q."""
        to_input = sum(_host.bincount(index[:, t], weights=g, minlength=p + 1)
                       for t in range(index.shape[1]))
        return d * w2 * to_input[:p]
    return replace(signal, moments=signal.channels * w2 * summed + b2, shape=shape, channels=d), backward


def _linear_forward(signal, fc):
    """E[y y'] = E[w²] Σ_features E[x x'] (+ E[b²]); backward, each feature gets out·E[w²]·G_out."""
    w2, b2 = _mean_square(fc.weight.data), _bias_mean_square(fc)
    p, out = signal.positions, fc.weight.shape[0]
    m = signal.moments
    same, cross = _host.trace(m[:p, :p]), _host.trace(m[:p, p:])
    moments = w2 * signal.channels * _two_images(_host.eye(1) * same, _host.eye(1) * cross) + b2

    def backward(g):
        return _host.full(p, out * w2 * g[0])
    return replace(signal, moments=moments, shape=None, channels=out), backward


def _bias_mean_square(layer) -> float:
    return 0.0 if layer.bias is None else _mean_square(layer.bias.data)


def pool_bins(layer, shape):
    """The pixels (row-major indices) of every output of a MaxPool2d or SPP layer,
    and the output map's shape (None for SPP, whose output is a vector)."""
    h, w = shape
    if isinstance(layer, SPP):       # the bins of functional.conv.spp_bins, as the layer pools them
        def edges(size, n):
            return [range(start, stop) for start, stop in spp_bins(size, n)]
        bins = [_host.array([r * w + c for r in rows for c in cols])
                for n in layer.levels for rows in edges(h, n) for cols in edges(w, n)]
        return bins, None
    index, out_shape = tap_index(shape, layer.kernel_size, layer.stride or layer.kernel_size,
                                 layer.padding)
    return [row[row < h * w] for row in index], out_shape


def max_pool_moments(moments, bins, slope: float = 0.0, samples: int = MONTE_CARLO_SAMPLES, rng=None):
    """Max over each bin of f(y), y a Gaussian field with second moments ``moments``.

    The approximation: the pre-activations y of one channel are jointly
    Gaussian (each is a sum of c·k² terms with random weights) with the
    covariance the theory carries. Their correlation matters: the max of 4
    independent N(0, 1) has E[relu(max)²] ≈ 1.5, of 4 equal ones 0.5.
    The expectations over that Gaussian are computed by Monte Carlo: draw
    ``samples`` fields y = L z (L Lᵀ = M, z standard normal) and take the max
    of each bin. Returns

        pooled   E[m_a m_b] for the bins' outputs a, b
        routing  R[b, q] = E[1(q is the max of bin b) · f'(y_q)²]   (backward: G_in = Rᵀ G_out)
    """
    rng = rng if rng is not None else _host.random.default_rng(0)
    values, vectors = _host.linalg.eigh(moments)
    root = vectors * _host.sqrt(_host.clip(values, 0.0, None))
    positions = moments.shape[0]
    pooled_sums = _host.zeros((len(bins), len(bins)))
    routing = _host.zeros((len(bins), positions))
    chunk = max(1, min(samples, 2_000_000 // positions))     # bounded memory on large maps
    for start in range(0, samples, chunk):
        y = rng.standard_normal((min(chunk, samples - start), positions)) @ root.T
        pooled = _bin_maxima(y, bins, slope, routing)
        pooled_sums += pooled.T @ pooled
    return pooled_sums / samples, routing / samples


def _bin_maxima(y, bins, slope, routing):
    """f(max of each bin) for fields y (samples × positions); adds each bin's
    winners, weighted by f'(winner)², to ``routing``."""
    pooled = _host.empty((y.shape[0], len(bins)))
    rows = _host.arange(y.shape[0])
    for b, members in enumerate(bins):
        best = members[y[:, members].argmax(axis=1)]      # f is increasing: same winner as f(y)
        top = y[rows, best]
        pooled[:, b] = _host.where(top > 0, top, slope * top)
        slope_squared = _host.where(top > 0, 1.0, slope * slope)
        routing[b] += _host.bincount(best, weights=slope_squared, minlength=y.shape[1])
    return pooled


def _pool_forward(signal, layer, rng, samples):
    """Pool both images' fields at once (their bins side by side); the rectifier
    before the pool is applied inside ``max_pool_moments``."""
    bins, shape = pool_bins(layer, signal.shape)
    p = signal.positions
    pooled, routing = max_pool_moments(signal.moments, bins + [b + p for b in bins], signal.slope,
                                       samples, rng)
    routing = routing[:len(bins), :p]               # one image's gradients
    s2 = signal.log_variance + energy_fluctuation(signal.moments, signal.slope, signal.channels,
                                                  signal.batch)
    pooled_signal = replace(signal, moments=pooled, shape=shape, slope=1.0, log_variance=s2)
    return pooled_signal, lambda g: routing.T @ g


def _backward(steps, positions: int) -> list:
    """Run the backward steps from the last layer's output (G = 1 at its
    ``positions``) down; the std of ∂E/∂y at each weighted layer's output,
    relative to the last one's."""
    g, ratios = _host.ones(positions), []
    for step, is_layer_output in reversed(steps):
        if is_layer_output:
            ratios.append(math.sqrt(float(g.mean())))
        g = step(g)
    return ratios[::-1]
