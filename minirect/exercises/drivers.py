"""Drivers of the build-it-yourself tasks: they run a student's engine and report numbers.

A student writes classes (``Tensor``, ``Function``, ``Add``...), not one function,
so each task has a driver ``driver(ns, *case_arguments)`` that takes the student's
namespace ``ns`` (their module, or any object with the attributes), builds a
small computation with it and returns what the grader compares with minirect's
own engine: arrays, and facts as numbers (1.0 for true, 0.0 for false).

This file imports only NumPy and the standard library: the grader loads it by
its path in a separate process, where minirect itself cannot be imported.
"""

import numpy as np


def _flag(condition) -> float:
    return 1.0 if condition else 0.0


def _array(value):
    """A float64 copy of a student's array (None, a missing gradient, counts as zeros elsewhere)."""
    return np.array(value, dtype=np.float64)


def _grad_or_zeros(t):
    return np.zeros(np.shape(t.data)) if t.grad is None else _array(t.grad)


def _as_tuple(grads):
    """A backward's result as a tuple (a lone array from a one-input function is accepted too)."""
    return tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)


def _graph_functions(ns):
    """Two functions written on top of the student's ``Function``: the graph tasks use these
    (not the student's own ``Add``/``Mul``, which come later in the track)."""

    class Plus(ns.Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy):
            return gy, gy

    class Times(ns.Function):
        def forward(self, a, b):
            self.driver_operands = (a, b)
            return a * b

        def backward(self, gy):
            a, b = self.driver_operands
            return gy * b, gy * a

    return {"add": Plus, "mul": Times}


def _build_graph(ns, leaves, graph):
    """Leaf tensors from the rows of ``leaves``, then node k = op(node i, node j) for each
    (op, i, j) of ``graph``; the last node is the output. Returns every node, in order."""
    functions = _graph_functions(ns)
    nodes = [ns.Tensor(np.array(row, dtype=np.float64)) for row in leaves]
    for op, i, j in graph:
        nodes.append(functions[op].apply(nodes[i], nodes[j]))
    return nodes


# ----------------------------------------------------------------------------
# Autograd: the tensor, the function, the order, the backward pass
# ----------------------------------------------------------------------------

def engine_tensor(ns, data):
    """A fresh Tensor: its data as float64, no gradient, no creator, no parents."""
    t = ns.Tensor(data)
    return (_array(t.data), _flag(np.asarray(t.data).dtype == np.float64), _flag(t.grad is None),
            _flag(t.creator is None), np.array(t.shape, dtype=np.float64), float(len(t.parents)))


def engine_apply(ns, a, b):
    """Function.apply on a function defined here (y = a * b + 1), then once more on its output."""

    class MulAddOne(ns.Function):
        def forward(self, a, b):
            return a * b + 1.0

        def backward(self, gy):
            raise AssertionError("apply must not call backward")

    x, w = ns.Tensor(a), ns.Tensor(b)
    y = MulAddOne.apply(x, w)
    fn = y.creator
    z = MulAddOne.apply(y, w)
    inputs = getattr(fn, "inputs", None)
    linked = isinstance(inputs, (tuple, list)) and len(inputs) == 2 and inputs[0] is x and inputs[1] is w
    parents = tuple(y.parents)
    chained = (z.creator is not None and z.creator is not fn and len(z.parents) == 2
               and z.parents[0] is y and z.parents[1] is w)
    try:
        ns.Function().forward(np.zeros(1))
        base_raises = False
    except NotImplementedError:
        base_raises = True
    return (_array(y.data), _flag(isinstance(y, ns.Tensor)), _flag(isinstance(fn, MulAddOne)),
            _flag(linked), _flag(len(parents) == 2 and parents[0] is x and parents[1] is w),
            _flag(y.grad is None), _array(z.data), _flag(chained), _flag(base_raises))


def engine_topo_order(ns, leaves, graph):
    """topological_order(output) on a graph: which nodes it lists, and whether parents come first."""
    nodes = _build_graph(ns, leaves, graph)
    index = {id(t): k for k, t in enumerate(nodes)}
    order = list(ns.topological_order(nodes[-1]))
    listed = [index.get(id(t), -1) for t in order]        # -1: something that is not a node
    first = {}                                         # where each node is first listed
    for p, k in enumerate(listed):
        first.setdefault(k, p)
    parents_first = all(parent in first and first[parent] < first[k]
                        for k in first if k >= len(leaves)
                        for parent in graph[k - len(leaves)][1:])
    return (np.array(sorted(listed), dtype=np.float64), _flag(parents_first),
            _flag(bool(order) and order[-1] is nodes[-1]))


def engine_backward(ns, leaves, graph):
    """output.backward() on a graph: the gradient of sum(output) with respect to each leaf."""
    nodes = _build_graph(ns, leaves, graph)
    nodes[-1].backward()
    return (np.stack([_grad_or_zeros(t) for t in nodes[:len(leaves)]]),)


# ----------------------------------------------------------------------------
# Broadcasting and the operations
# ----------------------------------------------------------------------------

def engine_sum_to(ns, g, shape):
    """sum_to(g, shape): the gradient g summed back to the shape of a broadcast operand."""
    return (_array(ns.sum_to(g, shape)),)


def engine_add_mul(ns, op, a, b, gy):
    """Add or Mul (named by ``op``) on two tensors: the output, then backward(gy)'s (ga, gb)."""
    y = getattr(ns, op).apply(ns.Tensor(a), ns.Tensor(b))
    grads = _as_tuple(y.creator.backward(gy))
    if len(grads) != 2:
        raise ValueError(f"{op}.backward returned {len(grads)} gradients for 2 inputs")
    return _array(y.data), _array(grads[0]), _array(grads[1])


def engine_matmul_sum(ns, a, b, gy, x, gs):
    """MatMul: y = a @ b and backward(gy); Sum: s = sum(x) and backward(gs)."""
    y = ns.MatMul.apply(ns.Tensor(a), ns.Tensor(b))
    grads = _as_tuple(y.creator.backward(gy))
    if len(grads) != 2:
        raise ValueError(f"MatMul.backward returned {len(grads)} gradients for 2 inputs")
    s = ns.Sum.apply(ns.Tensor(x))
    (gx,) = _as_tuple(s.creator.backward(gs))
    return _array(y.data), _array(grads[0]), _array(grads[1]), _array(s.data), _array(gx)


def engine_mlp(ns, x, W1, b1, W2, b2, t):
    """A two-layer network on the student's engine, end to end:

        h = relu(x @ W1 + b1),   d = h @ W2 + b2 - t,   loss = sum(d * d)

    loss.backward(), then the loss and the gradients of W1, b1, W2, b2 and x.
    """
    X, P1, B1, P2, B2 = (ns.Tensor(v) for v in (x, W1, b1, W2, b2))
    h = ns.ReLU.apply(ns.Add.apply(ns.MatMul.apply(X, P1), B1))
    d = ns.Add.apply(ns.Add.apply(ns.MatMul.apply(h, P2), B2), ns.Tensor(-t))
    loss = ns.Sum.apply(ns.Mul.apply(d, d))
    loss.backward()
    return (_array(loss.data),) + tuple(_grad_or_zeros(p) for p in (P1, B1, P2, B2, X))
