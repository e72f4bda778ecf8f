"""Exercises on the first backward passes: Mul, Div, broadcasting (sum_to), MatMul.

Each reference solution is plain NumPy, the way a student would write it;
the expected values come from minirect's autograd (``minirect.functional``).
"""

from __future__ import annotations

from .. import functional as F
from ..autograd import Tensor
from ._checker import Case, Exercise, case_rng, Mistake, engine_grads, np


def _rng(seed):
    return case_rng(seed)


def _normal(rng, shape, dtype="float32"):
    return rng.standard_normal(shape).astype(dtype)


def _away_from_zero(rng, shape, dtype="float32"):
    """Values with |v| in [0.5, 2]: safe divisors."""
    return (rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)).astype(dtype)


# ----------------------------------------------------------------------------
# Mul
# ----------------------------------------------------------------------------

def mul_backward(a, b, gy):
    """y = a · b (elementwise, same shapes); return (dE/da, dE/db) from gy = dE/dy.

    dE/da = gy · ∂y/∂a = gy · b,    dE/db = gy · a
    """
    return gy * b, gy * a


def _mul_cases():
    cases = []
    for seed, shape in [(0, (3, 4)), (1, (2, 3, 5))]:
        rng = _rng(seed)
        cases.append(Case(f"float32 {shape}, seed {seed}",
                          dict(a=_normal(rng, shape), b=_normal(rng, shape), gy=_normal(rng, shape))))
    rng = _rng(2)
    cases.append(Case("float64 gradcheck", dict(a=_normal(rng, (2, 3), "float64"),
                                                b=_normal(rng, (2, 3), "float64"),
                                                gy=_normal(rng, (2, 3), "float64")), gradcheck=True))
    return cases


MUL = Exercise(
    name="mul_backward", title="Mul backward",
    hints=(
        "Write y_i as a function of a_i and b_i and differentiate with respect to each.",
        "The chain rule: dE/da_i = dE/dy_i · ∂y_i/∂a_i. Does any other y_j depend on a_i?",
    ),
    stars=1, unit="autograd", kind="code",
    task="The forward pass is y = a * b elementwise (a and b have the same shape). Given the "
         "gradient gy = dE/dy arriving at y, return the gradients (ga, gb) = (dE/da, dE/db).",
    math="y_i = a_i b_i, so ∂y_i/∂a_i = b_i and ∂y_i/∂b_i = a_i (other elements do not "
         "depend on a_i). The chain rule: dE/da_i = gy_i · b_i, dE/db_i = gy_i · a_i.",
    solution=mul_backward, outputs=("ga", "gb"), cases=_mul_cases,
    expected=lambda a, b, gy: engine_grads(F.mul, (a, b), gy, (0, 1)),
    forward=lambda a, b, gy: a * b, wrt=("a", "b"),
    mistakes=[
        Mistake("the factors are swapped: dE/da is gy times the *other* factor, b",
                lambda a, b, gy: (gy * a, gy * b)),
        Mistake("the incoming gradient gy is missing: multiply the local derivative by gy",
                lambda a, b, gy: (b, a)),
    ])


# ----------------------------------------------------------------------------
# Div
# ----------------------------------------------------------------------------

def div_backward(a, b, gy):
    """y = a / b (same shapes); return (dE/da, dE/db).

    dE/da = gy / b,    dE/db = −gy · a / b²
    """
    ga = gy / b
    gb = -gy * a / (b * b)
    return ga, gb


def _div_cases():
    cases = []
    for seed, shape in [(0, (3, 4)), (1, (5,))]:
        rng = _rng(seed)
        cases.append(Case(f"float32 {shape}, seed {seed}", dict(
            a=_normal(rng, shape), b=_away_from_zero(rng, shape), gy=_normal(rng, shape))))
    rng = _rng(2)
    cases.append(Case("float64 gradcheck", dict(
        a=_normal(rng, (2, 3), "float64"), b=_away_from_zero(rng, (2, 3), "float64"),
        gy=_normal(rng, (2, 3), "float64")), gradcheck=True))
    return cases


DIV = Exercise(
    name="div_backward", title="Div backward",
    hints=(
        "Write y = a · b⁻¹ and differentiate with respect to a and to b separately.",
        "What is the derivative of b⁻¹? Mind its sign and its power.",
        "Multiply each local derivative by the incoming gradient gy.",
    ),
    stars=1, unit="autograd", kind="code",
    task="The forward pass is y = a / b elementwise (same shapes, b never 0). Return "
         "(ga, gb) = (dE/da, dE/db) given gy = dE/dy.",
    math="∂(a/b)/∂a = 1/b and ∂(a/b)/∂b = −a/b² (the derivative of b⁻¹ is −b⁻²). "
         "So dE/da = gy / b and dE/db = −gy · a / b².",
    solution=div_backward, outputs=("ga", "gb"), cases=_div_cases,
    expected=lambda a, b, gy: engine_grads(F.div, (a, b), gy, (0, 1)),
    forward=lambda a, b, gy: a / b, wrt=("a", "b"),
    mistakes=[
        Mistake("dE/db has the wrong sign: d(1/b)/db = −1/b²", lambda a, b, gy: (gy / b, gy * a / b**2)),
        Mistake("dE/db needs b squared in the denominator: d(a/b)/db = −a/b²",
                lambda a, b, gy: (gy / b, -gy * a / b)),
        Mistake("dE/da is gy / b, not gy · b", lambda a, b, gy: (gy * b, -gy * a / b**2)),
    ])


# ----------------------------------------------------------------------------
# Broadcasting: sum_to
# ----------------------------------------------------------------------------

def sum_to(g, shape):
    """Sum the gradient g back to ``shape``, undoing NumPy broadcasting.

    If x of ``shape`` was broadcast to g.shape in the forward pass, every copy
    of x[j] received a gradient, and dE/dx[j] is their sum: sum away the
    leading axes broadcasting added, and (keeping the axis) each axis where
    ``shape`` has size 1.
    """
    shape = tuple(shape)
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))               # axes that broadcasting prepended
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True)      # size-1 axes that were stretched


def _sum_to_cases():
    cases = []
    for seed, (g_shape, shape) in enumerate([((2, 3, 4), (3, 4)), ((2, 3, 4), (3, 1)),
                                             ((4, 3), (1, 3)), ((2, 3, 4), (1, 3, 1)),
                                             ((2, 3), ())]):
        g = _normal(_rng(seed), g_shape)
        cases.append(Case(f"{g_shape} -> {shape}", dict(g=g, shape=shape)))
    return cases


SUM_TO = Exercise(
    name="sum_to", title="Broadcasting: sum a gradient back to its operand's shape",
    hints=(
        "Broadcasting copies each element of x to several places of g: by the chain rule, what "
        "happens to the gradients of those copies?",
        "Compare g.shape with `shape`: which axes did broadcasting add in front, and which size-1 "
        "axes did it stretch?",
        "The result must have exactly `shape`: think about keepdims.",
    ),
    stars=2, unit="broadcasting", kind="code",
    task="In the forward pass an operand x of shape `shape` was broadcast to g.shape (for "
         "example a bias (C,) added to (N, C)). Given g = dE/d(broadcast x), return dE/dx, "
         "an array of shape `shape`.",
    math="Broadcasting copies x[j] to many places; each copy's gradient adds up (the "
         "multivariate chain rule sums over every path). So: sum over the leading axes "
         "that broadcasting prepended, and sum with keepdims=True over each axis where "
         "`shape` has size 1 but g does not. This is the one helper every binary op uses.",
    solution=sum_to, outputs=("gx",), cases=_sum_to_cases,
    expected=lambda g, shape: (F.sum_to(Tensor(g), shape).numpy(),),
    shape_hint="the result must have exactly `shape`: sum the prepended axes away, "
               "and sum size-1 axes with keepdims=True",
    mistakes=[
        Mistake("only the leading axes were summed: axes where `shape` has size 1 must be "
                "summed too (keepdims=True)", lambda g, shape: g.sum(axis=tuple(range(g.ndim - len(shape))))),
        Mistake("size-1 axes must be kept (keepdims=True), not removed",
                lambda g, shape: g.sum(axis=tuple(range(g.ndim - len(shape))) + tuple(
                    g.ndim - len(shape) + i for i, n in enumerate(shape) if n == 1))),
        Mistake("the copies' gradients add up: sum, do not average",
                lambda g, shape: sum_to(g, shape) * (np.prod(shape, dtype=float) / g.size)),
    ])


# ----------------------------------------------------------------------------
# MatMul
# ----------------------------------------------------------------------------

def matmul_backward(a, b, gy):
    """y = a @ b with a (n, k), b (k, m); return (dE/da, dE/db).

    dE/da = gy @ bᵀ   (n, m)·(m, k) → (n, k)
    dE/db = aᵀ @ gy   (k, n)·(n, m) → (k, m)
    """
    return gy @ b.T, a.T @ gy


def _matmul_cases():
    cases = []
    for seed, (n, k, m) in [(1, (3, 3, 3)), (0, (3, 4, 5)), (2, (1, 6, 2))]:   # square first: a
        # missing transpose then gives a wrong value (with a hint) rather than a shape error
        rng = _rng(seed)
        cases.append(Case(f"float32 ({n},{k})@({k},{m})", dict(
            a=_normal(rng, (n, k)), b=_normal(rng, (k, m)), gy=_normal(rng, (n, m)))))
    rng = _rng(3)
    cases.append(Case("float64 gradcheck", dict(
        a=_normal(rng, (3, 2), "float64"), b=_normal(rng, (2, 4), "float64"),
        gy=_normal(rng, (3, 4), "float64")), gradcheck=True))
    return cases


MATMUL = Exercise(
    name="matmul_backward", title="MatMul backward",
    hints=(
        "Write y[i, j] as a sum over p and differentiate by a[i, p]: which entries of y depend on "
        "it?",
        "The sum you get is itself a matrix product: of gy with which operand, transposed or not?",
        "Each gradient has its operand's shape: let the shapes tell you the order of the product.",
    ),
    stars=2, unit="broadcasting", kind="code",
    task="The forward pass is y = a @ b with a of shape (n, k) and b of shape (k, m). Return "
         "(ga, gb) = (dE/da, dE/db) given gy = dE/dy of shape (n, m).",
    math="y[i, j] = Σ_p a[i, p] b[p, j]. So dE/da[i, p] = Σ_j gy[i, j] b[p, j] = (gy @ bᵀ)[i, p] "
         "and dE/db[p, j] = Σ_i a[i, p] gy[i, j] = (aᵀ @ gy)[p, j]. Check the shapes: each "
         "gradient has its operand's shape.",
    solution=matmul_backward, outputs=("ga", "gb"), cases=_matmul_cases,
    expected=lambda a, b, gy: engine_grads(F.matmul, (a, b), gy, (0, 1)),
    forward=lambda a, b, gy: a @ b, wrt=("a", "b"),
    shape_hint="each gradient has the shape of its operand: ga (n, k), gb (k, m); "
               "a transposed weight usually shows up here",
    mistakes=[
        Mistake("b must be transposed: dE/da = gy @ bᵀ", lambda a, b, gy: (gy @ b, a.T @ gy)),
        Mistake("the order is aᵀ @ gy (the product gy.T @ a is its transpose)",
                lambda a, b, gy: (gy @ b.T, gy.T @ a)),
        Mistake("a must be transposed: dE/db = aᵀ @ gy", lambda a, b, gy: (gy @ b.T, a @ gy)),
    ])


EXERCISES = [MUL, DIV, SUM_TO, MATMUL]
