"""minirect: a small deep-learning engine on NumPy/CuPy that reproduces
He et al., "Delving Deep into Rectifiers" (ICCV 2015)."""

from .backend import (  # noqa: F401
    cuda_available, use, using, default_device, seed, versions,
)
from .accel import fast_paths  # noqa: F401
from .autograd import Tensor, Function, tensor, no_grad, is_grad_enabled  # noqa: F401
from . import functional  # noqa: F401
from . import backend, nn, init, optim, train, viz  # noqa: F401
from .train import fit, evaluate  # noqa: F401
from .gradcheck import gradcheck, GradcheckError  # noqa: F401

__version__ = "0.1.0"
