"""Differentiable functions on tensors (``import minirect.functional as F``)."""

from .basic import (  # noqa: F401
    add, sub, mul, div, pow, neg, exp, log, sqrt, tanh, sigmoid, astype,
    sum, mean, max, reshape, transpose, broadcast_to, sum_to, getitem,
    concatenate, stack, matmul, sum_to_shape,
)
