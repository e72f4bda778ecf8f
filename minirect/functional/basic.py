"""Elementwise arithmetic, reductions, shape ops, matmul and indexing.

Each class is one differentiable function: ``forward`` on raw arrays and
``backward`` mapping the output gradient ``gy`` = dE/dy to one gradient per
input. The derivations are in docs/derivations/elementwise.md,
reductions.md and matmul.md.

Broadcasting: when ``x`` was broadcast to the output's shape, its gradient is
the output gradient summed back to ``x.shape`` (``sum_to_shape``). That one
helper serves every binary op.
"""

import itertools
import math

from .. import backend, validate
from ..autograd import Function, Tensor, document


# ----------------------------------------------------------------------------
# Broadcasting helpers
# ----------------------------------------------------------------------------

def sum_to_shape(g, shape):
    """Sum the array ``g`` down to ``shape`` (undo NumPy broadcasting).

    Leading axes that broadcasting added are summed away; axes where ``shape``
    has size 1 are summed with keepdims.
    """
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    xp = backend.array_module(g)
    g = xp.sum(g, axis=axes, keepdims=True)
    return xp.reshape(g, shape) if lead else g


def _broadcast_shape(op, *shapes):
    """The shape NumPy broadcasting gives, or a ValueError naming ``op`` and the shapes."""
    try:
        return backend.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} "
                         "cannot be broadcast together") from None


class _Binary(Function):
    """Shared forward check: the two shapes must broadcast."""

    def _check(self, a, b):
        _broadcast_shape(type(self).__name__, a.shape, b.shape)
        self.shapes = (a.shape, b.shape)


# ----------------------------------------------------------------------------
# Elementwise arithmetic
# ----------------------------------------------------------------------------

class Add(_Binary):
    """y = a + b.   dE/da = gy, dE/db = gy (summed back over broadcast axes)."""

    def forward(self, a, b):
        self._check(a, b)
        return a + b

    def backward(self, gy):
        sa, sb = self.shapes
        return sum_to_shape(gy, sa), sum_to_shape(gy, sb)


class Sub(_Binary):
    """y = a - b.   dE/da = gy, dE/db = -gy."""

    def forward(self, a, b):
        self._check(a, b)
        return a - b

    def backward(self, gy):
        sa, sb = self.shapes
        return sum_to_shape(gy, sa), sum_to_shape(-gy, sb)


class Mul(_Binary):
    """y = a * b.   dE/da = gy * b, dE/db = gy * a."""

    def forward(self, a, b):
        self._check(a, b)
        self.save_for_backward(a, b)
        return a * b

    def backward(self, gy):
        a, b = self.saved
        return sum_to_shape(gy * b, a.shape), sum_to_shape(gy * a, b.shape)


class Div(_Binary):
    """y = a / b.   dE/da = gy / b, dE/db = -gy * a / b²."""

    def forward(self, a, b):
        self._check(a, b)
        self.save_for_backward(a, b)
        return a / b

    def backward(self, gy):
        a, b = self.saved
        ga = gy / b
        return sum_to_shape(ga, a.shape), sum_to_shape(-ga * a / b, b.shape)


class Pow(_Binary):
    """y = a ** b.   dE/da = gy * b * a^(b-1), dE/db = gy * y * log(a).

    The gradient for ``b`` is only defined for a > 0; it is computed only when
    ``b`` needs one (a constant exponent such as ``x ** 2`` skips the log).
    """

    def forward(self, a, b):
        self._check(a, b)
        y = a ** b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved
        ga = sum_to_shape(gy * b * a ** (b - 1), a.shape)
        need_b = self.inputs[1].requires_grad          # log(a) is nan for a < 0: only when asked
        return ga, sum_to_shape(gy * y * self.xp.log(a), b.shape) if need_b else None


class Neg(Function):
    """y = -x.   dE/dx = -gy."""

    def forward(self, x): return -x

    def backward(self, gy): return -gy


class Exp(Function):
    """y = exp(x).   dE/dx = gy * y."""

    def forward(self, x):
        y = self.xp.exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return gy * y


class Log(Function):
    """y = log(x).   dE/dx = gy / x."""

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log(x)

    def backward(self, gy):
        (x,) = self.saved
        return gy / x


class Sqrt(Function):
    """y = sqrt(x).   dE/dx = gy / (2 y)."""

    def forward(self, x):
        y = self.xp.sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return gy / (2 * y)


class Tanh(Function):
    """y = tanh(x).   dE/dx = gy * (1 - y²)."""

    def forward(self, x):
        y = self.xp.tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return gy * (1 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)).   dE/dx = gy * y * (1 - y).

    Computed as (tanh(x/2) + 1) / 2, which never overflows.
    """

    def forward(self, x):
        y = (self.xp.tanh(x * 0.5) + 1) * 0.5
        self.save_for_backward(y)
        return self.xp.astype(y, x.dtype, copy=False)

    def backward(self, gy):
        (y,) = self.saved
        return gy * y * (1 - y)


class AsType(Function):
    """y = x converted to another dtype.   dE/dx = gy converted back."""

    accepts = "any"        # moves values, no arithmetic

    def forward(self, x):
        self.in_dtype = x.dtype
        return self.xp.astype(x, backend.dtype_in(self.xp, self.dtype))

    def backward(self, gy): return self.xp.astype(gy, self.in_dtype)


# ----------------------------------------------------------------------------
# Reductions
# ----------------------------------------------------------------------------

def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _expand_reduced(g, in_shape, axes):
    """Reshape a reduced gradient so it broadcasts against the input again."""
    shape = tuple(1 if i in axes else n for i, n in enumerate(in_shape))
    return backend.array_module(g).reshape(g, shape)


class Sum(Function):
    """y = Σ_{axes} x.   dE/dx = gy broadcast back over the summed axes."""

    def forward(self, x):
        self.in_shape = x.shape
        self.axes = _normalize_axis(self.axis, x.ndim)
        return self.xp.sum(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        g = _expand_reduced(gy, self.in_shape, self.axes)
        return self.xp.asarray(self.xp.broadcast_to(g, self.in_shape), copy=True)


class Mean(Sum):
    """y = (1/N) Σ_{axes} x  (N = number of summed elements).   dE/dx = gy / N.

    A sum divided by N, so its gradient is Sum's, divided by N.
    """

    def forward(self, x):
        total = super().forward(x)
        self.count = math.prod(x.shape[a] for a in self.axes)
        return total / self.count          # a Python int keeps the dtype

    def backward(self, gy): return super().backward(gy / self.count)


class Max(Function):
    """y = max_{axes} x.   dE/dx = gy at the maximal elements, 0 elsewhere.

    When several elements tie for the maximum, the gradient is shared equally
    among them (a subgradient; tests keep inputs away from ties).
    """

    def forward(self, x):
        self.axes = _normalize_axis(self.axis, x.ndim)
        y = self.xp.max(x, axis=self.axes, keepdims=True)
        self.save_for_backward(x, y)
        return y if self.keepdims else self.xp.reshape(y, tuple(n for i, n in enumerate(x.shape)
                                                                if i not in self.axes))

    def backward(self, gy):
        x, y = self.saved
        mask = self.xp.astype(x == y, gy.dtype)
        count = self.xp.sum(mask, axis=self.axes, keepdims=True)
        return mask * (_expand_reduced(gy, x.shape, self.axes) / count)


# ----------------------------------------------------------------------------
# Shape ops
# ----------------------------------------------------------------------------

class Reshape(Function):
    """y = x viewed with a new shape.   dE/dx = gy reshaped back."""

    accepts = "any"        # moves values, no arithmetic

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return self.xp.reshape(x, self.shape)
        except (ValueError, TypeError):
            raise ValueError(f"reshape: cannot reshape {x.shape} ({math.prod(x.shape)} elements) "
                             f"into {tuple(self.shape)}") from None

    def backward(self, gy): return self.xp.reshape(gy, self.in_shape)


class Transpose(Function):
    """y = x with axes permuted.   dE/dx = gy with the inverse permutation."""

    accepts = "any"        # moves values, no arithmetic

    def forward(self, x):
        self.perm = tuple(range(x.ndim))[::-1] if self.axes is None else tuple(self.axes)
        return self.xp.permute_dims(x, self.perm)

    def backward(self, gy):
        inverse = sorted(range(len(self.perm)), key=self.perm.__getitem__)   # perm[inverse[i]] = i
        return self.xp.permute_dims(gy, tuple(inverse))


class BroadcastTo(Function):
    """y = x broadcast to ``shape``.   dE/dx = gy summed back to x's shape."""

    accepts = "any"        # moves values, no arithmetic

    def forward(self, x):
        self.in_shape = x.shape
        _broadcast_shape("broadcast_to", x.shape, self.shape)
        return self.xp.broadcast_to(x, self.shape)

    def backward(self, gy): return sum_to_shape(gy, self.in_shape)


class SumTo(Function):
    """y = x summed down to ``shape``.   dE/dx = gy broadcast back to x's shape."""

    accepts = "any"        # moves values, no arithmetic

    def forward(self, x):
        self.in_shape = x.shape
        _broadcast_shape("sum_to", x.shape, self.shape)
        return sum_to_shape(x, self.shape)

    def backward(self, gy): return self.xp.asarray(self.xp.broadcast_to(gy, self.in_shape), copy=True)


class GetItem(Function):
    """y = x[index] (basic slicing or integer-array indexing).

    dE/dx = zeros with gy added at ``index``. Repeated integer indices (x[[0, 0]])
    must accumulate; the standard has no scatter-add (and CuPy's duplicate-index
    writes are undefined), so integer-array indices on the leading axes are undone
    by a one-hot product: gx = onehotᵀ @ gy, onehot[k, p] = (position k is p).
    """

    accepts = "any"        # moves values, no arithmetic

    def forward(self, x):
        self.in_shape, xp = x.shape, self.xp
        if not _has_array_index(self.index):
            return x[self.index]
        # Integer arrays i, j on the leading axes: x[i, j] = rows of x (leading axes
        # flattened) taken at the row-major positions p = i·n_j + j (``xp.take``).
        parts, self.flat = self.index if isinstance(self.index, tuple) else (self.index,), 0
        while isinstance(parts[-1], slice) and parts[-1] == slice(None):    # x[i, :] is x[i]
            parts = parts[:-1]
        validate.array_index(parts)              # integer arrays only: no slices, no masks
        for p, n in zip(parts, x.shape):
            self.flat = self.flat * n + p % n
        self.rows = math.prod(x.shape[:len(parts)])
        y = xp.take(xp.reshape(x, (self.rows, -1)), xp.reshape(self.flat, (-1,)), axis=0)
        return xp.reshape(y, self.flat.shape + x.shape[len(parts):])

    def backward(self, gy):
        xp, index = self.xp, self.index
        if _has_array_index(index):        # gx = onehotᵀ @ gy: repeated positions add up
            flat = xp.reshape(self.flat, (-1, 1))
            onehot = xp.astype(flat == xp.arange(self.rows, **backend.on_device_of(gy)), gy.dtype)
            g = backend.matmul(onehot.mT, xp.reshape(gy, (flat.shape[0], -1)))
            return xp.reshape(g, self.in_shape)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype, **backend.on_device_of(gy))
        gx[index] = gy          # basic slicing selects each element at most once
        return gx


def _has_array_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "shape") and getattr(p, "ndim", 0) > 0 for p in parts)


class Concatenate(Function):
    """y = [x1, x2, ...] joined along ``axis``.   dE/dxi = the matching slice of gy."""

    accepts = "any"        # moves values, no arithmetic

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return self.xp.concat(xs, axis=self.axis)

    def backward(self, gy):
        starts = [0, *itertools.accumulate(self.sizes)]        # where each input's slice starts
        axis = self.axis % gy.ndim
        return tuple(gy[(slice(None),) * axis + (slice(a, b), ...)] for a, b in zip(starts, starts[1:]))


class Stack(Function):
    """y = [x1, x2, ...] stacked along a new ``axis``.   dE/dxi = gy taken at i."""

    accepts = "any"        # moves values, no arithmetic

    def forward(self, *xs): return self.xp.stack(xs, axis=self.axis)

    def backward(self, gy):
        axis = self.axis % gy.ndim
        return tuple(gy[(slice(None),) * axis + (i, ...)] for i in range(gy.shape[axis]))


# ----------------------------------------------------------------------------
# Matrix multiplication
# ----------------------------------------------------------------------------

class MatMul(Function):
    """y = a @ b (matrices, or stacks of matrices that broadcast).

    dE/da = gy @ bᵀ,  dE/db = aᵀ @ gy  (summed over broadcast batch axes).
    Vectors are treated as in NumPy: a 1-D ``a`` is a row, a 1-D ``b`` a column.
    Every product goes through ``backend.matmul``, so a CUDA graph can record it.
    """

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: use * for scalars; matmul needs at least 1-D inputs")
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match "
                             f"(inner sizes {k_a} != {k_b})")
        self.save_for_backward(a, b)
        return backend.matmul(a, b)

    def backward(self, gy):
        a, b = self.saved
        a2 = a[None, :] if a.ndim == 1 else a          # row vector
        b2 = b[:, None] if b.ndim == 1 else b          # column vector
        # gy with the vector axes put back: (..., m, n) for a2 (..., m, k) @ b2 (..., k, n)
        batch = backend.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = self.xp.reshape(gy, batch + (a2.shape[-2], b2.shape[-1]))
        ga = self.xp.reshape(sum_to_shape(backend.matmul(g2, b2.mT), a2.shape), a.shape)
        gb = self.xp.reshape(sum_to_shape(backend.matmul(a2.mT, g2), b2.shape), b.shape)
        return ga, gb


# ----------------------------------------------------------------------------
# Public function names: each applies its Function (docstrings copied below)
# ----------------------------------------------------------------------------

def add(a, b): return Add.apply(a, b)
def sub(a, b): return Sub.apply(a, b)
def mul(a, b): return Mul.apply(a, b)
def div(a, b): return Div.apply(a, b)
def pow(a, b): return Pow.apply(a, b)  # noqa: A001  (mirrors Python's operator name)
def neg(x): return Neg.apply(x)
def exp(x): return Exp.apply(x)
def log(x): return Log.apply(x)
def sqrt(x): return Sqrt.apply(x)
def tanh(x): return Tanh.apply(x)
def sigmoid(x): return Sigmoid.apply(x)
def astype(x, dtype): return AsType.apply(x, dtype=backend.dtype(dtype))
def sum(x, axis=None, keepdims=False): return Sum.apply(x, axis=axis, keepdims=keepdims)  # noqa: A001
def mean(x, axis=None, keepdims=False): return Mean.apply(x, axis=axis, keepdims=keepdims)
def max(x, axis=None, keepdims=False): return Max.apply(x, axis=axis, keepdims=keepdims)  # noqa: A001
def reshape(x, shape): return Reshape.apply(x, shape=tuple(shape))
def transpose(x, axes=None): return Transpose.apply(x, axes=axes)
def broadcast_to(x, shape): return BroadcastTo.apply(x, shape=tuple(shape))
def sum_to(x, shape): return SumTo.apply(x, shape=tuple(shape))


def getitem(x, index):
    """y = x[index]; dE/dx = zeros with gy added at index (repeats accumulate)."""
    xp, on_x = backend.array_module(x), backend.on_device_of(backend.unwrap(x))

    def as_array(i):     # Tensors and lists become index arrays on x's backend
        if isinstance(i, Tensor):
            return i.data
        return xp.asarray(i, **on_x) if isinstance(i, list) else i
    index = tuple(as_array(i) for i in index) if isinstance(index, tuple) else as_array(index)
    return GetItem.apply(x, index=index)


def concatenate(xs, axis=0): return Concatenate.apply(*xs, axis=axis)
def stack(xs, axis=0): return Stack.apply(*xs, axis=axis)
def matmul(a, b): return MatMul.apply(a, b)


for _wrapper, _function in [
        (add, Add), (sub, Sub), (mul, Mul), (div, Div), (pow, Pow), (neg, Neg), (exp, Exp),
        (log, Log), (sqrt, Sqrt), (tanh, Tanh), (sigmoid, Sigmoid), (astype, AsType), (sum, Sum),
        (mean, Mean), (max, Max), (reshape, Reshape), (transpose, Transpose),
        (broadcast_to, BroadcastTo), (sum_to, SumTo), (getitem, GetItem),
        (concatenate, Concatenate), (stack, Stack), (matmul, MatMul)]:
    document(_wrapper, _function)
