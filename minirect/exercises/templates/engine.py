"""My autograd engine: the build-it-yourself track of minirect's course.

Copy this file, fill in the stubs in order (each says which task it belongs
to), and check your work as you go:

    minirect exercises describe engine_tensor      # the task, what to define, hints
    minirect exercises check engine.py             # grade every task

Rules of the track: NumPy and the standard library only (no minirect, no other
framework). Every array is float64. The graders build small computations with
your classes and compare the numbers with minirect's own autograd.

The tasks, in order:
    1. engine_tensor      Tensor: data, grad, creator, shape, parents
    2. engine_apply       Function.apply: run forward on arrays, link the output
    3. engine_topo_order  topological_order(tensor)
    4. engine_backward    Tensor.backward(), with gradient accumulation
    5. engine_sum_to      sum_to(g, shape): undo broadcasting
    6. engine_add_mul     Add and Mul, with broadcasting
    7. engine_matmul_sum  MatMul and Sum
    8. engine_mlp         ReLU, and a two-layer network end to end
"""

import numpy as np  # noqa: F401  (your code will need it)


class Tensor:
    """A node of the graph: an array that remembers how it was made.

    Task 1 (engine_tensor): Tensor(data) stores
      data:    the values as a float64 NumPy array (data may be a list, a number
               or an array of another dtype)
      grad:    None (backward fills in dE/d(data), an array of data's shape)
      creator: None (the Function whose output this tensor is; None for a leaf,
               an input or a weight)
    """

    def __init__(self, data):
        raise NotImplementedError("task 1 (engine_tensor): store data as float64, grad and creator")

    @property
    def shape(self):
        """Task 1: the shape of data."""
        raise NotImplementedError("task 1 (engine_tensor): the shape of data")

    @property
    def parents(self):
        """Task 1: the tensors this one was computed from: the creator's inputs, or () for a leaf."""
        raise NotImplementedError("task 1 (engine_tensor): the creator's inputs, or ()")

    def backward(self):
        """Task 4 (engine_backward): fill in t.grad = dE/dt for every tensor t that self depends on.

        E is the sum of self's elements, so self.grad starts as ones of self's
        shape. Then go through topological_order(self) backwards; at each tensor
        t that has a creator, t.creator.backward(t.grad) returns one gradient per
        input (in the order of t.creator.inputs): add each into that input's grad
        (None counts as zero). Returns nothing.
        """
        raise NotImplementedError("task 4 (engine_backward): the chain rule, output to leaves")


def topological_order(tensor):
    """Task 3 (engine_topo_order): every tensor that ``tensor`` was computed from.

    Returns a list of Tensors: the leaves and ``tensor`` itself included, each
    listed once, each after all of its parents (so ``tensor`` comes last).
    """
    raise NotImplementedError("task 3 (engine_topo_order): parents first, each tensor once")


class Function:
    """An edge of the graph: one operation, from input tensors to an output tensor.

    Subclasses override forward and backward:
      forward(*arrays) -> array: the operation on the inputs' NumPy arrays
      backward(gy) -> tuple: one gradient per input (each of its input's shape),
                             given gy = dE/d(output)
    """

    @classmethod
    def apply(cls, *inputs):
        """Task 2 (engine_apply): run the operation on Tensors and record it in the graph.

        Make a new instance fn = cls(), store the input Tensors in fn.inputs (a
        tuple), compute the output Tensor from fn.forward on the inputs' data
        arrays, set the output's creator to fn, and return the output.
        """
        raise NotImplementedError("task 2 (engine_apply): forward on arrays, then link the output")

    def forward(self, *arrays):
        raise NotImplementedError      # subclasses override this (leave it as it is)

    def backward(self, gy):
        raise NotImplementedError      # subclasses override this (leave it as it is)


def sum_to(g, shape):
    """Task 5 (engine_sum_to): sum the gradient g back to ``shape``.

    An operand of shape ``shape`` was broadcast to g.shape in the forward pass;
    return its gradient: an array of exactly ``shape``.
    """
    raise NotImplementedError("task 5 (engine_sum_to): undo broadcasting")


class Add(Function):
    """Task 6 (engine_add_mul): y = a + b with NumPy broadcasting.

    backward(gy) returns (ga, gb), ga of a's shape and gb of b's shape.
    """

    def forward(self, a, b):
        raise NotImplementedError("task 6 (engine_add_mul): Add.forward")

    def backward(self, gy):
        raise NotImplementedError("task 6 (engine_add_mul): Add.backward, with sum_to")


class Mul(Function):
    """Task 6 (engine_add_mul): y = a * b with NumPy broadcasting.

    backward(gy) returns (ga, gb), ga of a's shape and gb of b's shape.
    """

    def forward(self, a, b):
        raise NotImplementedError("task 6 (engine_add_mul): Mul.forward")

    def backward(self, gy):
        raise NotImplementedError("task 6 (engine_add_mul): Mul.backward, with sum_to")


class MatMul(Function):
    """Task 7 (engine_matmul_sum): y = a @ b for 2-D a (n, k) and b (k, m).

    backward(gy) returns (ga, gb), with gy of shape (n, m).
    """

    def forward(self, a, b):
        raise NotImplementedError("task 7 (engine_matmul_sum): MatMul.forward")

    def backward(self, gy):
        raise NotImplementedError("task 7 (engine_matmul_sum): MatMul.backward")


class Sum(Function):
    """Task 7 (engine_matmul_sum): y = the sum of all elements of x (a 0-d array).

    backward(gy) returns (gx,), gx of x's shape, for a 0-d gy.
    """

    def forward(self, x):
        raise NotImplementedError("task 7 (engine_matmul_sum): Sum.forward")

    def backward(self, gy):
        raise NotImplementedError("task 7 (engine_matmul_sum): Sum.backward")


class ReLU(Function):
    """Task 8 (engine_mlp): y = max(x, 0), the paper's rectifier.

    backward(gy) returns (gx,). With ReLU your engine runs a two-layer network:
    loss = Sum(d * d), d = relu(x @ W1 + b1) @ W2 + b2 - t.
    """

    def forward(self, x):
        raise NotImplementedError("task 8 (engine_mlp): ReLU.forward")

    def backward(self, gy):
        raise NotImplementedError("task 8 (engine_mlp): ReLU.backward")
