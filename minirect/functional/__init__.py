"""Differentiable functions on tensors (``import minirect.functional as F``)."""

import sys

from .basic import (add, sub, mul, div, pow, neg, exp, log, sqrt, tanh, sigmoid, astype,  # noqa: F401
                    sum, mean, max, reshape, transpose, broadcast_to, sum_to, getitem,
                    concatenate, stack, matmul, sum_to_shape)
from .activations import relu, leaky_relu, prelu  # noqa: F401
from .linear import linear, dropout  # noqa: F401
from .losses import (log_softmax, softmax, mse_loss, softmax_cross_entropy, cross_entropy,  # noqa: F401
                     accuracy, error_rate)
from .conv import conv2d, max_pool2d, avg_pool2d, global_avg_pool2d, spp, im2col, col2im  # noqa: F401

from .. import autograd  # noqa: E402
autograd.F = sys.modules[__name__]     # Tensor's operators (x + y, x @ W, x.sum()) call these functions
