"""minirect: a small deep-learning engine on NumPy/CuPy that reproduces
He et al., "Delving Deep into Rectifiers" (ICCV 2015).

The layers, each importing only those before it: backend → autograd →
functional → nn / optim → (accel, which registers its fast paths with the
core) → train → experiments → cli.
"""

from .backend import (  # noqa: F401
    cuda_available, use, using, default_device, seed, versions, fast_paths,
)
from .autograd import Tensor, Function, tensor, no_grad, is_grad_enabled  # noqa: F401
from . import functional  # noqa: F401  (also gives Tensor its operators)
from . import backend, nn, init, optim  # noqa: F401
from . import accel  # noqa: F401  (registers the fast paths with backend)
from . import train, viz  # noqa: F401
from .train import fit, evaluate  # noqa: F401
from .gradcheck import gradcheck, GradcheckError  # noqa: F401

__version__ = "0.1.0"
