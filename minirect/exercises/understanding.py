"""Exercises that ask for understanding: derivations and predictions.

Each answer is a number, an array or a short function, checked on seeded
cases like the code exercises. The student derives it (``describe`` gives the
question and hints, never the final formula); the expected values come from
minirect's own code (``minirect.theory``, ``minirect.diagnostics``,
``minirect.init``, ``minirect.optim``, ``minirect.functional``,
``minirect.experiments``) or from an independent route (exact rational
arithmetic, quadrature, a trace of covariance matrices), not from the
reference solution.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from fractions import Fraction

from .. import backend, diagnostics, init, nn, optim, theory
from .. import functional as F
from ..autograd import Tensor
from ..experiments import report
from ._checker import Case, Exercise, Mistake, case_rng, engine_grads, np

@contextmanager
def _rng_untouched():
    """Build layers for ``expected`` without moving minirect's random generator
    (grading in the middle of a seeded notebook must not change its later draws)."""
    state = backend.get_rng_state()
    try:
        yield
    finally:
        backend.set_rng_state(state)


# ============================================================================
# Unit: autograd — why gradcheck uses central differences
# ============================================================================


def central_difference_error(c, x, eps):
    """Exact errors of the central and forward differences of f(x) = Σ_k c[k] x^k (degree ≤ 4).

    Taylor: f(x ± ε) = f ± ε f' + ε²/2 f'' ± ε³/6 f''' + ε⁴/24 f''''. The central
    difference cancels the even powers: its error is ε²/6 f''' (exact for degree ≤ 4,
    the ε⁴ f''''' term is 0). The forward difference keeps ε/2 f'' + ε²/6 f''' + ε³/24 f''''.
    """
    c0, c1, c2, c3, c4 = (list(c) + [0.0] * 5)[:5]
    f2 = 2 * c2 + 6 * c3 * x + 12 * c4 * x**2
    f3 = 6 * c3 + 24 * c4 * x
    f4 = 24 * c4
    central = eps**2 / 6 * f3
    forward = eps / 2 * f2 + eps**2 / 6 * f3 + eps**3 / 24 * f4
    return central, forward


def _exact_difference_errors(c, x, eps):
    """The same errors in exact rational arithmetic, straight from the definitions."""
    coef = [Fraction(float(v)) for v in c]
    e = Fraction(float(eps))

    def f(t):
        return sum(ck * t**k for k, ck in enumerate(coef))

    def df(t):
        return sum(k * ck * t**(k - 1) for k, ck in enumerate(coef) if k > 0)
    central, forward = [], []
    for xi in np.asarray(x, dtype="float64").reshape(-1):
        t = Fraction(float(xi))
        central.append(float((f(t + e) - f(t - e)) / (2 * e) - df(t)))
        forward.append(float((f(t + e) - f(t)) / e - df(t)))
    shape = np.shape(x)
    return np.array(central).reshape(shape), np.array(forward).reshape(shape)


def _difference_cases():
    cases = []
    for k, (degree, eps) in enumerate([(3, 1e-2), (4, 1e-1), (4, 1e-3), (2, 0.05)]):
        rng = case_rng(k)
        c = np.zeros(5)
        c[:degree + 1] = rng.uniform(-2, 2, degree + 1)
        x = rng.uniform(-2, 2, 6)
        cases.append(Case(f"degree {degree}, eps {eps:g}", dict(c=c, x=x, eps=eps)))
    return cases


CENTRAL_DIFFERENCE = Exercise(
    name="central_difference_error", title="Why gradcheck uses central differences",
    task="minirect's gradcheck compares each backward pass with the central difference "
         "(f(x + ε) − f(x − ε)) / (2ε). For the polynomial f(x) = Σ_k c[k] x^k (c has 5 "
         "entries: degree at most 4) return, at every point of the array x, the exact error "
         "of the central difference, D_c(x) − f'(x), and of the forward difference "
         "(f(x + ε) − f(x)) / ε, D_f(x) − f'(x). Exact: not only the leading term.",
    math="f(x ± ε) = f ± ε f' + ε²/2 f'' ± ε³/6 f''' + ε⁴/24 f'''' (exact for degree ≤ 4). "
         "Central: the even powers cancel, error = ε²/6 f''' = ε² (c3 + 4 c4 x). Forward: "
         "error = ε/2 f'' + ε²/6 f''' + ε³/24 f''''. The central error is O(ε²), the forward "
         "one O(ε): central differences are far more accurate for the same ε.",
    solution=central_difference_error, outputs=("central", "forward"), cases=_difference_cases,
    expected=_exact_difference_errors,
    mistakes=[
        Mistake("the Taylor term of f''' is ε³/6 f''' (3! = 6); after dividing by 2ε the "
                "central error is ε²/6 · f''', not ε²/2 · f'''",
                lambda c, x, eps: (3 * central_difference_error(c, x, eps)[0],
                                   central_difference_error(c, x, eps)[1])),
        Mistake("central differences are not exact: the odd powers ε³ f''' survive the "
                "subtraction", lambda c, x, eps: (0 * x, central_difference_error(c, x, eps)[1])),
        Mistake("that is only the leading term ε/2 · f'' of the forward error; the question asks "
                "for the exact error, so keep the ε² and ε³ terms",
                lambda c, x, eps: (central_difference_error(c, x, eps)[0],
                                   eps * (c[2] + 3 * c[3] * x + 6 * c[4] * x**2))),
    ],
    hints=("Expand f(x + ε) and f(x − ε) in Taylor series around x; for a polynomial of degree 4 "
           "the series stops after the ε⁴ term, so the expansion is exact.",
           "Subtract the two expansions: which powers of ε cancel? Then divide by 2ε.",
           "For the forward difference nothing cancels: keep every term after dividing by ε."),
    stars=2, unit="autograd", kind="derive")


# ============================================================================
# Unit: broadcasting — a mean broadcast back
# ============================================================================

def centering_backward(x, gy):
    """y = x − mean over the batch (axis 0, kept); return dE/dx = gy − mean_n(gy).

    x_i reaches y along two paths: y_i directly (∂ = 1) and every y_j through
    the mean (∂ = −1/N each); summing the second path gives −mean(gy).
    """
    return gy - gy.mean(axis=0, keepdims=True)


def _centering_cases():
    cases = []
    for k, shape in enumerate([(4, 3), (8, 2, 3, 3), (1, 5)]):
        rng = case_rng(k)
        cases.append(Case(f"float32 x{shape}", dict(x=rng.standard_normal(shape).astype("float32"),
                                                    gy=rng.standard_normal(shape).astype("float32"))))
    rng = case_rng(3)
    cases.append(Case("float64 gradcheck", dict(x=rng.standard_normal((3, 4)),
                                                gy=rng.standard_normal((3, 4))), gradcheck=True))
    return cases


CENTERING = Exercise(
    name="centering_backward", title="Mean subtraction backward: the mean's gradient is broadcast back",
    task="The forward pass subtracts the batch mean of every feature: y = x − x.mean(axis=0, "
         "keepdims=True), x of shape (N, ...) (as in per-pixel mean subtraction, or the "
         "centring step of batch normalization). Return gx = dE/dx given gy = dE/dy.",
    math="y_j = x_j − (1/N) Σ_i x_i. ∂y_j/∂x_i = [i = j] − 1/N, so dE/dx_i = gy_i − (1/N) Σ_j gy_j: "
         "gx = gy − gy.mean(axis=0, keepdims=True).",
    solution=centering_backward, outputs=("gx",), cases=_centering_cases,
    expected=lambda x, gy: engine_grads(lambda t: t - t.mean(axis=0, keepdims=True), (x,), gy, (0,)),
    forward=lambda x, gy: x - x.mean(axis=0, keepdims=True), wrt=("x",),
    mistakes=[
        Mistake("the mean depends on x too: x_i also reaches every y_j through the mean, and "
                "those paths add a term", lambda x, gy: (gy,)),
        Mistake("the mean is over the batch axis only: average gy over axis 0, not over every axis",
                lambda x, gy: (gy - gy.mean(),)),
        Mistake("x_i reaches every y_j through the mean, not only y_i: sum over j of gy_j / N, "
                "not gy_i / N", lambda x, gy: (gy * (1 - 1 / len(x)),)),
    ],
    hints=("Write y_j in terms of all the x_i and take ∂y_j/∂x_i: it has a part for i = j and a "
           "part for every j.",
           "The chain rule sums over every y_j that x_i influences. The broadcast in the forward "
           "pass becomes a sum in the backward pass (sum_to).",
           "Check: adding a constant to every gy_n of a feature cannot change gx. Why?"),
    stars=2, unit="broadcasting", kind="derive")


# ============================================================================
# Unit: convolution — padding, cost, receptive field
# ============================================================================

def padding_factor(s, k):
    """Average fraction of a k×k "same"-padded window (stride 1) that lies inside an s×s map.

    Rows and columns are independent, so the 2-D fraction is the square of the
    1-D one: the number of (position, tap) pairs inside the map over s·k.
    """
    p = (k - 1) // 2
    inside = sum(1 for pos in range(s) for t in range(-p, k - p) if 0 <= pos + t < s)
    return (inside / (s * k)) ** 2


def _engine_padding_factor(s, k):
    index, _ = theory.tap_index((s, s), k, stride=1, padding=(k - 1) // 2)
    return (float((index < s * s).mean()),)


PADDING_FACTOR = Exercise(
    name="padding_factor", title="How much of a padded window lies on the map",
    task="A k×k convolution (k odd) with stride 1 and 'same' zero padding (k − 1)/2 runs on an "
         "s×s map. At a border pixel some of the k² taps fall on the padding. Return the "
         "fraction of taps that fall inside the map, averaged over the s² output positions. "
         "(With i.i.d. inputs and weights this is the factor by which padding shrinks "
         "Var[y] compared with Eq. 7's n = k²c; minirect's geometry-aware theory uses it.)",
    math="Per axis, position i sees the taps t in [−p, p] with 0 ≤ i + t < s; summing over i gives "
         "s·k − p(p + 1) when s > p. The 2-D window is a product of two 1-D windows, so the "
         "fraction is (Σ_i inside_1D(i) / (s k))² — for s = 4, k = 3: (10/12)² = 100/144.",
    solution=padding_factor, outputs=("fraction",),
    cases=lambda: [Case(f"s={s}, k={k}", dict(s=s, k=k)) for s, k in
                   [(4, 3), (8, 3), (2, 3), (7, 5), (2, 5), (1, 3), (14, 3), (56, 3), (3, 7)]],
    expected=_engine_padding_factor,
    mistakes=[
        Mistake("the window is 2-D: the fractions of its rows and of its columns multiply",
                lambda s, k: math.sqrt(padding_factor(s, k))),
        Mistake("that is the share of positions whose whole window is inside the map; the "
                "question averages the fraction of taps inside over every position",
                lambda s, k: (max(s - k + 1, 0) / s) ** 2),
        Mistake("only the outermost ring of pixels loses taps when k = 3, but every position "
                "within (k − 1)/2 of the border loses some: count them all",
                lambda s, k: ((s * k - 2 * ((k - 1) // 2)) / (s * k)) ** 2),
    ],
    hints=("Think in 1-D first: for a position i on a line of s pixels, how many of the k taps "
           "i − p … i + p land on 0 … s − 1?",
           "The k×k window is a row window times a column window: how do the 2-D and the 1-D "
           "fractions relate?",
           "Check: a 3×3 'same' conv on a 2×2 map sees 4 of its 9 taps at every position."),
    stars=2, unit="convolution", kind="derive")


def conv_layer_cost(N, C, H, W, D, k, stride, padding):
    """Parameters, im2col bytes (float32) and GEMM FLOPs of a k×k conv with D filters and a bias."""
    OH = (H + 2 * padding - k) // stride + 1
    OW = (W + 2 * padding - k) // stride + 1
    params = D * C * k * k + D
    cols_bytes = 4 * (C * k * k) * (N * OH * OW)
    flops = 2 * D * (C * k * k) * (N * OH * OW)
    return params, cols_bytes, flops


def _engine_conv_cost(N, C, H, W, D, k, stride, padding):
    with _rng_untouched():
        conv = nn.Conv2d(1, 1, 1)                    # the layer's parameters, counted by minirect
    conv.weight.data = np.zeros((D, C, k, k), dtype="float32")
    conv.bias.data = np.zeros(D, dtype="float32")
    params = sum(p.size for p in conv.parameters())
    # one channel of one sample: im2col's shape is (k², OH·OW); C channels and N samples scale it
    taps, positions = F.im2col(np.zeros((1, 1, H, W), dtype="float32"), (k, k), stride, padding).shape
    rows, cols = C * taps, N * positions
    return params, 4 * rows * cols, 2 * D * rows * cols


_COST_CASES = [("model B stage-1 conv, batch 128", (128, 256, 56, 56, 256, 3, 1, 1)),
               ("conv1 7×7/2 on 224×224 RGB, batch 128", (128, 3, 224, 224, 96, 7, 2, 3)),
               ("digits 8×8, 32 channels, batch 64", (64, 32, 8, 8, 32, 3, 1, 1)),
               ("stride 2, no padding", (2, 4, 9, 7, 6, 3, 2, 0)),
               ("2×2 conv of model 14, padding 1", (128, 128, 36, 36, 128, 2, 1, 1))]

CONV_COST = Exercise(
    name="conv_layer_cost", title="A conv layer's parameters, im2col memory and FLOPs",
    task="A conv layer has D filters of size k×k over C input channels, with a bias, and runs "
         "with `stride` and `padding` on a batch of N maps of H×W. minirect computes it as im2col "
         "(float32, 4 bytes per entry) followed by one matrix product. Return (params, "
         "cols_bytes, flops): the number of learned parameters, the bytes of the im2col matrix, "
         "and the floating-point operations of the matrix product (a multiply and an add count "
         "as two; ignore the bias add).",
    math="params = D·C·k² + D. OH = (H + 2p − k)//s + 1. cols is (C·k², N·OH·OW): "
         "bytes = 4·C·k²·N·OH·OW. The GEMM (D × Ck²)·(Ck² × N·OH·OW) does D·Ck²·N·OH·OW "
         "multiply-adds: flops = 2·D·C·k²·N·OH·OW.",
    solution=conv_layer_cost, outputs=("params", "cols_bytes", "flops"),
    cases=lambda: [Case(label, dict(zip(("N", "C", "H", "W", "D", "k", "stride", "padding"), args)))
                   for label, args in _COST_CASES],
    expected=_engine_conv_cost,
    mistakes=[
        Mistake("each filter also has a bias: D more parameters",
                lambda N, C, H, W, D, k, stride, padding: (
                    D * C * k * k,) + conv_layer_cost(N, C, H, W, D, k, stride, padding)[1:]),
        Mistake("the output size counts the padding: OH = (H + 2·padding − k) // stride + 1",
                lambda N, C, H, W, D, k, stride, padding: conv_layer_cost(N, C, H - 2 * padding,
                                                                          W - 2 * padding, D, k,
                                                                          stride, 0)),
        Mistake("the output map size divides by the stride: OH = (H + 2·padding − k) // stride + 1",
                lambda N, C, H, W, D, k, stride, padding: conv_layer_cost(N, C, H, W, D, k, 1, padding)),
        Mistake("the column matrix holds float32 entries: 4 bytes each",
                lambda N, C, H, W, D, k, stride, padding: (
                    lambda p, b, f: (p, b / 4, f))(*conv_layer_cost(N, C, H, W, D, k, stride, padding))),
        Mistake("a multiply-add is two floating-point operations",
                lambda N, C, H, W, D, k, stride, padding: (
                    lambda p, b, f: (p, b, f / 2))(*conv_layer_cost(N, C, H, W, D, k, stride, padding))),
    ],
    hints=("im2col makes one row per (input channel, kernel tap) and one column per output pixel "
           "of every sample. How many output pixels does the layer have?",
           "The conv is one matrix product of the (D × C·k²) weight matrix with the column matrix: "
           "count the multiply-adds of a matrix product.",
           "Look at the bytes for the paper's model B at batch 128: what would an engine that "
           "builds the whole batch's column matrix at once need in memory?"),
    stars=2, unit="convolution", kind="derive")


def receptive_field(layers):
    """Side of the input region one unit of the last layer sees; layers = ((kernel, stride), ...).

    Going down from one unit: a layer with kernel k widens the region by k − 1
    steps of the layer's input grid, whose spacing on the image is the product
    of the strides below it: r = 1 + Σ_l (k_l − 1) Π_{j<l} s_j.
    """
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r


def _engine_receptive_field(layers):
    """Differentiate one output unit through a 1-D stack of all-ones convs and count the
    input pixels that get a gradient."""
    size = 2 + sum(k * math.prod(s for _, s in layers[:i]) for i, (k, _) in enumerate(layers))
    x = Tensor(np.ones((1, 1, 1, size)), requires_grad=True)
    y = x
    for k, s in layers:
        y = F.conv2d(y, Tensor(np.ones((1, 1, 1, k))), stride=(1, s))
    gy = np.zeros(y.shape)
    gy[0, 0, 0, 0] = 1.0
    y.backward(gy)
    return (int((np.asarray(x.grad) != 0).sum()),)


def _receptive_cases():
    model_b = ((7, 2), (2, 2)) + ((3, 1),) * 6 + ((2, 2),) + ((3, 1),) * 6 + ((2, 2),) + ((3, 1),) * 6
    model_14 = ((7, 2), (3, 3)) + ((2, 1),) * 4 + ((2, 2),) + ((2, 1),) * 6
    cases = [Case("two 3×3 convs", dict(layers=((3, 1), (3, 1)))),
             Case("3×3 conv, 2×2 pool, 3×3 conv", dict(layers=((3, 1), (2, 2), (3, 1)))),
             Case("model B's convs and pools (Table 3)", dict(layers=model_b)),
             Case("the 14-layer model (Table 1)", dict(layers=model_14))]
    for j in range(2):
        rng = case_rng(j)
        layers = tuple((int(rng.integers(1, 6)), int(rng.integers(1, 3))) for _ in range(6))
        cases.append(Case(f"random stack {j}", dict(layers=layers)))
    return cases


RECEPTIVE_FIELD = Exercise(
    name="receptive_field", title="The receptive field of a stack of convs and pools",
    task="`layers` lists the layers of a stack from the input up, as (kernel, stride) pairs; convs "
         "and pools alike, square windows, padding ignored (it does not change the size of the "
         "region). Return the side, in input pixels, of the input region that one unit of the last "
         "layer depends on.",
    math="From the top: one unit sees k_L units of the layer below; each extra tap of layer l is "
         "one step on layer l's input grid, which is Π_{j<l} s_j input pixels. "
         "r = 1 + Σ_l (k_l − 1) Π_{j<l} s_j.",
    solution=receptive_field, outputs=("r",), cases=_receptive_cases,
    expected=_engine_receptive_field,
    mistakes=[
        Mistake("a stride spreads the layers above it: a tap of a layer after a stride-s layer "
                "is s input pixels from its neighbour", lambda layers: 1 + sum(k - 1 for k, _ in layers)),
        Mistake("a layer's own stride does not widen its window; only the strides of the layers "
                "below it count", lambda layers: 1 + sum(
                    (k - 1) * math.prod(s for _, s in layers[:i + 1]) for i, (k, _) in enumerate(layers))),
        Mistake("neighbouring windows overlap: each layer adds k − 1 (times the spacing) to the "
                "region, not k", lambda layers: sum(
                    k * math.prod(s for _, s in layers[:i]) for i, (k, _) in enumerate(layers))),
    ],
    hints=("Walk down from one unit of the last layer: how many units of the layer below does it "
           "see, and how many more does each further layer add?",
           "How far apart, in input pixels, are two neighbouring units of layer l's input? "
           "Which strides does that depend on?",
           "Check: two 3×3 convs see 5×5; a 3×3 conv after a 2×2/2 pool after a 3×3 conv sees 8×8."),
    stars=2, unit="convolution", kind="derive")


# ============================================================================
# Unit: rectifiers — PReLU's moments
# ============================================================================

def prelu_output_moments(a, std):
    """Mean, second moment and variance of x = PReLU_a(y) for y ~ N(0, std²).

    E[x²] = ½ (1 + a²) σ²  (each half of the symmetric y carries half the second moment)
    E[x]  = (1 − a) σ / √(2π)  (E[max(0, y)] = σ/√(2π), E[min(0, y)] = −σ/√(2π))
    """
    second = 0.5 * (1 + a * a) * std * std
    mean = (1 - a) * std / math.sqrt(2 * math.pi)
    return mean, second, second - mean * mean


def _quadrature_prelu_moments(a, std):
    """E[x²] from minirect's arc-cosine kernel; E[x] by the trapezoid rule on each half-line."""
    second = float(theory.rectified_moments(np.array([[std * std]]), a)[0, 0])
    y = np.linspace(0.0, 14.0 * std, 200001)
    density = np.exp(-0.5 * (y / std) ** 2) / (std * math.sqrt(2 * math.pi))
    positive = float(np.trapezoid(y * density, y))           # E[max(0, y)]
    mean = positive - a * positive                          # E[min(0, y)] = −E[max(0, y)]
    return mean, second, second - mean * mean


PRELU_MOMENTS = Exercise(
    name="prelu_output_moments", title="What PReLU passes on: E[x], E[x²] and Var[x] (Eq. 8, 15)",
    task="y is a zero-mean Gaussian with standard deviation `std`, and x = max(0, y) + "
         "a·min(0, y) is its PReLU output. Return (mean, second_moment, variance) = "
         "(E[x], E[x²], Var[x]) as floats. (Sec. 2.2 propagates E[x²], not Var[x]: this "
         "exercise shows why the two differ.)",
    math="E[x²] = E[y²; y > 0] + a² E[y²; y < 0] = ½(1 + a²)σ². E[max(0, y)] = σ/√(2π), "
         "E[min(0, y)] = −σ/√(2π), so E[x] = (1 − a)σ/√(2π), and Var[x] = E[x²] − E[x]².",
    solution=prelu_output_moments, outputs=("mean", "second_moment", "variance"),
    cases=lambda: [Case(f"a={a}, std={s}", dict(a=a, std=s)) for a, s in
                   [(0.0, 1.0), (0.25, 1.0), (0.25, 0.37), (1.0, 2.0), (0.681, 1.5), (-0.5, 1.0),
                    (2.0, 0.1)]],
    expected=_quadrature_prelu_moments,
    mistakes=[
        Mistake("the negative half contributes a·E[min(0, y)], which is negative: E[x] = "
                "E[max(0, y)] + a·E[min(0, y)]",
                lambda a, std: (lambda m, s, v: ((1 + a) / (1 - a) * m if a != 1 else m, s,
                                                 s - ((1 + a) / (1 - a) * m if a != 1 else m) ** 2))(
                    *prelu_output_moments(a, std))),
        Mistake("the negative side is scaled by a, so its square by a²: the second moment has "
                "(1 + a²), not (1 + a)",
                lambda a, std: (prelu_output_moments(a, std)[0], 0.5 * (1 + a) * std**2,
                                0.5 * (1 + a) * std**2 - prelu_output_moments(a, std)[0] ** 2)),
        Mistake("PReLU's output is not zero-mean (unless a = 1): Var[x] = E[x²] − E[x]², which "
                "is why Sec. 2.2 carries E[x²] and not Var[x]",
                lambda a, std: (lambda m, s, v: (m, s, s))(*prelu_output_moments(a, std))),
    ],
    hints=("Split every expectation into the parts y > 0 and y < 0. By symmetry, what share of "
           "E[y²] does each half carry?",
           "E[max(0, y)] = ∫₀^∞ y φ(y) dy for the Gaussian density φ: substitute u = y²/(2σ²).",
           "Check the cases a = 0 (ReLU) and a = 1 (no rectifier at all)."),
    stars=2, unit="rectifiers", kind="derive")


def prelu_on_relu_init(a):
    """Std of y_l, l = 1..L, for y_l = W_l f_l(y_{l−1}), Var[w_l] = 2/n_l (ReLU's MSRA), y_0 ~ N(0, 1).

    Each layer multiplies the variance by n_l · (2/n_l) · ½(1 + a_l²) = 1 + a_l².
    """
    return np.sqrt(np.cumprod(1.0 + np.asarray(a, dtype="float64") ** 2))


def _engine_prelu_chain(a):
    """Propagate E[y²] with minirect's rectified second moments, layer by layer."""
    variance, stds = 1.0, []
    for a_l in np.asarray(a, dtype="float64"):
        second = float(theory.rectified_moments(np.array([[variance]]), float(a_l))[0, 0])
        n = 9 * 64                                   # any fan-in: n · (2/n) cancels
        variance = n * init.msra_std((64, 64, 3, 3), 0.0, "fan_in") ** 2 * second
        stds.append(math.sqrt(variance))
    return (np.array(stds),)


TABLE_1_SHARED = (0.681, 0.103, 0.099, 0.228, 0.561, 0.126, 0.089, 0.124, 0.062, 0.008, 0.210,
                  0.063, 0.031)


def _prelu_chain_cases():
    cases = [Case("30 layers at the paper's initial a = 0.25", dict(a=np.full(30, 0.25))),
             Case("the learned channel-shared a of Table 1", dict(a=np.array(TABLE_1_SHARED))),
             Case("ReLU: a = 0", dict(a=np.zeros(5)))]
    for j in range(2):
        cases.append(Case(f"random a, seed {j}", dict(a=case_rng(j).uniform(-0.5, 1.2, 8))))
    return cases


PRELU_ON_RELU_INIT = Exercise(
    name="prelu_on_relu_init", title="PReLU under ReLU's initialization: the signal grows (Eq. 15)",
    task="A deep net y_l = W_l f_l(y_{l−1}), l = 1 … L, has PReLU activations f_l with "
         "coefficients a[l−1], but its weights are initialized for ReLU: zero-mean Gaussian "
         "with Var[w_l] = 2/n_l (Eq. 10). The input y_0 is zero-mean and symmetric with "
         "Var[y_0] = 1; the layers are wide and every y_l is symmetric. Return the array "
         "of the predicted Std[y_l] for l = 1 … L (shape (L,)).",
    math="Var[y_l] = n_l Var[w_l] E[f(y_{l−1})²] and E[f(y)²] = ½(1 + a²) Var[y] for symmetric "
         "y, so each layer multiplies the variance by 1 + a_l²: Std[y_l] = Π_{j≤l} √(1 + a_j²). "
         "Eq. 15's factor 1/(1 + a²) in Var[w] cancels exactly this growth.",
    solution=prelu_on_relu_init, outputs=("stds",), cases=_prelu_chain_cases,
    expected=_engine_prelu_chain,
    mistakes=[
        Mistake("the negative side is scaled by a, so its second moment by a²: the factor per "
                "layer is 1 + a², not 1 + a",
                lambda a: (np.sqrt(np.cumprod(1.0 + np.asarray(a))),)),
        Mistake("that is the variance; return the standard deviation (its square root)",
                lambda a: (np.cumprod(1.0 + np.asarray(a) ** 2),)),
        Mistake("MSRA's ½ n Var[w] = 1 keeps a ReLU net flat, but PReLU passes ½(1 + a²) of the "
                "second moment, not ½: the signal grows", lambda a: (np.ones(len(a)),)),
    ],
    hints=("One layer: Var[y_l] = n_l Var[w_l] E[x_l²] (Eq. 7). What is n_l Var[w_l] here?",
           "For a symmetric y, what fraction of E[y²] does PReLU pass on? (prelu_output_moments)",
           "Multiply the per-layer factors. For a = 0.25 over 30 layers, is the growth harmful?"),
    stars=3, unit="rectifiers", kind="derive")


# ============================================================================
# Unit: initialization — Eq. 7, 9, 13, 15
# ============================================================================

def response_variance(n, w_var, x_mean, x_var):
    """Var[y] for y = Σ_{i≤n} w_i x_i, w_i ~ (0, w_var) independent of x_i ~ (x_mean, x_var).

    Var[y] = n Var[w x] = n E[w²] E[x²] = n w_var (x_var + x_mean²)   (Eq. 7)
    """
    return n * w_var * (x_var + x_mean**2)


def _trace_variance(n, w_var, x_mean, x_var):
    """E[y²] = E[wᵀ x xᵀ w] = tr(E[w wᵀ] E[x xᵀ]); E[y] = E[w]·E[x] = 0."""
    ww = w_var * np.eye(n)
    xx = x_var * np.eye(n) + x_mean**2 * np.ones((n, n))
    return (float(np.trace(ww @ xx)),)


_RELU_MEAN = 1 / math.sqrt(2 * math.pi)            # E[relu(z)] for z ~ N(0, 1)

RESPONSE_VARIANCE = Exercise(
    name="response_variance", title="The variance of a layer's response (Eq. 7)",
    task="A unit computes y = Σ_{i=1}^n w_i x_i. The weights w_i are i.i.d. with mean 0 and "
         "variance w_var; the inputs x_i are i.i.d. with mean x_mean and variance x_var, "
         "independent of the weights (x_i need not be zero-mean: after a ReLU it is not). "
         "Return Var[y].",
    math="The n terms are independent with mean E[w]E[x] = 0, so Var[y] = n Var[w x] = "
         "n E[w²]E[x²] = n · w_var · (x_var + x_mean²) (Eq. 7). With x_mean = 0 it reduces to "
         "n Var[w] Var[x], the older zero-mean assumption.",
    solution=response_variance, outputs=("variance",),
    cases=lambda: [Case(f"n={n}, w_var={wv:g}, E[x]={m:.3g}, Var[x]={v:.3g}",
                        dict(n=n, w_var=wv, x_mean=m, x_var=v)) for n, wv, m, v in
                   [(9, 0.1, 0.5, 2.0), (27, 2 / 27, _RELU_MEAN, 0.5 - _RELU_MEAN**2),
                    (576, 1 / 576, 0.0, 1.0), (64, 0.01, -1.5, 0.25), (100, 0.02, 3.0, 0.0)]],
    expected=_trace_variance,
    mistakes=[
        Mistake("x is not zero-mean: Var[w x] = E[w²] E[x²] with E[x²] = Var[x] + E[x]² (Eq. 7 "
                "has E[x²], not Var[x])", lambda n, w_var, x_mean, x_var: n * w_var * x_var),
        Mistake("y sums n independent terms: their variances add up",
                lambda n, w_var, x_mean, x_var: w_var * (x_var + x_mean**2)),
        Mistake("E[x²] = Var[x] + E[x]²: the mean enters squared",
                lambda n, w_var, x_mean, x_var: n * w_var * (x_var + abs(x_mean))),
    ],
    hints=("The n terms w_i x_i are independent: Var of their sum is the sum of their variances.",
           "For independent w and x with E[w] = 0, compute E[w x] and E[(w x)²].",
           "Check with the ReLU case: x = max(0, z), z ~ N(0, 1), has E[x] = 1/√(2π) and "
           "E[x²] = ½."),
    stars=2, unit="initialization", kind="derive")


def eq15_std(n, a):
    """Eq. 15: ½ (1 + a²) n Var[w] = 1; return (std, std / paper-Xavier std)."""
    std = math.sqrt(2.0 / ((1.0 + a * a) * n))
    return std, std * math.sqrt(n)


EQ15 = Exercise(
    name="eq15_std", title="Derive Eq. 15: the PReLU-aware std",
    task="A layer with fan-in n follows a PReLU with coefficient a (the paper initializes "
         "a = 0.25). Find the std of the zero-mean Gaussian weights that keeps the second "
         "moment of the signal constant from layer to layer (the forward condition). Return "
         "(std, ratio), with ratio = std divided by the paper's Xavier std sqrt(1/n).",
    math="Var[y_l] = n Var[w] E[x_l²], E[x_l²] = ½(1 + a²) Var[y_{l−1}], so "
         "½(1 + a²) n Var[w] = 1: std = sqrt(2 / ((1 + a²) n)), ratio = sqrt(2 / (1 + a²)). "
         "a = 0 is ReLU (√2 times Xavier); |a| = 1 is linear, where Xavier is exact.",
    solution=eq15_std, outputs=("std", "ratio"),
    cases=lambda: [Case(f"n={n}, a={a}", dict(n=n, a=a)) for n, a in
                   [(576, 0.25), (4096, 0.0), (147, 0.25), (2304, 1.0), (1152, 0.681), (9, -1.0),
                    (256, 3.0)]],
    expected=lambda n, a: (init.msra_std((1, n), a, "fan_in"),
                           init.msra_std((1, n), a, "fan_in") / init.paper_xavier_std((1, n))),
    mistakes=[
        Mistake("the rectifier passes ½(1 + a²) of the second moment, not (1 + a²): the factor "
                "½ is missing (with a = 0 that would be the paper's Xavier)",
                lambda n, a: (math.sqrt(1 / ((1 + a * a) * n)), math.sqrt(1 / (1 + a * a)))),
        Mistake("the negative side is scaled by a, its second moment by a²: (1 + a²), not (1 + a)",
                lambda n, a: (math.sqrt(2 / ((1 + a) * n)), math.sqrt(2 / (1 + a)))),
        Mistake("that is Var[w]: return the standard deviation, its square root",
                lambda n, a: (2 / ((1 + a * a) * n), 2 / ((1 + a * a) * n) * math.sqrt(n))),
    ],
    hints=("Start from Eq. 7: Var[y_l] = n_l Var[w_l] E[x_l²].",
           "What is E[x_l²] when x_l is the PReLU of a symmetric y_{l−1}? (prelu_output_moments)",
           "Set the per-layer factor to 1. Which a gives back the paper's Xavier, and why?"),
    stars=2, unit="initialization", kind="derive")


def _variance_for(shape, scheme, mode):
    fan_in = math.prod(shape[1:])
    fan_out = shape[0] * math.prod(shape[2:])
    n = fan_in if mode == "fan_in" else fan_out
    return (2.0 if scheme == "msra" else 1.0) / n


def xavier_response_ratio(shapes, mode):
    """Std[y_l] under the paper's Xavier divided by Std[y_l] under MSRA, l = 1..L.

    Each layer's Var[w] is half as large under Xavier and every other factor of
    Eq. 9 (n_l, the ½ of each ReLU, the input) is the same: 2^{−l/2}.
    """
    return 2.0 ** (-0.5 * np.arange(1, len(shapes) + 1))


def _chain_model(shapes, scheme, mode):
    """Conv2d/Linear layers with ReLUs between them, weights of exactly the rule's variance."""
    layers = []
    for i, shape in enumerate(shapes):
        with _rng_untouched():
            layer = (nn.Conv2d(shape[1], shape[0], shape[2]) if len(shape) == 4
                     else nn.Linear(shape[1], shape[0]))
        z = case_rng(100 + i).standard_normal(shape)
        layer.weight.data = (z - z.mean()) / z.std() * math.sqrt(_variance_for(shape, scheme, mode))
        layers += [layer, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _engine_response_ratio(shapes, mode):
    xavier = theory.idealized_stds(_chain_model(shapes, "xavier", mode))["response_std"]
    msra = theory.idealized_stds(_chain_model(shapes, "msra", mode))["response_std"]
    return (np.array(xavier) / np.array(msra),)


_MODEL_B_SMALL = ((32, 1, 3, 3),) + ((32, 32, 3, 3),) * 6 + ((64, 32, 3, 3),) + ((64, 64, 3, 3),) * 5 \
    + ((64, 64, 3, 3),) * 6 + ((256, 1344), (256, 256), (10, 256))
_MODEL_30_SMALL = ((32, 1, 3, 3),) + ((32, 32, 3, 3),) * 9 + ((64, 32, 3, 3),) + ((64, 64, 3, 3),) * 16 \
    + ((256, 1344), (256, 256), (10, 256))


def _ratio_cases():
    return [Case("three fc layers, fan_in", dict(shapes=((100, 50), (100, 100), (10, 100)), mode="fan_in")),
            Case("a 22-layer model B (small widths), fan_out as in Fig. 2",
                 dict(shapes=_MODEL_B_SMALL, mode="fan_out")),
            Case("a 30-layer model (small widths), fan_out as in Fig. 3",
                 dict(shapes=_MODEL_30_SMALL, mode="fan_out")),
            Case("convs of changing width, fan_in", dict(shapes=((16, 3, 5, 5), (48, 16, 3, 3),
                                                                (8, 48, 3, 3), (20, 8, 1, 1)),
                                                         mode="fan_in"))]


XAVIER_RESPONSE = Exercise(
    name="xavier_response_ratio", title="How much signal the paper's Xavier loses, layer by layer",
    task="A plain net has L weighted layers (conv weights (d, c, k, k) or fc weights (out, in), "
         "given by `shapes`), a ReLU after every layer but the last, and its input goes into "
         "layer 1 as it is (not rectified). Initialize it once with MSRA (½ n Var[w] = 1) and "
         "once with the paper's Xavier (n Var[w] = 1), both with the same `mode` ('fan_in': "
         "n = k²c; 'fan_out': n = k²d). By the theory of Sec. 2.2 (Eq. 9, wide layers, no "
         "padding or pooling effects), return the ratio Std[y_l](Xavier) / Std[y_l](MSRA) for "
         "every layer l = 1 … L (shape (L,)).",
    math="Var[y_l] = Var[x] · n_1 Var[w_1] · Π_{j=2}^{l} ½ n_j Var[w_j] (Eq. 9). Xavier's Var[w_j] "
         "is half of MSRA's in every layer, the first included; the shapes, the mode and the "
         "½ of the ReLUs cancel in the ratio: Var ratio 2^{−l}, std ratio 2^{−l/2}.",
    solution=xavier_response_ratio, outputs=("ratio",), cases=_ratio_cases,
    expected=_engine_response_ratio,
    mistakes=[
        Mistake("the first layer's weights differ too (Var[w₁] = 1/n under Xavier, 2/n under "
                "MSRA), even though no ReLU comes before it",
                lambda shapes, mode: (2.0 ** (-0.5 * np.arange(len(shapes))),)),
        Mistake("that is the ratio of variances; the question asks for the ratio of stds",
                lambda shapes, mode: (2.0 ** (-1.0 * np.arange(1, len(shapes) + 1)),)),
        Mistake("the ReLUs' ½ is the same under both inits and cancels in the ratio; only the "
                "weights' variances differ",
                lambda shapes, mode: (2.0 ** (-0.5 * (2 * np.arange(1, len(shapes) + 1) - 1)),)),
    ],
    hints=("Write Var[y_l] under each init as a product over layers 1 … l (Eq. 9).",
           "Divide the two products: which factors are the same for both inits and cancel?",
           "Does the answer depend on the shapes or on the mode? Predict layer 30's ratio before "
           "computing it."),
    stars=3, unit="initialization", kind="derive")


def gradient_ratios(shapes, scheme, mode):
    """Std of ∂E/∂y_l relative to the last layer's, l = 1..L (Eq. 13, ReLU between layers).

    Going down through layer l+1 multiplies Var[∂E/∂y] by ½ n̂_{l+1} Var[w_{l+1}],
    n̂ = k² d (the outputs a unit feeds).
    """
    factors = []
    for s in shapes:                                 # (d, c, k, k) or (out, in)
        fan_in, fan_out = math.prod(s[1:]), s[0] * math.prod(s[2:])
        var_w = (2.0 if scheme == "msra" else 1.0) / (fan_in if mode == "fan_in" else fan_out)
        factors.append(0.5 * fan_out * var_w)        # ½ n̂ Var[w], n̂ = k²d
    ratios = np.ones(len(shapes))
    for l in range(len(shapes) - 2, -1, -1):
        ratios[l] = ratios[l + 1] * math.sqrt(factors[l + 1])
    return ratios


GRADIENT_RATIOS = Exercise(
    name="gradient_ratios", title="The backward signal: the first layer's gradient over L layers (Eq. 13–14)",
    task="The same plain net as in xavier_response_ratio (weights `shapes`, ReLU after every "
         "layer but the last), initialized with `scheme` ('msra': ½ n Var[w] = 1, or 'xavier': "
         "n Var[w] = 1) in `mode` ('fan_in': n = k²c, 'fan_out': n = k²d). By Sec. 2.2's "
         "backward theory (wide layers), return the std of ∂E/∂y_l divided by the std of "
         "∂E/∂y_L at the last layer, for every l = 1 … L (shape (L,); the last entry is 1).",
    math="∂E/∂x_{l+1} = W_{l+1}ᵀ ∂E/∂y_{l+1}, ∂E/∂y_l = f'(y_l) ∂E/∂x_{l+1}: Var[∂E/∂y_l] = "
         "½ n̂_{l+1} Var[w_{l+1}] Var[∂E/∂y_{l+1}] (Eq. 13), n̂ = k²d. Ratio_l = Π_{j=l+1}^{L} "
         "√(½ n̂_j Var[w_j]). fan_out: MSRA gives 1, Xavier 2^{−(L−l)/2} (layer 1: 2^{−(L−1)/2}); "
         "fan_in: each factor is d_j/c_j (MSRA) or d_j/(2c_j) (Xavier).",
    solution=gradient_ratios, outputs=("ratio",),
    cases=lambda: [Case(f"{label}: {scheme}, {mode}", dict(shapes=shapes, scheme=scheme, mode=mode))
                   for label, shapes, scheme, mode in [
                       ("22 layers", _MODEL_B_SMALL, "xavier", "fan_out"),
                       ("30 layers", _MODEL_30_SMALL, "xavier", "fan_out"),
                       ("30 layers", _MODEL_30_SMALL, "msra", "fan_out"),
                       ("widening convs", ((16, 3, 5, 5), (48, 16, 3, 3), (8, 48, 3, 3), (20, 8, 1, 1)),
                        "msra", "fan_in"),
                       ("fc layers", ((100, 50), (100, 100), (10, 100)), "xavier", "fan_in")]],
    expected=lambda shapes, scheme, mode: (
        np.array(theory.idealized_stds(_chain_model(shapes, scheme, mode))["grad_ratio"]),),
    mistakes=[
        Mistake("the last layer's own weights do not act on ∂E/∂y_L: the chain from layer l up to "
                "L has L − l factors, one per layer above l",
                lambda shapes, scheme, mode: (gradient_ratios(shapes, scheme, mode) * np.array(
                    [math.sqrt(0.5 * s[0] * math.prod(s[2:]) * _variance_for(s, scheme, mode))
                     for s in shapes]),)),
        Mistake("that is the ratio of variances; return the ratio of stds (the square root)",
                lambda shapes, scheme, mode: (gradient_ratios(shapes, scheme, mode) ** 2,)),
        Mistake("backward, a unit's gradient sums over the k²d outputs it feeds: use n̂ = k²d "
                "(fan-out) in Eq. 13, whatever mode the init used",
                lambda shapes, scheme, mode: (gradient_ratios(
                    [(math.prod(s[1:]) // max(1, math.prod(s[2:])),) + (s[0],) + tuple(s[2:])
                     for s in shapes], scheme, "fan_out" if mode == "fan_in" else "fan_in"),)),
    ],
    hints=("Backward, ∂E/∂x_{l+1} = W_{l+1}ᵀ ∂E/∂y_{l+1}: each input unit sums over the outputs "
           "it feeds. How many are they (n̂)?",
           "The ReLU between the layers passes the gradient where its input was positive: which "
           "factor does that contribute to the variance?",
           "Multiply the factors from the last layer down. Under Xavier, how small is layer 1's "
           "gradient in the 30-layer net?"),
    stars=3, unit="initialization", kind="derive")


# ============================================================================
# Unit: training — Eq. 4's two momentum forms; footnote 2
# ============================================================================

def momentum_forms(w0, g, lrs, momentum):
    """Weights after T steps of the paper's form and of PyTorch's, from zero velocity.

    paper (Caffe, minirect): Δ ← μ Δ + ε_t g_t,  w ← w − Δ
    PyTorch:                 v ← μ v + g_t,      w ← w − ε_t v     (so Δ = ε v while ε is constant)
    """
    delta, v = np.zeros_like(w0), np.zeros_like(w0)
    w_paper, w_torch = w0.copy(), w0.copy()
    for g_t, lr in zip(g, lrs):
        delta = momentum * delta + lr * g_t
        w_paper = w_paper - delta
        v = momentum * v + g_t
        w_torch = w_torch - lr * v
    return w_paper, w_torch


def _engine_momentum_forms(w0, g, lrs, momentum):
    """Paper's form: minirect.optim.SGD step by step. PyTorch's form: the unrolled sum
    w_T = w_0 − Σ_t ε_t Σ_{s≤t} μ^{t−s} g_s."""
    p = nn.Parameter(w0.copy())
    opt = optim.SGD([p], lr=float(lrs[0]), momentum=momentum)
    for g_t, lr in zip(g, lrs):
        opt.param_groups[0]["lr"] = float(lr)
        p.grad = g_t.copy()
        opt.step()
    T = len(g)
    w_torch = w0.copy()
    for t in range(T):
        w_torch = w_torch - lrs[t] * sum(momentum ** (t - s) * g[s] for s in range(t + 1))
    return np.asarray(p.data), w_torch


def _momentum_cases():
    cases = []
    setups = [("constant lr", 6, lambda t: 0.1, 0.9), ("lr ÷ 10 after 4 steps (the paper's schedule)",
                                                         10, lambda t: 0.01 if t < 4 else 0.001, 0.9),
              ("lr ÷ 10 twice", 12, lambda t: 0.1 * 0.1 ** (t // 4), 0.5),
              ("a warm-up: lr rising", 8, lambda t: 0.02 * (t + 1), 0.9)]
    for k, (label, T, lr, mu) in enumerate(setups):
        rng = case_rng(k)
        cases.append(Case(label, dict(w0=rng.standard_normal(5), g=rng.standard_normal((T, 5)),
                                      lrs=np.array([lr(t) for t in range(T)]), momentum=mu)))
    return cases


def _torch_like_paper(w0, g, lrs, momentum):
    w_paper, _ = momentum_forms(w0, g, lrs, momentum)
    return w_paper, w_paper


MOMENTUM_FORMS = Exercise(
    name="momentum_forms", title="Eq. 4 and PyTorch's momentum: the same until the learning rate changes",
    task="The paper's Eq. 4 keeps Δ := μΔ + ε ∂E/∂w and minirect (like Caffe) applies it as "
         "w := w − Δ. PyTorch keeps v := μv + ∂E/∂w and applies w := w − ε v. Starting from w0 with "
         "zero velocity, apply T steps with the given gradients g[t] (shape (T, P); they do not "
         "depend on w) and learning rates lrs[t], no weight decay. Return (w_paper, w_torch), "
         "the weights after the T steps under each form.",
    math="Unrolled: Δ_t = Σ_{s≤t} μ^{t−s} ε_s g_s and v_t = Σ_{s≤t} μ^{t−s} g_s. The paper's step "
         "weights each past gradient by the lr of its own step, PyTorch's by the current lr: "
         "w_paper = w0 − Σ_t Σ_{s≤t} μ^{t−s} ε_s g_s, w_torch = w0 − Σ_t ε_t Σ_{s≤t} μ^{t−s} g_s. "
         "With a constant ε they agree (Δ = ε v); after a drop, PyTorch rescales the whole "
         "velocity at once while the paper's old velocity fades over about 1/(1 − μ) steps.",
    solution=momentum_forms, outputs=("w_paper", "w_torch"), cases=_momentum_cases,
    expected=_engine_momentum_forms,
    mistakes=[
        Mistake("the two forms agree only while the lr is constant: after a change, PyTorch's "
                "velocity is multiplied by the new lr, the paper's keeps the old lr in its past "
                "terms", _torch_like_paper),
        Mistake("PyTorch steps with w := w − ε v: the lr multiplies the velocity in the step",
                lambda w0, g, lrs, momentum: (momentum_forms(w0, g, lrs, momentum)[0],
                                              momentum_forms(w0, g, np.ones_like(lrs), momentum)[1])),
        Mistake("the paper prints Δa := μΔa + ε∂E/∂a without saying how Δa is applied; descending "
                "the loss needs w := w − Δ (and w := w − ε v)",
                lambda w0, g, lrs, momentum: tuple(2 * w0 - w for w in momentum_forms(w0, g, lrs, momentum))),
    ],
    hints=("Unroll both recursions: write Δ_t and v_t as sums over the past gradients g_s.",
           "In which form is a past gradient g_s scaled by the lr of its own step ε_s, and in "
           "which by the lr of the current step ε_t?",
           "With a constant lr, how do you convert a PyTorch velocity v into the paper's Δ?"),
    stars=3, unit="training", kind="derive")


def decay_driven_layers(weights, grads, weight_decay):
    """Footnote 2: per layer, ratio = λ·RMS(W) / RMS(∂E/∂W); driven = 1.0 where ratio > 1."""
    def rms(a):
        return float(np.sqrt(np.mean(np.asarray(a, dtype="float64") ** 2)))
    ratio = np.array([weight_decay * rms(w) / rms(g) for w, g in zip(weights, grads)])
    return ratio, (ratio > 1).astype("float64")


def _engine_decay(weights, grads, weight_decay):
    stats = []
    for i, (w, g) in enumerate(zip(weights, grads)):
        weight_grad = diagnostics._rms(np.asarray(g))
        stats.append({"name": f"layer{i}", "decay_ratio": weight_decay * diagnostics._rms(np.asarray(w))
                      / weight_grad})
    driven = set(diagnostics.vanishing_layers(stats))
    return (np.array([s["decay_ratio"] for s in stats]),
            np.array([1.0 if s["name"] in driven else 0.0 for s in stats]))


def _decay_cases():
    cases = []
    for k, (label, L, shrink, scale) in enumerate([
            ("a stalled Xavier net: gradients shrink 1/√2 per layer down", 30, 2 ** -0.5, 1e-3),
            ("an MSRA net: flat gradients", 22, 1.0, 1e-3),
            ("a short net", 5, 0.3, 5e-3)]):
        rng = case_rng(k)
        weights, grads = [], []
        for l in range(L):
            shape = (8, 4, 3, 3) if l < L - 3 else (10, 16)
            n = math.prod(shape[1:])
            weights.append(rng.standard_normal(shape) * math.sqrt(1 / n))
            offset = 1e-4 * rng.standard_normal()           # gradients need not be zero-mean
            grads.append(rng.standard_normal(shape) * scale * shrink ** (L - 1 - l) + offset)
        cases.append(Case(label, dict(weights=weights, grads=grads, weight_decay=5e-4)))
    by_hand = dict(weights=[np.full((2, 2), 3.0), np.array([1.0, -1.0]), np.array([[4.0]])],
                   grads=[np.full((2, 2), 1e-3), np.array([2e-3, 0.0]), np.array([[-1e-2]])],
                   weight_decay=1e-3)
    cases.append(Case("three small layers by hand", by_hand))
    return cases


DECAY_DRIVEN = Exercise(
    name="decay_driven_layers", title="Footnote 2: which layers does weight decay alone drive?",
    task="One training step of a plain net gives each layer's weight W_l (weights[l]) and the "
         "data gradient ∂E/∂W_l (grads[l]); SGD adds weight decay λ W_l to the gradient. "
         "Footnote 2 of the paper: with weight decay on, the update does not vanish even when "
         "the data gradient does, it is then 'driven only by weight decay'. Return (ratio, "
         "driven): for every layer, the size of the decay term relative to the data gradient, "
         "each measured as the RMS (root mean square) over the layer's entries, and 1.0 where the "
         "decay term is the larger (0.0 elsewhere).",
    math="The update is ε (∂E/∂W + λ W). ratio_l = λ · RMS(W_l) / RMS(∂E/∂W_l); driven_l = "
         "[ratio_l > 1]. In a stalled Xavier net the data gradient falls by 1/√2 per layer "
         "down, so the lowest layers cross first.",
    solution=decay_driven_layers, outputs=("ratio", "driven"), cases=_decay_cases,
    expected=_engine_decay,
    mistakes=[
        Mistake("the ratio is the decay term over the data gradient, λ·RMS(W) / RMS(∂E/∂W), not "
                "the other way round",
                lambda weights, grads, weight_decay: (lambda r, d: (1 / r, (1 / r > 1) * 1.0))(
                    *decay_driven_layers(weights, grads, weight_decay))),
        Mistake("the decay term of the gradient is λ·W: multiply by the weight decay λ",
                lambda weights, grads, weight_decay: decay_driven_layers(weights, grads, 1.0)),
        Mistake("measure each term by its RMS over the layer's entries, not by its sum of squares",
                lambda weights, grads, weight_decay: (lambda r: (r, (r > 1) * 1.0))(np.array(
                    [weight_decay * float((w**2).sum()) / float((g**2).sum())
                     for w, g in zip(weights, grads)]))),
    ],
    hints=("With weight decay, what exactly does SGD add to ∂E/∂W before the step?",
           "Compare the two terms of that sum layer by layer, each by one number per layer.",
           "In the stalled 30-layer net, where do the decay-driven layers sit: near the input or "
           "near the output? Why?"),
    stars=2, unit="training", kind="derive")


# ============================================================================
# Unit: figures — Figure 3's verdict, Figure 2's "starts reducing error earlier"
# ============================================================================

def fig3_verdict(msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K):
    """Figure 3's three checks as 0/1: MSRA converged, Xavier stalled, Xavier's gradient vanished."""
    chance_error = 1 - 1 / K                       # a guess among K classes is right 1 time in K
    uniform_loss = math.log(K)                     # −log(1/K): the loss of equal outputs
    converged = msra_final_error < 0.5 * chance_error
    stalled = xavier_min_loss >= 0.99 * uniform_loss
    vanished = xavier_grad1 < 0.01 * msra_grad1
    return float(converged), float(stalled), float(vanished)


def _engine_fig3(msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K):
    msra = {"final_error": msra_final_error, "first_layer_grad_std": msra_grad1}
    xavier = {"min_val_loss_over_chance_loss": xavier_min_loss / math.log(K),
              "first_layer_grad_std": xavier_grad1}
    verdict = report.fig3_criterion(msra, xavier, 1.0 - 1.0 / K)
    return tuple(float(verdict[key]) for key in ("msra_converged", "xavier_stalled",
                                                 "xavier_gradient_vanished"))


def _fig3_cases():
    return [Case("1000 classes, the values of Figure 3's two curves",
                 dict(msra_final_error=0.79, xavier_min_loss=6.90, msra_grad1=1e-3, xavier_grad1=2e-8,
                      K=1000)),
            Case("digits: both train", dict(msra_final_error=0.04, xavier_min_loss=0.30,
                                            msra_grad1=2e-3, xavier_grad1=1e-4, K=10)),
            Case("10 classes, near the thresholds", dict(msra_final_error=0.44, xavier_min_loss=2.285,
                                                         msra_grad1=1e-3, xavier_grad1=9e-6, K=10)),
            Case("10 classes, just outside", dict(msra_final_error=0.46, xavier_min_loss=2.27,
                                                  msra_grad1=1e-3, xavier_grad1=1.1e-5, K=10)),
            Case("100 classes", dict(msra_final_error=0.48, xavier_min_loss=4.57,
                                     msra_grad1=5e-3, xavier_grad1=1e-5, K=100)),
            Case("2 classes", dict(msra_final_error=0.2, xavier_min_loss=0.689,
                                   msra_grad1=1e-2, xavier_grad1=1e-5, K=2))]


FIG3_VERDICT = Exercise(
    name="fig3_verdict", title="Judge Figure 3: converged, stalled, vanished",
    task="minirect judges a Figure 3 run with three checks: MSRA converged (its final validation "
         "error is below half of the chance error, the error of a net that guesses a class); "
         "Xavier stalled (its lowest validation loss is at least 0.99 times the loss of a net "
         "whose K outputs are all equal); Xavier's gradient vanished (its layer-1 gradient std "
         "at initialization is below 1% of MSRA's). Given the numbers of a run with K classes, "
         "return the three checks as floats (1.0 true, 0.0 false): (converged, stalled, vanished).",
    math="Chance error = 1 − 1/K (a guess is right 1 time in K: 0.999 for 1000 classes, Figure 3's "
         "flat Xavier curve). Equal logits give p = 1/K for every class: loss −ln(1/K) = ln K "
         "(6.91 for 1000 classes). converged = e < ½(1 − 1/K), stalled = L_min ≥ 0.99 ln K, "
         "vanished = g_X < 0.01 g_M.",
    solution=fig3_verdict, outputs=("converged", "stalled", "vanished"), cases=_fig3_cases,
    expected=_engine_fig3,
    mistakes=[
        Mistake("chance error is the error of guessing: right 1 time in K, so wrong 1 − 1/K of "
                "the time (not 1/K)",
                lambda msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K: (
                    float(msra_final_error < 0.5 / K),) + fig3_verdict(
                    msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K)[1:]),
        Mistake("the cross-entropy uses the natural logarithm: the loss of equal outputs is ln K",
                lambda msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K: (
                    fig3_verdict(msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K)[0],
                    float(xavier_min_loss >= 0.99 * math.log2(K)),
                    fig3_verdict(msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K)[2])),
        Mistake("the loss of a net with equal outputs is −log(1/K), not the chance error 1 − 1/K",
                lambda msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K: (
                    fig3_verdict(msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K)[0],
                    float(xavier_min_loss >= 0.99 * (1 - 1 / K)),
                    fig3_verdict(msra_final_error, xavier_min_loss, msra_grad1, xavier_grad1, K)[2])),
    ],
    hints=("If all K logits are equal, what probability does softmax give the true class? What "
           "is the cross-entropy then?",
           "A net that guesses is right how often? What is its error?",
           "Figure 3's Xavier curve sits at 0.999: what is K there?"),
    stars=2, unit="figures", kind="derive")


def first_crossings(epochs, errors, levels):
    """For each level, the first epoch at which the piecewise-linear curve reaches it from above
    (linear interpolation between evaluations); epochs[0] if it starts at or below; −1 if never."""
    out = []
    for level in levels:
        crossing = -1.0
        if errors[0] <= level:
            crossing = float(epochs[0])
        else:
            for i in range(1, len(errors)):
                if errors[i] <= level:
                    fraction = (errors[i - 1] - level) / (errors[i - 1] - errors[i])
                    crossing = float(epochs[i - 1] + fraction * (epochs[i] - epochs[i - 1]))
                    break
        out.append(crossing)
    return np.array(out)


def _interp_crossings(epochs, errors, levels):
    """np.interp on the segment where the curve first reaches the level."""
    out = []
    for level in levels:
        below = np.nonzero(np.asarray(errors) <= level)[0]
        if len(below) == 0:
            out.append(-1.0)
        elif below[0] == 0:
            out.append(float(epochs[0]))
        else:
            i = below[0]
            out.append(float(np.interp(level, [errors[i], errors[i - 1]], [epochs[i], epochs[i - 1]])))
    return (np.array(out),)


_FIG2_EPOCHS = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])


def _crossing_cases():
    ours = np.array([0.999, 0.985, 0.957, 0.914, 0.858, 0.787])
    xavier = np.array([0.999, 0.993, 0.978, 0.955, 0.923, 0.853])
    levels = np.array([0.99, 0.95, 0.90])
    cases = [Case("Figure 2, ours (MSRA)", dict(epochs=_FIG2_EPOCHS, errors=ours, levels=levels)),
             Case("Figure 2, Xavier", dict(epochs=_FIG2_EPOCHS, errors=xavier, levels=levels)),
             Case("Figure 3's Xavier: never below 0.99", dict(
                 epochs=np.arange(11.0), errors=np.full(11, 0.999), levels=np.array([0.99, 0.5])))]
    for j in range(2):
        rng = case_rng(j)
        epochs = np.cumsum(rng.uniform(0.2, 1.0, 12))
        errors = np.clip(0.9 - 0.05 * np.arange(12) + rng.normal(0, 0.06, 12), 0, 1)
        cases.append(Case(f"a noisy curve, seed {j}", dict(epochs=epochs, errors=errors,
                                                            levels=np.array([0.85, 0.7, 0.6, 0.5]))))
    return cases


def _last_crossings(epochs, errors, levels):
    """Wrong: the last time the curve goes down through the level."""
    out = []
    for level in levels:
        hit = first_crossings(epochs, errors, [level])[0]
        for i in range(1, len(errors)):
            if errors[i - 1] > level >= errors[i]:
                hit = float(first_crossings(epochs[i - 1:], errors[i - 1:], [level])[0])
        out.append(hit)
    return np.array(out)


def _no_interpolation(epochs, errors, levels):
    out = []
    for level in levels:
        below = [e for e, err in zip(epochs, errors) if err <= level]
        out.append(float(below[0]) if below else -1.0)
    return np.array(out)


FIRST_CROSSINGS = Exercise(
    name="first_crossings", title="Figure 2: how much earlier does MSRA reduce the error?",
    task="A validation curve is known at the evaluations (epochs[i], errors[i]) and taken as "
         "linear in between. For each value in `levels`, return the first epoch at which the "
         "curve comes down to that level: interpolate between the two evaluations around the "
         "crossing; return epochs[0] if the curve starts at or below it and −1.0 if it never "
         "gets there. (Figure 2 says MSRA 'starts reducing error earlier': compare the crossings "
         "of the two curves read from it.)",
    math="For the first i with errors[i] ≤ level: t = epochs[i−1] + (errors[i−1] − level) / "
         "(errors[i−1] − errors[i]) · (epochs[i] − epochs[i−1]).",
    solution=first_crossings, outputs=("crossings",), cases=_crossing_cases,
    expected=_interp_crossings,
    mistakes=[
        Mistake("interpolate between the evaluation above the level and the first one below it; "
                "the first evaluation below the level comes later than the crossing",
                lambda epochs, errors, levels: (_no_interpolation(epochs, errors, levels),)),
        Mistake("a noisy curve can cross a level several times: the question asks for the first "
                "crossing", lambda epochs, errors, levels: (_last_crossings(epochs, errors, levels),)),
        Mistake("the fraction of the segment is measured from the evaluation above the level: "
                "(errors[i−1] − level) / (errors[i−1] − errors[i])",
                lambda epochs, errors, levels: (np.array([
                    c if c < 0 or c == epochs[0] else _mirror(epochs, errors, lv, c)
                    for lv, c in zip(levels, first_crossings(epochs, errors, levels))]),)),
    ],
    hints=("Find the first evaluation at or below the level; the crossing lies between it and "
           "the evaluation before.",
           "On that segment the curve is a straight line: which fraction of the segment has it "
           "descended when it reaches the level?",
           "On the Figure 2 values, by how many epochs does MSRA reach 0.95 before Xavier?"),
    stars=2, unit="figures", kind="derive")


def _mirror(epochs, errors, level, crossing):
    """Wrong: the interpolation fraction measured from the lower end of the segment."""
    i = int(np.nonzero(np.asarray(errors) <= level)[0][0])
    fraction = (level - errors[i]) / (errors[i - 1] - errors[i])
    return float(epochs[i - 1] + fraction * (epochs[i] - epochs[i - 1]))


# ============================================================================
# Unit: the depth sweep — where does the theory say Xavier's gradient vanishes?
# ============================================================================

def vanishing_depth(depths, threshold):
    """Predicted Xavier/MSRA first-layer gradient ratio 2^{−(L−1)/2} at each depth (fan_out
    init, ReLU nets), and the smallest depth whose ratio is below ``threshold`` (−1: none)."""
    depths = np.asarray(depths)
    ratios = 2.0 ** (-(depths - 1) / 2)
    below = depths[ratios < threshold]
    return ratios, float(below.min()) if len(below) else -1.0


def _engine_vanishing_depth(depths, threshold):
    """idealized_stds' first-layer gradient ratio of an L-layer chain under each init."""
    ratios = []
    for depth in depths:
        shapes = ((16, 16),) * int(depth)
        first = [theory.idealized_stds(_chain_model(shapes, scheme, "fan_out"))["grad_ratio"][0]
                 for scheme in ("xavier", "msra")]
        ratios.append(first[0] / first[1])
    ratios = np.array(ratios)
    vanished = [d for d, r in zip(depths, ratios) if r < threshold]
    return ratios, float(min(vanished)) if vanished else -1.0


VANISHING_DEPTH = Exercise(
    name="vanishing_depth", title="The depth sweep: where does Xavier's first-layer gradient vanish?",
    task="The depth sweep trains plain ReLU nets of several depths L (weighted layers) with both "
         "inits in their backward form ('fan_out', as Figures 2 and 3), and calls Xavier's "
         "gradient vanished when its first layer's gradient std at initialization is below "
         "`threshold` times MSRA's. Assume both nets get the same gradient std at their last "
         "layer, and use Sec. 2.2's backward theory (wide layers). Return (ratios, depth): the "
         "predicted ratio Std[∂E/∂y_1](Xavier) / Std[∂E/∂y_1](MSRA) at every depth of "
         "`depths`, and the smallest depth of `depths` whose ratio is below `threshold` "
         "(−1.0 if none).",
    math="Under MSRA's backward form every step down multiplies Var[∂E/∂y] by ½ n̂ Var[w] = 1, "
         "under Xavier's by ½: over the L − 1 layers above layer 1 the std ratio is "
         "2^{−(L−1)/2}. Below 1e-2 from L − 1 > 2 log2(100) ≈ 13.3: L ≥ 15 (18 on the sweep's "
         "grid 6, 10, …, 30).",
    solution=vanishing_depth, outputs=("ratios", "depth"),
    cases=lambda: [Case(f"depths {depths}, threshold {t:g}", dict(depths=np.array(depths), threshold=t))
                   for depths, t in [((6, 10, 14, 18, 22, 26, 30), 1e-2), ((22, 30), 1e-3),
                                     ((2, 3, 4, 5, 6), 0.3), ((10, 14), 1e-5), ((8, 15, 16), 0.0079)]],
    expected=_engine_vanishing_depth,
    mistakes=[
        Mistake("layer 1's gradient is shaped by the L − 1 layers above it, not by all L",
                lambda depths, threshold: vanishing_depth(np.asarray(depths) + 1, threshold)[:1]
                + (vanishing_depth(depths, threshold / 2 ** 0.5)[1],)),
        Mistake("that is the ratio of variances; the criterion compares stds",
                lambda depths, threshold: vanishing_depth(2 * np.asarray(depths) - 1, threshold)[:1]
                + (vanishing_depth(depths, threshold ** 0.5)[1],)),
        Mistake("the ratio falls with depth: the first depth below the threshold is the smallest "
                "such depth, not the largest",
                lambda depths, threshold: (vanishing_depth(depths, threshold)[0], float(max(
                    [d for d in depths if 2.0 ** (-(d - 1) / 2) < threshold], default=-1)))),
    ],
    hints=("Going down one layer, by what factor does each init multiply Var[∂E/∂y] (Eq. 13)?",
           "How many such factors lie between the last layer and the first?",
           "Solve ratio < threshold for L before looking at the list of depths."),
    stars=3, unit="depth-sweep", kind="derive")


EXERCISES = [CENTRAL_DIFFERENCE, CENTERING, PADDING_FACTOR, CONV_COST, RECEPTIVE_FIELD,
             PRELU_MOMENTS, PRELU_ON_RELU_INIT, RESPONSE_VARIANCE, EQ15, XAVIER_RESPONSE,
             GRADIENT_RATIOS, MOMENTUM_FORMS, DECAY_DRIVEN, FIG3_VERDICT, FIRST_CROSSINGS,
             VANISHING_DEPTH]
