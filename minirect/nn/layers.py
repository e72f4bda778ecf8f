"""Layers: thin ``Module`` wrappers that hold parameters and call ``functional``.

The math (forward, backward, derivation) lives with each function in
``minirect.functional``; a layer only owns weights and settings.
"""

from .. import backend, init, validate
from .. import functional as F
from .module import Module, Parameter


def _new_parameter(shape, dtype=None):
    return Parameter(backend.zeros(shape, dtype))


class Conv2d(Module):
    """2-D convolution over NCHW input: y = W ∗ x + b.

    Weight shape (out_channels, in_channels, kh, kw). Weights start with MSRA
    (fan_in, a = 0), biases at zero; re-initialize with ``minirect.init``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        validate.sizes("Conv2d", in_channels=in_channels, out_channels=out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = validate.pair(kernel_size, "Conv2d", "kernel_size", 1,
                                         " (the paper uses 3, 2 or 7)")
        validate.pair(stride, "Conv2d", "stride", 1)      # refused now, not at the first batch
        validate.pair(padding, "Conv2d", "padding", 0)
        self.stride, self.padding = stride, padding
        self.weight = _new_parameter((out_channels, in_channels) + self.kernel_size)
        init.msra_normal_(self.weight)
        self.bias = _new_parameter((out_channels,)) if bias else None

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding:
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Linear(Module):
    """Fully connected layer: y = x Wᵀ + b with W (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        validate.sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _new_parameter((out_features, in_features))
        init.msra_normal_(self.weight)
        self.bias = _new_parameter((out_features,)) if bias else None

    def forward(self, x): return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        bias = "" if self.bias is not None else ", bias=False"
        return f"in_features={self.in_features}, out_features={self.out_features}{bias}"


class ReLU(Module):
    """y = max(0, x), see ``functional.relu``."""

    def forward(self, x): return F.relu(x)


class LeakyReLU(Module):
    """y = x if x > 0 else negative_slope · x, see ``functional.leaky_relu``."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x): return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self): return f"negative_slope={self.negative_slope}"


class PReLU(Module):
    """Parametric ReLU (the paper's Eq. 1) with learned coefficients ``weight``.

    ``num_parameters=1`` is the channel-shared variant, ``num_parameters=C``
    the channel-wise one; every coefficient starts at ``init`` (0.25 in the
    paper). Do not apply weight decay to them (see ``optim.param_groups``).
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25):
        super().__init__()
        validate.sizes("PReLU", num_parameters=num_parameters)
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(backend.zeros((num_parameters,)) + init)     # a float32 fill

    def forward(self, x): return F.prelu(x, self.weight)

    def extra_repr(self): return f"num_parameters={self.num_parameters}, init={self.init}"


class _Pool2d(Module):
    """Settings shared by the pooling layers (stride defaults to the kernel size)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}" + \
            (f", padding={self.padding}" if self.padding else "")


class MaxPool2d(_Pool2d):
    """Max over each window, see ``functional.max_pool2d``."""

    def forward(self, x): return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over each window, see ``functional.avg_pool2d``."""

    def forward(self, x): return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C): the mean of each feature map."""

    def forward(self, x): return F.global_avg_pool2d(x)


class SPP(Module):
    """Spatial pyramid max pooling: (N, C, H, W) -> (N, C·Σ n²) for levels n."""

    def __init__(self, levels=(4, 2, 1)):
        super().__init__()
        self.levels = tuple(levels)

    def forward(self, x): return F.spp(x, self.levels)

    def output_size(self, channels: int) -> int: return channels * sum(n * n for n in self.levels)

    def extra_repr(self): return f"levels={self.levels}"


class Dropout(Module):
    """Inverted dropout with probability ``p``; the identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x): return F.dropout(x, self.p, self.training)

    def extra_repr(self): return f"p={self.p}"


class Softmax(Module):
    """Probabilities along ``dim`` (default the last), see ``functional.softmax``."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x): return F.softmax(x, self.dim)


class MSELoss(Module):
    """Mean squared error between input and target, see ``functional.mse_loss``."""

    def forward(self, input, target): return F.mse_loss(input, target)


class Flatten(Module):
    """(N, C, H, W) -> (N, C·H·W)."""

    def forward(self, x): return x.reshape(x.shape[0], -1)


class Sequential(Module):
    """Layers applied in order; index it like a list."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, i):
        layers = list(self._modules.values())
        return Sequential(*layers[i]) if isinstance(i, slice) else layers[i]

    def __len__(self): return len(self._modules)

    def __iter__(self): return iter(self._modules.values())
