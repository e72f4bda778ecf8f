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

**Beyond the mean: the typical net**, ``finite_width_stds``. A seed's variance is
the expectation times a product of one random factor per layer (Hanin & Nica
2019), so a typical seed sits below the mean at depth; this predicts the median
std and the sd of log std across seeds, forward and backward, carrying pairs of
real images through the same steps.

``predicted_stds(model, ...)`` picks one of the first two (``geometry=True``: the
second, with the third's keys added when it is given ``inputs``).
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
                   geometry: bool = False, input_shape=None, inputs=None, targets=None,
                   finite_width: bool = True) -> dict:
    """The theory's per-layer stds for this model's weighted layers, from their weights.

    Returns {"response_std": [...], "grad_ratio": [...]}: the predicted std of
    each layer's response for an input of std ``input_std``, and the predicted
    std of ∂E/∂y_l relative to the last layer's. The first layer sees the raw
    input (no ½) unless ``rectified_input``.

    ``geometry=False`` (default): the paper's idealized theory, Eq. 9 and its
    backward twin (``idealized_stds``). ``geometry=True``: the same theory on
    the net's actual maps — zero padding, max pooling, SPP
    (``geometry_aware_stds``; the map size comes from ``input_shape``,
    ``inputs`` or the model's ``spec``). With ``geometry=True`` and ``inputs``
    (and ``finite_width``, the default) it adds the typical seed and the
    spread across seeds of ``finite_width_stds``: "response_median",
    "response_spread", "grad_median", "grad_spread".
    """
    if geometry and inputs is not None and finite_width and not rectified_input:
        return finite_width_stds(model, inputs, targets)
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


# ----------------------------------------------------------------------------
# Beyond the mean: the typical net at finite width (minirect's extension)
# ----------------------------------------------------------------------------

def finite_width_stds(model, inputs, targets=None, *, pairs: int = 16,
                      samples: int = MONTE_CARLO_SAMPLES, seed: int = 0) -> dict:
    """The spread of the per-layer stds across seeds, and the typical (median) seed.

    At finite width a seed's signal is not the theory's expectation: one seed's
    variance at layer l is E[Var_l]·F_l with F_l a product of one random factor
    per layer. The finite-width theory implemented here (Hanin & Nica 2019,
    "Products of many large random matrices", generalized to conv maps, pools
    and a batch) rests on four assumptions:

    1. **Independent channels.** Given its input, each of a layer's d output
       channels is an independent Gaussian field over its own weights (forward),
       each of its c input channels an independent Gaussian field over its own
       weight column (backward). The energy the layer passes on is a mean of d
       (or c) i.i.d. channel energies e_j, so its factor has relative variance
       Var[e_j] / (d E[e_j]²).
    2. **Independent layers, log-normal product.** The factors of different
       layers are independent with small relative variances v_l, so
       log F_l is Gaussian with variance s_l² = Σ_{k≤l} v_k and mean −s_l²/2
       (E[F] = 1). Then one seed's log std has sd s_l/2, the median std is
       √E[Var_l]·exp(−s_l²/4) and the mean std √E[Var_l]·exp(−s_l²/8).
    3. **The mask is independent of the backward field** (the usual gradient-
       independence assumption): a ReLU's f'(y) comes from the forward weights,
       the gradient it gates from the weights above.
    4. **Uniform softmax at init**: ∂E/∂z = (p − onehot)/N with p ≈ 1/K, so two
       images' logit gradients have cross-moment 1 − 1/K (same label) or −1/K
       (different labels) against 1 − 1/K within one image.

    **Why a ReLU layer's v is about 5/n (Hanin & Nica).** For n i.i.d. units
    relu(z)², z ~ N(0, σ²): E = σ²/2, E[relu(z)⁴] = 3σ⁴/2, so the relative
    variance of their mean is (3/2 − 1/4)/(1/4)/n = 5/n. Here the units of one
    channel (positions × images in the batch) are correlated, so per channel

        Var[e_j] = (1/N) mean_{p,q in one image} Cov(f(u_p)², f(u_q)²)
                   + (1 − 1/N) mean_{p in one image, q in another} Cov(f(u_p)², f(u_q)²)

    (``energy_fluctuation``, with the degree-2 arc-cosine kernel): uncorrelated
    units average the fluctuation away, fully correlated ones (alike images:
    each channel all-or-nothing) give 5/d — the effective width is between
    d and d·N·P. Backward, per input channel e_j = uᵀKu with u the Gaussian
    gradient field from the weights above (covariance C) and K the random
    routing of the mask and the max pools: Var[uᵀKu] = E[tr(KC)²] + 2E[tr(KCKC)]
    − (E tr KC)², with E[f'_p f'_q] from the arc-cosine kernel of degree 0 and
    the pools' winners by Monte Carlo.

    **Pairs of real images.** The cross-moments that decide how alike two
    images look vary from pair to pair (mean-subtracted digits are as often
    anti-correlated as correlated), and the fluctuation depends on their
    *square*, not on the mean pair's. So the moments are carried for ``pairs``
    pairs of images of ``inputs`` (image i with image i + N/2), each through
    the same steps as ``geometry_aware_stds`` (padding, arc-cosine, Gaussian
    max pools), and v_l is averaged over the pairs.

    Returns, per weighted layer, ``geometry_aware_stds``'s "rms_response"
    (√E[Var]), "response_std" and "grad_ratio", and: "response_mean" (the mean
    std, √E[Var]·exp(−s²/8) with this s²), "response_median",
    "response_spread" (sd of log std across seeds), "grad_median" and
    "grad_spread" (of the ratio
    std ∂E/∂y_l / std ∂E/∂y_L; 0 at the last layer).
    """
    mean = geometry_aware_stds(model, inputs=inputs, samples=samples, seed=seed)
    x = backend.to_numpy(getattr(inputs, "data", inputs)).astype("float64")
    n = x.shape[0]
    rng = _host.random.default_rng(seed)
    per_pair = max(2000, samples // max(pairs, 1))
    classes = weighted_layers(model)[-1][1].weight.shape[0]
    same_label = _same_label_share(targets, n, classes)
    forward, backward = [], []
    for i in range(min(pairs, n // 2)):
        s2_forward, steps, top = _pair_forward(model, x[[i, i + n // 2]], n, rng, per_pair)
        forward.append(s2_forward)
        top_gradient = logit_gradient_moments(top.moments, classes, same_label, per_pair, rng)
        backward.append(_pair_backward(steps, top_gradient, n))
    s2 = _host.mean(_host.array(forward), axis=0)
    b2 = _host.mean(_host.array(backward), axis=0)
    rms, grad = _host.array(mean["rms_response"]), _host.array(mean["grad_ratio"])

    def floats(values):
        return [float(v) for v in values]
    return {"rms_response": mean["rms_response"], "response_std": mean["response_std"],
            "grad_ratio": mean["grad_ratio"], "response_mean": floats(rms * _host.exp(-s2 / 8)),
            "response_median": floats(rms * _host.exp(-s2 / 4)),
            "response_spread": floats(_host.sqrt(s2) / 2),
            "grad_median": floats(grad * _host.exp(-b2 / 4)), "grad_spread": floats(_host.sqrt(b2) / 2)}


def _same_label_share(targets, n, classes) -> float:
    """The share of pairs of images in the batch with equal labels (1/K without targets)."""
    if targets is None:
        return 1 / classes
    counts = _host.bincount(backend.to_numpy(getattr(targets, "data", targets)).astype(int))
    return float((counts * (counts - 1)).sum()) / (n * (n - 1))


def logit_gradient_moments(moments, classes: int, same_label: float, samples: int = 20000,
                           rng=None):
    """(E|g|², √E[(g·g')²]) for the logit gradients g = softmax(z) − onehot(y) of two
    images (the 1/N of the mean loss left out), their logits z, z' drawn with the
    theory's 2 × 2 moments ``moments`` for every class alone (assumption 4), a share
    ``same_label`` of pairs with equal labels.
    Small logits give (1 − 1/K, √(s(1 − 1/K)² + (1 − s)/K²)); larger ones add the
    softmax the two images share to both images' gradients, and the pair looks more alike."""
    rng = rng if rng is not None else _host.random.default_rng(0)
    values, vectors = _host.linalg.eigh(moments)
    root = vectors * _host.sqrt(_host.clip(values, 0.0, None))
    z = rng.standard_normal((samples, classes, 2)) @ root.T              # (S, K, 2)
    p = _host.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g1, g2 = p[:, :, 0].copy(), p[:, :, 1].copy()
    g1[:, 0] -= 1                                                        # image 1: label 0
    same, other = g2.copy(), g2.copy()
    same[:, 0] -= 1
    other[:, 1] -= 1
    cross = (same_label * ((g1 * same).sum(1) ** 2).mean()
             + (1 - same_label) * ((g1 * other).sum(1) ** 2).mean())
    return float((g1 * g1).sum(1).mean()), math.sqrt(cross)


def _pair_signal(images, batch) -> _Signal:
    """The moments of two images (2 × C × H × W) side by side, per channel."""
    c = images.shape[1]
    flat = images.reshape(2, c, -1)
    both = _host.concatenate([flat[0], flat[1]], axis=1)             # (C, 2P)
    shape = images.shape[2:] if images.ndim == 4 else None
    return _Signal(both.T @ both / c, shape, c, batch)


def _pair_forward(model, images, batch, rng, samples):
    """One pair's forward pass: s² at each weighted layer's output, and the
    steps the backward pass needs (masks, pool winners, layers)."""
    signal, s2, steps = _pair_signal(images, batch), [], []
    for layer in _chain(model):
        if isinstance(layer, (Conv2d, Linear)):
            if signal.slope != 1.0:
                steps.append(("mask", signal.moments, signal.slope, signal.channels))
            signal, _ = _apply_pending_rectifier(signal)
            p_in, c_in, w2 = signal.positions, signal.channels, _mean_square(layer.weight.data)
            if isinstance(layer, Conv2d):
                index, _ = tap_index(signal.shape, layer.kernel_size, layer.stride, layer.padding)
                signal, _ = _conv_forward(signal, layer)
                steps.append(("conv", index, p_in, layer.weight.shape[0] * w2, c_in))
            else:
                signal, _ = _linear_forward(signal, layer)
                steps.append(("linear", None, p_in, layer.weight.shape[0] * w2, c_in))
            s2.append(signal.log_variance + energy_fluctuation(signal.moments, 1.0, signal.channels,
                                                               batch))
        elif isinstance(layer, (ReLU, LeakyReLU, PReLU)):
            signal = signal.with_slope(_negative_slope(layer))
        elif isinstance(layer, (MaxPool2d, SPP)):
            signal, winners = _pair_pool(signal, layer, rng, samples)
            steps.append(("pool", *winners))
        elif isinstance(layer, Flatten):
            signal = replace(signal, shape=None)
    return s2, steps, signal


def _pair_pool(signal, layer, rng, samples):
    """Max pool / SPP of one pair's Gaussian field (as ``max_pool_moments``), keeping
    each sample's winners and f'(winner) for the backward pass."""
    bins, shape = pool_bins(layer, signal.shape)
    p = signal.positions
    values, vectors = _host.linalg.eigh(signal.moments)
    y = rng.standard_normal((samples, 2 * p)) @ (vectors * _host.sqrt(_host.clip(values, 0.0, None))).T
    best = _host.stack([b[y[:, b].argmax(axis=1)] for b in bins + [b + p for b in bins]], axis=1)
    top = _host.take_along_axis(y, best, axis=1)
    a = signal.slope
    pooled = _host.where(top > 0, top, a * top)
    s2 = signal.log_variance + energy_fluctuation(signal.moments, a, signal.channels, signal.batch)
    pooled_signal = replace(signal, moments=pooled.T @ pooled / samples, shape=shape, slope=1.0,
                            log_variance=s2)
    return pooled_signal, (best, _host.where(top > 0, 1.0, a), 2 * p, signal.channels)


def _mask_moments(moments, slope):
    """(E[f'(u) f'(v)], E[f'(u)² f'(v)²]) for Gaussian (u, v): f' is 1 or a, and
    P(u > 0, v > 0) = (π − θ)/2π, P(u > 0 > v) = θ/2π (arc-cosine kernel of degree 0)."""
    theta = _host.arccos(_correlations(moments)[1])
    same, differ = (_host.pi - theta) / (2 * _host.pi), theta / (2 * _host.pi)
    return (1 + slope ** 2) * same + 2 * slope * differ, (1 + slope ** 4) * same + 2 * slope ** 2 * differ


def _mask_fluctuation(c, mask_squares, mean_square, channels, batch):
    """v of a step whose routing is a diagonal mask m = f'² (``mask_squares`` = E[m_p m_q],
    ``mean_square`` = E[m]): Cov(m_p u_p², m_q u_q²) = E[m_p m_q](C_pp C_qq + 2C_pq²) − E[m]² C_pp C_qq."""
    p = c.shape[0] // 2
    d = _host.diag(c)
    outer = _host.outer(d, d)
    cov = mask_squares * (outer + 2 * c * c) - mean_square ** 2 * outer
    variance = cov[:p, :p].mean() / batch + cov[:p, p:].mean() * (1 - 1 / batch)
    mean = mean_square * d[:p].mean()
    return float(variance) / (channels * mean * mean) if mean > 0 else 0.0


def _pool_fluctuation(c, best, fprime, channels, batch):
    """v of a pool step: per channel and image e = uᵀKu, K[b, b'] = f'_b f'_b' [same winner],
    Var = E[tr(KC)²] + 2E[tr(KCKC)] − (E tr KC)², between two images E[tr(K₁C₁₁)tr(K₂C₂₂)]
    + 2E[tr(K₁C₁₂K₂C₂₁)] − E tr(K₁C₁₁) E tr(K₂C₂₂), by Monte Carlo over the winners."""
    b = best.shape[1] // 2
    k = (best[:, :, None] == best[:, None, :]) * fprime[:, :, None] * fprime[:, None, :]
    k1, k2 = k[:, :b, :b], k[:, b:, b:]
    a1, a2 = k1 @ c[:b, :b], k2 @ c[b:, b:]
    t1, t2 = _host.trace(a1, axis1=1, axis2=2), _host.trace(a2, axis1=1, axis2=2)
    within = (t1 * t1).mean() + 2 * _host.einsum("sab,sba->s", a1, a1).mean() - t1.mean() ** 2
    between = ((t1 * t2).mean() + 2 * _host.einsum("sab,sba->s", k1 @ c[:b, b:], k2 @ c[b:, :b]).mean()
               - t1.mean() * t2.mean())
    variance = within / batch + between * (1 - 1 / batch)
    return float(variance) / (channels * t1.mean() ** 2) if t1.mean() > 0 else 0.0


def _pair_backward(steps, top_gradient, batch):
    """One pair's backward pass: s² of the gradient ratio at each weighted layer
    (0 at the last). C is one channel's gradient covariance, both images side by
    side, starting from the logits' (``logit_gradient_moments``): its
    cross-image block enters v only squared, so √E[(g·g')²] stands for all pairs."""
    within, cross = top_gradient
    c = _two_images(_host.eye(1) * within, _host.eye(1) * cross)
    s2, ratios, pending = 0.0, [], None
    for kind, *step in reversed(steps):
        if kind in ("conv", "linear"):
            table, p_in, scale, channels = step
            if pending is not None:          # two weighted layers with no rectifier between
                s2 += _mask_fluctuation(c, 1.0, 1.0, pending, batch)
            ratios.append(s2)
            if kind == "conv":
                c = scale * _conv_transpose(c, table, p_in)
            else:
                c = scale * _host.kron(_host.array([[c[0, 0], c[0, 1]], [c[1, 0], c[1, 1]]]),
                                       _host.eye(p_in))
            pending = channels
        elif kind == "mask":
            moments, slope, channels = step
            gate, gate_squares = _mask_moments(moments, slope)
            s2 += _mask_fluctuation(c, gate_squares, (1 + slope ** 2) / 2, channels, batch)
            c, pending = gate * c, None
        else:                                # pool: route to the winners
            best, fprime, positions, channels = step
            s2 += _pool_fluctuation(c, best, fprime, channels, batch)
            flat = (best[:, :, None] * positions + best[:, None, :]).ravel()
            weights = (fprime[:, :, None] * fprime[:, None, :] * c).ravel()
            c = _host.bincount(flat, weights=weights, minlength=positions ** 2).reshape(
                positions, positions) / best.shape[0]
            pending = None
    return ratios[::-1]


def _conv_transpose(c, index, p_in):
    """Σ_t S_t C S_tᵀ: the gradient covariance sent back along the in-map taps
    (S_t[q, o] = 1 where output o's tap t reads input q); both images at once."""
    inside = index < p_in
    sink = 2 * p_in
    padded = _host.zeros((sink + 1, sink + 1))
    for t in range(index.shape[1]):
        rows = _host.concatenate([_host.where(inside[:, t], index[:, t], sink),
                                  _host.where(inside[:, t], index[:, t] + p_in, sink)])
        block = _host.ix_(rows, rows)
        padded[block] += c          # one tap reads distinct inputs: no repeated index but the sink
    return padded[:sink, :sink]
