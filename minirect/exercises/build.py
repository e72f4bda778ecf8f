"""Build it yourself: the tasks in which a student writes a small engine of their own.

Eight tasks, in order, grow one engine (a ``Tensor``, ``Function.apply``, the
topological order, ``backward`` with accumulation, ``sum_to``, the operations
``Add``, ``Mul``, ``MatMul``, ``Sum`` and ``ReLU``) until it trains a two-layer
network. The student's file (or notebook) defines classes, so each task is a
*driver* task: ``drivers.py`` runs the student's engine on the case and returns
numbers; the expected numbers come from minirect's own autograd on the same
computation. ``build_reference.py`` is the solution: a whole engine in one
NumPy-only file. ``templates/engine.py`` is the file a student copies and fills.

A known mistake here is the reference engine with one line changed (``_variant``),
run through the same driver: its output is what that mistake produces.
"""

from __future__ import annotations

import functools
import pathlib
import types

from .. import functional as F
from ..autograd import Function, Tensor, _topological_order
from . import build_reference, drivers
from ._checker import Case, Exercise, Mistake, case_rng, engine_grads, np

TEMPLATE = pathlib.Path(__file__).with_name("templates") / "engine.py"

# ----------------------------------------------------------------------------
# Known mistakes: the reference engine with one edit
# ----------------------------------------------------------------------------

_EDITS = {
    "dtype_kept": [("np.asarray(data, dtype=np.float64)", "np.asarray(data)")],
    "grad_zeros": [("        self.grad = None\n", "        self.grad = np.zeros_like(self.data)\n")],
    "no_creator": [("        out.creator = fn\n", "")],
    "inputs_as_arrays": [("        fn.inputs = inputs\n",
                          "        fn.inputs = tuple(x.data for x in inputs)\n")],
    "no_visited": [("        if id(t) not in visited:\n", "        if True:\n")],
    "pre_order": [("            for parent in t.parents:\n                visit(parent)\n"
                   "            order.append(t)          # after all its parents: post-order\n",
                   "            order.append(t)\n            for parent in t.parents:\n"
                   "                visit(parent)\n")],
    "overwrite": [("x.grad = g if x.grad is None else x.grad + g", "x.grad = g")],
    "in_place": [("x.grad = g if x.grad is None else x.grad + g",
                  "x.grad = g if x.grad is None else np.add(x.grad, g, out=x.grad)")],
    "add_no_sum_to": [("return sum_to(gy, a.shape), sum_to(gy, b.shape)", "return gy, gy")],
    "mul_swapped": [("return sum_to(gy * b.data, a.shape), sum_to(gy * a.data, b.shape)",
                     "return sum_to(gy * a.data, a.shape), sum_to(gy * b.data, b.shape)")],
    "mul_no_sum_to": [("return sum_to(gy * b.data, a.shape), sum_to(gy * a.data, b.shape)",
                       "return gy * b.data, gy * a.data")],
    "matmul_no_transpose": [("return gy @ b.data.T, a.data.T @ gy", "return gy @ b.data, a.data.T @ gy")],
    "matmul_order": [("return gy @ b.data.T, a.data.T @ gy", "return gy @ b.data.T, gy.T @ a.data")],
    "sum_not_spread": [("return (np.full(x.shape, gy),)", "return (gy,)")],
    "relu_no_mask": [("return (gy * (x.data > 0),)", "return (gy,)")],
}


@functools.cache
def _variant(name: str):
    """The reference engine with the edit ``_EDITS[name]``: an engine that makes that mistake."""
    source = pathlib.Path(build_reference.__file__).read_text(encoding="utf-8")
    for old, new in _EDITS[name]:
        if source.count(old) != 1:
            raise ValueError(f"mistake {name!r}: {old!r} is not once in build_reference.py")
        source = source.replace(old, new)
    module = types.ModuleType(f"build_reference_{name}")
    exec(compile(source, f"<build_reference with the mistake {name}>", "exec"), module.__dict__)
    return module


def _mistake(hint: str, driver, name: str) -> Mistake:
    def wrong(**args):
        return driver(_variant(name), **args)
    wrong.variant = name                 # the tests grade _variant(name) and expect this hint
    return Mistake(hint, wrong)


# ----------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------

def _normal(rng, shape):
    return rng.standard_normal(shape)            # float64: the student's engine computes in float64


def _random_graph(rng, n_leaves: int, n_ops: int) -> tuple:
    """(op, i, j) triples: node n_leaves + k = op(node i, node j), i among the latest nodes."""
    graph = []
    for k in range(n_ops):
        n = n_leaves + k
        i, j = int(rng.integers(max(0, n - 2), n)), int(rng.integers(0, n))
        graph.append((("add", "mul")[int(rng.integers(2))], i, j))
    return tuple(graph)


# Node 0 (and 1) are leaves; each triple adds one node; the last node is the output.
_GRAPHS = [
    ("y = x*x + x", 1, (("mul", 0, 0), ("add", 1, 0))),
    ("diamond: a = x*x, b = x+x, y = a*b", 1, (("mul", 0, 0), ("add", 0, 0), ("mul", 1, 2))),
    ("diamond with a skip edge: y = (x*x)*(x*x) + x", 1,
     (("mul", 0, 0), ("mul", 1, 1), ("add", 2, 0))),
    ("a long and a short path: a = x*x, y = (a*a)*(a*a) + a", 1,
     (("mul", 0, 0), ("mul", 1, 1), ("mul", 2, 2), ("add", 3, 1))),
    ("shared subexpression: h = x*w, y = (h+x)*(h*w)", 2,
     (("mul", 0, 1), ("add", 2, 0), ("mul", 2, 1), ("mul", 3, 4))),
    ("two leaves added: y = (x*x) * (x+w)", 2, (("mul", 0, 0), ("add", 0, 1), ("mul", 2, 3))),
    ("a node the output does not use", 2, (("mul", 0, 1), ("add", 0, 0), ("mul", 2, 2))),
]


def _graph_cases():
    cases = []
    for k, (label, n_leaves, graph) in enumerate(_GRAPHS):
        cases.append(Case(label, dict(leaves=case_rng(k).uniform(-1.5, 1.5, (n_leaves, 2, 3)), graph=graph)))
    for k, (n_leaves, n_ops) in enumerate([(2, 6), (3, 9)], start=len(_GRAPHS)):
        rng = case_rng(k)
        cases.append(Case(f"random graph: {n_leaves} leaves, {n_ops} operations", dict(
            leaves=rng.uniform(-1.5, 1.5, (n_leaves, 3)), graph=_random_graph(rng, n_leaves, n_ops))))
    return cases


# ----------------------------------------------------------------------------
# Expected values: minirect's own autograd on the same computation
# ----------------------------------------------------------------------------

def _flag(condition) -> float:
    return 1.0 if condition else 0.0


def _minirect_graph(leaves, graph):
    nodes = [Tensor(np.array(row, dtype="float64"), requires_grad=True) for row in leaves]
    ops = {"add": F.add, "mul": F.mul}
    for op, i, j in graph:
        nodes.append(ops[op](nodes[i], nodes[j]))
    return nodes


def _expected_tensor(data):
    t = Tensor(np.array(data, dtype="float64"))
    return (t.numpy(), _flag(t.dtype == np.float64), _flag(t.grad is None), _flag(t.is_leaf),
            np.array(t.shape, dtype="float64"), float(len(t.creator.inputs) if t.creator else 0))


class _MulAddOne(Function):
    def forward(self, a, b):
        return a * b + 1.0


def _expected_apply(a, b):
    x, w = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = _MulAddOne.apply(x, w)
    fn = y.creator
    z = _MulAddOne.apply(y, w)
    linked = len(fn.inputs) == 2 and fn.inputs[0] is x and fn.inputs[1] is w
    chained = z.creator is not fn and z.creator.inputs[0] is y and z.creator.inputs[1] is w
    try:
        Function().forward(np.zeros(1))
        base_raises = False
    except NotImplementedError:
        base_raises = True
    return (y.numpy(), _flag(isinstance(y, Tensor)), _flag(isinstance(fn, _MulAddOne)), _flag(linked),
            _flag(linked), _flag(y.grad is None), z.numpy(), _flag(chained), _flag(base_raises))


def _expected_topo_order(leaves, graph):
    nodes = _minirect_graph(leaves, graph)
    index = {id(t): k for k, t in enumerate(nodes)}
    listed = []                                  # minirect orders functions, outputs first
    for fn in reversed(_topological_order(nodes[-1].creator)):
        for t in list(fn.inputs) + [out() for out in fn.outputs]:
            if index[id(t)] not in listed:
                listed.append(index[id(t)])
    position = {k: p for p, k in enumerate(listed)}
    parents_first = all(position[parent] < position[k] for k in listed if k >= len(leaves)
                        for parent in graph[k - len(leaves)][1:])
    return (np.array(sorted(listed), dtype="float64"), _flag(parents_first),
            _flag(listed[-1] == len(nodes) - 1))


def _expected_backward(leaves, graph):
    nodes = _minirect_graph(leaves, graph)
    out = nodes[-1]
    out.backward(np.ones_like(out.numpy()))
    return (np.stack([np.zeros(t.shape) if t.grad is None else t.grad for t in nodes[:len(leaves)]]),)


def _expected_add_mul(op, a, b, gy):
    function = {"Add": F.add, "Mul": F.mul}[op]
    return (function(Tensor(a), Tensor(b)).numpy(),) + engine_grads(function, (a, b), gy, (0, 1))


def _expected_matmul_sum(a, b, gy, x, gs):
    return ((F.matmul(Tensor(a), Tensor(b)).numpy(),) + engine_grads(F.matmul, (a, b), gy, (0, 1))
            + (F.sum(Tensor(x)).numpy(),) + engine_grads(F.sum, (x,), gs, (0,)))


def _expected_mlp(x, W1, b1, W2, b2, t):
    X, P1, B1, P2, B2 = (Tensor(np.array(v, copy=True), requires_grad=True) for v in (x, W1, b1, W2, b2))
    h = F.relu(F.add(F.matmul(X, P1), B1))
    d = F.add(F.add(F.matmul(h, P2), B2), Tensor(-t))
    loss = F.sum(F.mul(d, d))
    loss.backward()
    return (loss.numpy(),) + tuple(p.grad for p in (P1, B1, P2, B2, X))


# ----------------------------------------------------------------------------
# The tasks
# ----------------------------------------------------------------------------

def _tensor_cases():
    rng0, rng1 = case_rng(0), case_rng(1)
    return [Case("a float32 array (3, 4)", dict(data=rng0.standard_normal((3, 4)).astype("float32"))),
            Case("a list of integers", dict(data=rng1.integers(-5, 6, (2, 3)).tolist())),
            Case("a Python number", dict(data=float(np.round(case_rng(2).uniform(-3, 3), 3)))),
            Case("a float64 array (2, 3, 2)", dict(data=_normal(case_rng(3), (2, 3, 2))))]


TENSOR = Exercise(
    name="engine_tensor", requires=("Tensor",),
    title="Build it: a Tensor that holds data, grad and its creator",
    task="Write the node of your graph. Tensor(data) stores data as a float64 NumPy array (data "
         "may be a list, a number or an array of another dtype), grad = None (no gradient yet) and "
         "creator = None (the Function that produced it; None for a leaf: an input or a weight). "
         "Add two read-only properties: shape, the shape of data, and parents, the tensors this one "
         "was computed from: the creator's inputs, or () for a leaf.",
    math="A tensor is a node of the computation graph: its value, the gradient dE/d(value) that "
         "backward will fill in, and a link to the operation that made it.",
    solution=build_reference, outputs=("data", "data_is_float64", "grad_is_None", "creator_is_None",
                                       "shape", "number_of_parents"),
    cases=_tensor_cases, expected=_expected_tensor, driver=drivers.engine_tensor,
    defines="class Tensor: Tensor(data) with the attributes data (the values as a float64 NumPy "
            "array), grad (None) and creator (None), and the properties shape (the shape of data) "
            "and parents (creator.inputs, or () when creator is None)",
    hints=("np.asarray with a dtype converts lists, numbers and float32 arrays in one call.",
           "A property is a method under @property: t.shape then reads like an attribute.",
           "parents depends on creator: a leaf has nothing to return but an empty tuple (the next "
           "task gives every Function its inputs)."),
    stars=1, unit="autograd",
    mistakes=[
        _mistake("data must be float64 whatever it was given as (a list of integers, float32): "
                 "give np.asarray the dtype", drivers.engine_tensor, "dtype_kept"),
        _mistake("grad starts as None (no gradient yet), not as zeros: backward fills it in",
                 drivers.engine_tensor, "grad_zeros"),
    ])


def _apply_cases():
    cases = []
    for k, (shape_a, shape_b) in enumerate([((3,), (3,)), ((2, 3), (2, 3)), ((2, 3), (3,))]):
        rng = case_rng(k)
        cases.append(Case(f"{shape_a} and {shape_b}", dict(a=_normal(rng, shape_a), b=_normal(rng, shape_b))))
    return cases


APPLY = Exercise(
    name="engine_apply", requires=("Tensor", "Function"),
    title="Build it: Function.apply runs forward and links the output",
    task="Write the edge of your graph. A Function subclass implements forward on NumPy arrays and "
         "backward on gradients; apply is what every operation shares: MyOp.apply(x, w) makes a new "
         "instance fn, remembers the input tensors in fn.inputs, runs fn.forward on their arrays, "
         "wraps the result in a Tensor and links it back (its creator is fn). The checker defines its "
         "own operation (y = a * b + 1) on top of your Function, applies it twice in a row and "
         "checks the links; Function's own forward and backward raise NotImplementedError.",
    math="y = f(x, w) recorded as: y.creator = fn, fn.inputs = (x, w). Following creator and inputs "
         "from the output reaches every tensor it was computed from: that is the graph backward walks.",
    solution=build_reference,
    outputs=("y", "output_is_Tensor", "creator_is_the_function", "inputs_are_the_tensors",
             "parents_are_the_inputs", "grad_is_None", "z", "each_apply_is_a_new_function",
             "Function_forward_raises"),
    cases=_apply_cases, expected=_expected_apply, driver=drivers.engine_apply,
    defines="class Function: a classmethod apply(*inputs) -> Tensor, and the methods "
            "forward(*arrays) -> array and backward(gy) -> tuple of arrays, which raise "
            "NotImplementedError (subclasses override them). apply creates fn = cls(), sets "
            "fn.inputs to the tuple of input Tensors, makes the output Tensor from "
            "fn.forward(*(x.data for x in inputs)), sets the output's creator to fn and returns it",
    hints=("A classmethod receives the class itself (cls) as its first argument: cls() makes an "
           "instance of whichever subclass apply was called on.",
           "forward computes on arrays, not on tensors: give it each input's data.",
           "Once apply has run, y.creator.inputs leads from the output back to its inputs; with "
           "Tensor.parents that is the whole graph."),
    stars=1, unit="autograd",
    mistakes=[
        _mistake("fn.inputs must hold the input Tensors themselves, not their arrays: backward "
                 "gives each of those tensors its gradient", drivers.engine_apply, "inputs_as_arrays"),
        _mistake("apply must link the output to the function (its creator is fn): without that "
                 "link backward cannot find the graph", drivers.engine_apply, "no_creator"),
    ])


TOPO_ORDER = Exercise(
    name="engine_topo_order", requires=("Tensor", "Function", "topological_order"),
    title="Build it: the topological order of a graph (a diamond included)",
    task="Backward may process a tensor only when its gradient is complete, that is after every "
         "tensor computed from it: a topological order, read backwards. Write "
         "topological_order(tensor), which follows parents from `tensor` to the leaves. The checker "
         "builds graphs with its own add and mul written on your Function and Tensor: a chain, a "
         "diamond (x feeds two branches that meet again), a diamond with a skip edge, a graph with a "
         "node the output does not use, and random graphs. It checks which tensors you list (each "
         "once, no others) and that each comes after its parents, the output last.",
    math="A topological order of a directed acyclic graph lists each node after all of its "
         "parents. Depth-first post-order gives one: place a node once all its parents are placed.",
    solution=build_reference, outputs=("listed_nodes", "parents_first", "output_last"),
    cases=_graph_cases, expected=_expected_topo_order, driver=drivers.engine_topo_order,
    defines="topological_order(tensor) -> list of Tensors: every tensor that `tensor` was computed "
            "from (the leaves and `tensor` itself included), each listed once and after all of its "
            "parents, so that `tensor` comes last",
    shape_hint="list every tensor the output depends on exactly once: no repeats, none missing, "
               "no tensor the output does not depend on",
    hints=("Depth first: to place a tensor, first place each of its parents, then the tensor itself.",
           "A tensor reached along two paths (the top of a diamond) must be listed once: remember "
           "which tensors you have visited (a set of id(t)).",
           "Ordering tensors by their distance from the output (breadth first) fails on a diamond "
           "whose two branches have different lengths."),
    stars=2, unit="autograd",
    mistakes=[
        _mistake("a tensor reached along two paths was listed twice: remember which tensors you "
                 "have visited and list each once", drivers.engine_topo_order, "no_visited"),
        _mistake("each tensor must come after all the tensors it was computed from (the leaves "
                 "first, the output last): list a tensor after visiting its parents, not before",
                 drivers.engine_topo_order, "pre_order"),
    ])


BACKWARD = Exercise(
    name="engine_backward", requires=("Tensor", "Function", "topological_order"),
    title="Build it: backward() with gradient accumulation",
    task="Write the backward pass: the chain rule applied once per function, from the output back "
         "to the leaves. t.backward() sets t.grad to ones (E is the sum of t's elements), then goes "
         "through topological_order(t) backwards; at each tensor that has a creator it calls "
         "creator.backward(grad), which returns one gradient per input, and adds each into that "
         "input's grad. The checker's graphs use its own add and mul written on your Function, so "
         "only your backward and topological_order run here: on y = x*x + x (x used three times), "
         "a diamond, a skip edge and random graphs. It compares the leaves' gradients with "
         "minirect's backward.",
    math="dE/dx = Σ over the uses of x of (dE/dy)(∂y/∂x): the multivariate chain rule sums over "
         "every path. In the reversed topological order every function that used x has passed its "
         "share back before x's own creator is reached.",
    solution=build_reference, outputs=("leaf_grads",),
    cases=_graph_cases, expected=_expected_backward, driver=drivers.engine_backward,
    defines="Tensor.backward() -> None: sets self.grad to ones of self's shape, then goes through "
            "topological_order(self) backwards and, for each tensor t that has a creator, calls "
            "t.creator.backward(t.grad) (one gradient per input, in the order of "
            "t.creator.inputs) and adds each into that input's grad (None counts as zero)",
    hints=("In the reversed topological order every function that used a tensor comes before the "
           "tensor's own creator, so t.grad is complete when you reach t.",
           "A tensor used more than once receives a gradient from each use: add them, do not replace.",
           "Leaves (creator None) only receive gradients; they pass nothing on."),
    stars=2, unit="autograd",
    mistakes=[
        _mistake("gradients were overwritten: a tensor used more than once (x in x*x + x) must add "
                 "up the gradients from every use (start from None, then add)",
                 drivers.engine_backward, "overwrite"),
        _mistake("some gradients are counted twice: a tensor that topological_order lists twice "
                 "passes its gradient back twice (list each tensor once)",
                 drivers.engine_backward, "no_visited"),
        _mistake("a gradient array was changed in place after it was shared: a function may hand "
                 "the same array to two inputs (x + w gives gy to both), so add into a new array "
                 "(x.grad + g), not with +=", drivers.engine_backward, "in_place"),
    ])


def _sum_to_cases():
    shapes = [((2, 3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((4, 3), (1, 3)), ((2, 3, 4), (1, 3, 1)),
              ((2, 3), ()), ((3, 4), (3, 4)), ((2, 3, 4), (4,))]
    return [Case(f"{g_shape} -> {shape}", dict(g=_normal(case_rng(k), g_shape), shape=shape))
            for k, (g_shape, shape) in enumerate(shapes)]


def _leading_only(g, shape):
    return g.sum(axis=tuple(range(g.ndim - len(shape))))


def _size_one_only(g, shape):
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


SUM_TO = Exercise(
    name="engine_sum_to", requires=("sum_to",),
    title="Build it: sum_to, the gradient of a broadcast operand",
    task="In a broadcasting operation an operand x of shape `shape` was stretched to g.shape (a bias "
         "(C,) added to (N, C); a (3, 1) column times a (3, 4) matrix). Every copy of x[j] receives "
         "a gradient, and x's gradient is their sum. Write sum_to(g, shape), which returns an array "
         "of exactly `shape`: the one helper your Add and Mul will call (the same function as the "
         "exercise sum_to).",
    math="Broadcasting copies x[j] to many places; the chain rule sums the copies' gradients. "
         "Axes are aligned at the right: sum the leading axes broadcasting prepended, then, keeping "
         "the axis, each axis where `shape` has size 1 and g does not.",
    solution=build_reference, outputs=("gx",), cases=_sum_to_cases,
    expected=lambda g, shape: (F.sum_to(Tensor(g), shape).numpy(),), driver=drivers.engine_sum_to,
    defines="sum_to(g, shape) -> array of exactly `shape`: g summed over the axes that broadcasting "
            "prepended or stretched",
    shape_hint="the result must have exactly `shape`: sum the prepended axes away, and sum size-1 "
               "axes with keepdims=True",
    hints=("Broadcasting aligns shapes at the right: g may have more axes than `shape`, at the front.",
           "Sum the extra leading axes away, then sum (keeping the axis) each axis where `shape` has "
           "size 1 and g does not.",
           "Try your function on (2, 3) → () and on (2, 3, 4) → (1, 3, 1) and look at the shapes."),
    stars=1, unit="broadcasting",
    mistakes=[
        Mistake("the leading axes that broadcasting prepended were not summed: (N, C) → (C,) "
                "sums over axis 0", lambda g, shape: _size_one_only(g, shape)),
        Mistake("only the leading axes were summed: axes where `shape` has size 1 must be summed "
                "too (keeping them)", lambda g, shape: _leading_only(g, shape)),
    ])


def _add_mul_cases():
    setups = [("Add", (3, 4), (3, 4)), ("Add", (2, 3), (3,)), ("Add", (2, 3), ()),
              ("Mul", (3, 4), (3, 4)), ("Mul", (2, 3, 4), (3, 1)), ("Mul", (4, 1), (1, 3)),
              ("Mul", (3,), (2, 3))]
    cases = []
    for k, (op, shape_a, shape_b) in enumerate(setups):
        rng = case_rng(k)
        a, b = _normal(rng, shape_a), _normal(rng, shape_b)
        gy = _normal(rng, np.broadcast_shapes(shape_a, shape_b))
        cases.append(Case(f"{op} {shape_a} and {shape_b}", dict(op=op, a=a, b=b, gy=gy)))
    return cases


ADD_MUL = Exercise(
    name="engine_add_mul", requires=("Tensor", "Function", "sum_to", "Add", "Mul"),
    title="Build it: Add and Mul with broadcasting",
    task="Write your first two operations, Add (y = a + b) and Mul (y = a * b), as Function "
         "subclasses. They broadcast like NumPy, so a and b may have different shapes; backward(gy) "
         "receives gy (of y's shape) and returns the tuple (ga, gb), ga of a's shape and gb of b's. "
         "The checker calls Op.apply(Tensor(a), Tensor(b)), then y.creator.backward(gy).",
    math="Same shapes: dE/da = gy and dE/db = gy for a sum; dE/da = gy·b and dE/db = gy·a for a "
         "product. With broadcasting each gradient is then summed back to its operand's shape: "
         "sum_to(·, a.shape), sum_to(·, b.shape).",
    solution=build_reference, outputs=("y", "ga", "gb"), cases=_add_mul_cases,
    expected=_expected_add_mul, driver=drivers.engine_add_mul,
    defines="class Add(Function) and class Mul(Function): forward(a, b) -> a + b or a * b (NumPy "
            "broadcasting); backward(gy) -> (ga, gb), each of its input's shape (use sum_to)",
    shape_hint="each gradient has its own input's shape: fold gy back with sum_to",
    hints=("Work out the gradients as if both operands had the same shape, then fold each back to "
           "its operand's shape with sum_to.",
           "backward needs the forward's operands: fn.inputs holds the input tensors (or keep the "
           "arrays from forward on self).",
           "For a product, each factor's gradient is gy times the other factor."),
    stars=2, unit="broadcasting",
    mistakes=[
        _mistake("each gradient must have its input's shape: sum the broadcast copies back with "
                 "sum_to(g, input's shape)", drivers.engine_add_mul, "add_no_sum_to"),
        _mistake("the factors are swapped: dE/da is gy times the *other* factor, b",
                 drivers.engine_add_mul, "mul_swapped"),
        _mistake("Mul's gradients must be summed back to their inputs' shapes with sum_to",
                 drivers.engine_add_mul, "mul_no_sum_to"),
    ])


def _matmul_sum_cases():
    cases = []
    for k, ((n, m, p), shape) in enumerate([((3, 3, 3), (2, 3)), ((3, 4, 5), (4,)), ((1, 6, 2), (2, 2, 3))]):
        rng = case_rng(k)       # square first: a missing transpose is then a wrong value, with a hint
        cases.append(Case(f"({n},{m})@({m},{p}); sum of {shape}", dict(
            a=_normal(rng, (n, m)), b=_normal(rng, (m, p)), gy=_normal(rng, (n, p)),
            x=_normal(rng, shape), gs=np.asarray(rng.standard_normal()))))
    return cases


MATMUL_SUM = Exercise(
    name="engine_matmul_sum", requires=("Tensor", "Function", "MatMul", "Sum"),
    title="Build it: MatMul and Sum",
    task="Write MatMul (y = a @ b for a of shape (n, k) and b of shape (k, m)) and Sum (s = the sum "
         "of all elements of x, a 0-d array) as Function subclasses. backward returns a tuple: "
         "(ga, gb) for MatMul, (gx,) for Sum, each gradient of its input's shape. The checker calls "
         "MatMul.apply(Tensor(a), Tensor(b)) and its backward(gy), then Sum.apply(Tensor(x)) and "
         "its backward(gs) with a 0-d gs.",
    math="y[i, j] = Σ_p a[i, p] b[p, j] gives dE/da = gy @ bᵀ and dE/db = aᵀ @ gy; s = Σ x gives "
         "ds/dx = 1 everywhere, so dE/dx = gs in every position.",
    solution=build_reference, outputs=("y", "ga", "gb", "s", "gx"), cases=_matmul_sum_cases,
    expected=_expected_matmul_sum, driver=drivers.engine_matmul_sum,
    defines="class MatMul(Function): forward(a, b) -> a @ b for 2-D a (n, k) and b (k, m), "
            "backward(gy) -> (ga, gb); class Sum(Function): forward(x) -> the sum of all elements "
            "of x (a 0-d array), backward(gy) -> (gx,) with gx of x's shape",
    shape_hint="each gradient has its input's shape: ga (n, k), gb (k, m), gx the shape of x",
    hints=("Write one element y[i, j] as a sum over p and differentiate it by a[i, p]; then "
           "recognise a matrix product.",
           "Check shapes: ga has a's shape (n, k) and gb has b's (k, m), while gy is (n, m).",
           "Every element of x enters the sum with weight 1: each receives the whole incoming "
           "gradient."),
    stars=2, unit="broadcasting",
    mistakes=[
        _mistake("b must be transposed: dE/da = gy @ bᵀ", drivers.engine_matmul_sum, "matmul_no_transpose"),
        _mistake("the order is aᵀ @ gy (gyᵀ @ a is its transpose)", drivers.engine_matmul_sum,
                 "matmul_order"),
        _mistake("Sum's gradient has x's shape: every element receives the incoming gradient",
                 drivers.engine_matmul_sum, "sum_not_spread"),
    ])


def _mlp_cases():
    cases = []
    for k, (n, d, h, c) in enumerate([(4, 3, 5, 2), (6, 4, 8, 3), (1, 2, 3, 1)]):
        rng = case_rng(k)
        cases.append(Case(f"batch {n}, {d} -> {h} -> {c}", dict(
            x=_normal(rng, (n, d)), W1=_normal(rng, (d, h)) / np.sqrt(d), b1=0.1 * _normal(rng, (h,)),
            W2=_normal(rng, (h, c)) / np.sqrt(h), b2=0.1 * _normal(rng, (c,)), t=_normal(rng, (n, c)))))
    return cases


MLP = Exercise(
    name="engine_mlp", requires=("Tensor", "Function", "topological_order", "sum_to", "Add", "Mul",
                                 "MatMul", "Sum", "ReLU"),
    title="Build it: ReLU, and a two-layer network on your engine end to end",
    task="Write ReLU (y = max(x, 0)) as a Function subclass, then run your whole engine end to end. "
         "The checker builds a two-layer network from your operations: h = ReLU(Add(MatMul(x, W1), "
         "b1)), d = Add(Add(MatMul(h, W2), b2), Tensor(-t)), loss = Sum(Mul(d, d)); it calls "
         "loss.backward() and compares the loss and the gradients of W1, b1, W2, b2 and x with "
         "minirect's autograd on the same network.",
    math="ReLU: y = max(x, 0), dE/dx = gy where x > 0 and 0 elsewhere. The rest is the chain rule "
         "your backward already applies: the bias gradients are summed over the batch (sum_to), "
         "and d, used twice in d * d, collects two shares.",
    solution=build_reference, outputs=("loss", "gW1", "gb1", "gW2", "gb2", "gx"), cases=_mlp_cases,
    expected=_expected_mlp, driver=drivers.engine_mlp,
    defines="class ReLU(Function): forward(x) -> max(x, 0), backward(gy) -> (gx,); with it your "
            "Tensor, Function, topological_order, backward, sum_to, Add, Mul, MatMul and Sum run "
            "loss = Sum(d * d), d = relu(x @ W1 + b1) @ W2 + b2 - t",
    shape_hint="b1 and b2 were broadcast over the batch: their gradients have their own shapes",
    hints=("ReLU passes the gradient where its input was positive and blocks it elsewhere.",
           "If only this task fails, look at what is new here: a bias broadcast over the batch, d "
           "used twice in d * d, a 0-d loss."),
    stars=2, unit="broadcasting",
    mistakes=[
        _mistake("ReLU's backward must block the gradient where its input was not positive",
                 drivers.engine_mlp, "relu_no_mask"),
        _mistake("gradients were overwritten: d is used twice in d * d, so its gradient is the sum "
                 "of both uses", drivers.engine_mlp, "overwrite"),
        _mistake("the bias gradients must be summed over the batch: Add's backward folds gy back "
                 "to each input's shape with sum_to", drivers.engine_mlp, "add_no_sum_to"),
    ])


EXERCISES = [TENSOR, APPLY, TOPO_ORDER, BACKWARD, SUM_TO, ADD_MUL, MATMUL_SUM, MLP]
