"""Weight initializers, including the paper's (Sec. 2.2).

For a weight W with fan-in n_in and fan-out n_out — for a conv weight of
shape (d, c, k, k): n_in = k²c, n_out = k²d; for a linear weight (out, in):
n_in = in, n_out = out — the Gaussian rules are

    fixed                std = σ (e.g. 0.01)
    paper's "Xavier"     std = sqrt(1 / n)                 n Var[w] = 1
    Glorot               std = sqrt(2 / (n_in + n_out))
    MSRA (Eq. 10 / 14)   std = sqrt(2 / ((1 + a²) n))      ½(1 + a²) n Var[w] = 1

with n = n_in (``mode="fan_in"``, the forward condition, Eq. 10) or
n = n_out (``mode="fan_out"``, the backward condition, Eq. 14), and ``a`` the
initial PReLU coefficient (Eq. 15; a = 0 for ReLU). The uniform variants draw
from U[-b, b] with b = sqrt(3)·std, which has the same variance.

Naming: one meaning per function name. ``xavier_normal_``/``xavier_uniform_``
are Glorot's rule, as in ``torch.nn.init`` (aliases of ``glorot_*``); the
paper's "Xavier" rule, n Var[w] = 1, is ``paper_xavier_normal_`` /
``paper_xavier_uniform_``. ``kaiming_*`` and ``he_*`` are aliases of
``msra_*``. Only the scheme strings of ``init_weight_`` keep the paper's
word: ``"xavier"`` (the name of the experiments' runs, also accepted as
``"paper_xavier"``) is the paper's rule there, not Glorot's.

Values are drawn on the host from minirect's seeded generator and then moved
to the tensor's device, so a seeded model starts identically on CPU and GPU.
Derivation: docs/derivations/initialization.md.
"""

import math

from . import backend


def calculate_fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) for a linear (out, in) or conv (out, in, kh, kw) weight."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fans need a weight with at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])          # kh·kw for a conv kernel, 1 for a linear layer
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape, mode: str) -> int:
    fan_in, fan_out = calculate_fans(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' (forward, Eq. 10) or 'fan_out' (backward, Eq. 14), "
                     f"got {mode!r}")


def _fill(tensor, host_values):
    """Write host values into the tensor, on its device and in its dtype."""
    tensor.data = backend.to_device(host_values.astype(tensor.dtype), tensor.device)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fill with N(mean, std²) drawn from minirect's generator."""
    values = backend.generator().standard_normal(tensor.shape) * std + mean
    return _fill(tensor, values)


def uniform_(tensor, low: float = 0.0, high: float = 1.0):
    """Fill with U[low, high]."""
    return _fill(tensor, backend.generator().uniform(low, high, size=tensor.shape))


def constant_(tensor, value: float):
    tensor.data = tensor.xp.full_like(tensor.data, value)
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


# --- standard deviations of each rule (handy for plots and tests) ------------

def paper_xavier_std(shape, mode: str = "fan_in") -> float:
    return math.sqrt(1.0 / _fan(shape, mode))


def glorot_std(shape) -> float:
    fan_in, fan_out = calculate_fans(shape)
    return math.sqrt(2.0 / (fan_in + fan_out))


def msra_std(shape, a: float = 0.0, mode: str = "fan_in") -> float:
    return math.sqrt(2.0 / ((1.0 + a * a) * _fan(shape, mode)))


def _uniform_with_std(tensor, std):
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


# --- the rules ------------------------------------------------------------------

def gaussian_(tensor, std: float = 0.01):
    """Zero-mean Gaussian with a fixed std (the paper's fc layers: 0.01, 0.001)."""
    return normal_(tensor, 0.0, std)


def paper_xavier_normal_(tensor, mode: str = "fan_in"):
    """The paper's "Xavier": N(0, 1/n), n = fan_in or fan_out (n Var[w] = 1)."""
    return normal_(tensor, 0.0, paper_xavier_std(tensor.shape, mode))


def paper_xavier_uniform_(tensor, mode: str = "fan_in"):
    """Uniform with variance 1/n (Caffe's "xavier" filler)."""
    return _uniform_with_std(tensor, paper_xavier_std(tensor.shape, mode))


def glorot_normal_(tensor):
    """Glorot & Bengio: N(0, 2/(fan_in + fan_out))."""
    return normal_(tensor, 0.0, glorot_std(tensor.shape))


def glorot_uniform_(tensor):
    """Glorot & Bengio's original: U[-b, b], b = sqrt(6/(fan_in + fan_out))."""
    return _uniform_with_std(tensor, glorot_std(tensor.shape))


def msra_normal_(tensor, a: float = 0.0, mode: str = "fan_in"):
    """MSRA / He: N(0, 2/((1+a²) n)); Eq. 10 with mode="fan_in", Eq. 14 with "fan_out"."""
    return normal_(tensor, 0.0, msra_std(tensor.shape, a, mode))


def msra_uniform_(tensor, a: float = 0.0, mode: str = "fan_in"):
    """Uniform with the MSRA variance 2/((1+a²) n)."""
    return _uniform_with_std(tensor, msra_std(tensor.shape, a, mode))


xavier_normal_ = glorot_normal_
xavier_uniform_ = glorot_uniform_
kaiming_normal_ = he_normal_ = msra_normal_
kaiming_uniform_ = he_uniform_ = msra_uniform_


def init_weight_(tensor, scheme: str, mode: str = "fan_in", a: float = 0.0, std: float = 0.01):
    """Initialize by scheme name, as the models and the command line name them:

    'xavier' or 'paper_xavier'   the paper's rule, ``paper_xavier_normal_`` (n Var[w] = 1)
    'msra'                       ``msra_normal_`` (Eq. 10 / 14 by ``mode``, Eq. 15 with ``a``)
    'glorot'                     ``glorot_normal_`` (= ``xavier_normal_``, PyTorch's "xavier")
    'gaussian'                   ``gaussian_`` with ``std``
    """
    if scheme in ("xavier", "paper_xavier"):
        return paper_xavier_normal_(tensor, mode)
    if scheme == "msra":
        return msra_normal_(tensor, a=a, mode=mode)
    if scheme == "glorot":
        return glorot_normal_(tensor)
    if scheme == "gaussian":
        return gaussian_(tensor, std)
    raise ValueError(f"unknown init scheme {scheme!r}; use 'xavier', 'msra', 'glorot' or 'gaussian'")
