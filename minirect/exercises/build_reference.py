"""A small autograd engine in plain NumPy: the reference for the build-it-yourself track.

What a student's engine looks like at the end of the tasks ``engine_tensor`` ...
``engine_mlp`` (``minirect.exercises.build``); like the student's file it imports
only NumPy. A ``Tensor`` holds ``data``, ``grad`` (None until backward) and its
``creator``; ``Function.apply`` runs ``forward`` on arrays and links output,
function and inputs into a graph; ``topological_order`` lists a tensor and all
it was computed from, parents first; ``Tensor.backward`` walks that list
backwards, adding each function's input gradients into ``grad``; ``sum_to``
undoes broadcasting. ``Add``, ``Mul``, ``MatMul``, ``Sum`` and ``ReLU`` then
train a two-layer network. ``minirect/autograd.py`` is this engine grown up.
"""

import numpy as np


class Tensor:
    """An array that remembers how it was made.

    data:    the values, a float64 NumPy array
    grad:    dE/d(data), an array of the same shape once backward has run; None before
    creator: the Function whose output this tensor is; None for a leaf (an input, a weight)
    """

    def __init__(self, data):
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = None
        self.creator = None

    @property
    def shape(self):
        return self.data.shape

    @property
    def parents(self):
        """The tensors this one was computed from: its creator's inputs (none for a leaf)."""
        return self.creator.inputs if self.creator is not None else ()

    def backward(self):
        """Fill in t.grad = dE/dt for every tensor t this one depends on, E = sum(self.data).

        The chain rule, one function at a time: a tensor's gradient is complete once
        every function that used it has passed its share back, which the reversed
        topological order guarantees. A tensor used twice receives two shares: add them.
        """
        self.grad = np.ones_like(self.data)
        for t in reversed(topological_order(self)):
            if t.creator is None:
                continue
            input_grads = t.creator.backward(t.grad)
            for x, g in zip(t.creator.inputs, input_grads):
                x.grad = g if x.grad is None else x.grad + g


def topological_order(tensor):
    """Every tensor ``tensor`` was computed from (itself included), each once, parents first."""
    order, visited = [], set()

    def visit(t):
        if id(t) not in visited:
            visited.add(id(t))
            for parent in t.parents:
                visit(parent)
            order.append(t)          # after all its parents: post-order

    visit(tensor)
    return order


class Function:
    """One operation: ``forward`` on arrays, ``backward`` from dE/dy to one dE/dx per input."""

    @classmethod
    def apply(cls, *inputs):
        """Run the operation on Tensors; the output remembers it, and it remembers its inputs."""
        fn = cls()
        fn.inputs = inputs
        out = Tensor(fn.forward(*[x.data for x in inputs]))
        out.creator = fn
        return out

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError


def sum_to(g, shape):
    """Sum g back to ``shape``: the gradient of an operand that broadcasting stretched.

    Broadcasting prepends axes and stretches size-1 axes; every copy of a value
    receives a gradient, and the value's gradient is the sum over its copies.
    """
    g = np.asarray(g)
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))                          # the prepended axes
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True).reshape(shape)  # the stretched axes


class Add(Function):
    """y = a + b (broadcasting); dE/da = sum_to(gy, a.shape), dE/db = sum_to(gy, b.shape)."""

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy, a.shape), sum_to(gy, b.shape)


class Mul(Function):
    """y = a * b (broadcasting); dE/da = sum_to(gy * b, a.shape), dE/db = sum_to(gy * a, b.shape)."""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        return sum_to(gy * b.data, a.shape), sum_to(gy * a.data, b.shape)


class MatMul(Function):
    """y = a @ b with a (n, k) and b (k, m); dE/da = gy @ bᵀ, dE/db = aᵀ @ gy."""

    def forward(self, a, b):
        return a @ b

    def backward(self, gy):
        a, b = self.inputs
        return gy @ b.data.T, a.data.T @ gy


class Sum(Function):
    """y = the sum of all elements of x (a 0-d array); dE/dx = gy in every position."""

    def forward(self, x):
        return np.sum(x)

    def backward(self, gy):
        (x,) = self.inputs
        return (np.full(x.shape, gy),)


class ReLU(Function):
    """y = max(x, 0); dE/dx = gy where x > 0, else 0."""

    def forward(self, x):
        return np.maximum(x, 0.0)

    def backward(self, gy):
        (x,) = self.inputs
        return (gy * (x.data > 0),)
