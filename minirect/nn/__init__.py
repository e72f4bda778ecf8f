"""Layers and containers (``from minirect import nn``)."""

from .module import Module, Parameter, save_arrays, load_arrays  # noqa: F401
from .layers import (  # noqa: F401
    Conv2d, Linear, ReLU, LeakyReLU, PReLU, MaxPool2d, AvgPool2d, GlobalAvgPool2d, SPP,
    Dropout, Flatten, Sequential, Softmax, MSELoss,
)
