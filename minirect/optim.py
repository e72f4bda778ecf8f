"""SGD with momentum (the paper's Eq. 4), parameter groups and LR schedules.

The update, for each parameter w with gradient g, learning rate ε, momentum
μ and weight decay λ:

    v ← μ v + ε (g + λ w)          (Eq. 4: Δa := μ Δa + ε ∂E/∂a)
    w ← w − v

This is Caffe's and the paper's form. PyTorch's SGD stores v ← μ v + (g + λ w)
and steps w ← w − ε v instead. With a constant ε the two are identical; when ε
changes (a schedule divides it by 10) PyTorch's form rescales the whole
velocity at once, while here the old velocity — accumulated with the old ε —
fades out over about 1/(1 − μ) steps. Nesterov momentum (``nesterov=True``)
steps with w ← w − (μ v + ε (g + λ w)) after updating v.

Parameter groups: pass a list of dicts ``{"params": [...], "weight_decay": 0}``
to give some parameters their own settings. ``param_groups(model, λ)``
builds the paper's default: no weight decay on PReLU coefficients (decay
would push PReLU towards ReLU), optionally none on biases.

Learning-rate schedules (``StepLR``, ``MultiStepLR``, ``ReduceLROnPlateau``)
live in ``minirect/schedules.py`` and are importable from here.
"""

import math
import numbers

from . import backend
from .schedules import MultiStepLR, ReduceLROnPlateau, StepLR  # noqa: F401  (optim.StepLR, ...)


class SGD:
    """Stochastic gradient descent with momentum and per-group weight decay."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        self.defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                             nesterov=nesterov)
        self.param_groups = [{**self.defaults, **group, "params": list(group["params"])}
                             for group in _as_groups(params)]
        seen = set()
        for i, group in enumerate(self.param_groups):
            _check_group(group, f"SGD: group {i}" if len(self.param_groups) > 1 else "SGD", seen)
            group.setdefault("initial_lr", group["lr"])
        self.velocity = {}      # id(parameter) -> momentum buffer v

    def parameters(self):
        for group in self.param_groups:
            yield from group["params"]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)

    def _update(self, p, group) -> None:
        """Eq. 4 with weight decay, in place; a new velocity starts at 0."""
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        if mu == 0:
            p.data -= lr * (p.grad + wd * p.data if wd else p.grad)  # w ← w − ε (g + λ w)
            return
        v = self._velocity(p)
        if not group["nesterov"] and (fast := backend.fast_path("sgd_momentum", p.data)):
            return fast.momentum_step(p.data, p.grad, v, lr, mu, wd)   # as one GPU kernel: accel/
        step = lr * (p.grad + wd * p.data if wd else p.grad)        # ε (g + λ w)
        v *= mu
        v += step                                                   # v ← μ v + ε (g + λ w)
        p.data -= (mu * v + step) if group["nesterov"] else v       # w ← w − v (Nesterov: look ahead)

    def _velocity(self, p):
        """The momentum buffer of ``p`` (zeros at first), on ``p``'s device."""
        v = self.velocity.get(id(p))
        if v is None:
            v = self.velocity[id(p)] = backend.array_module(p.data).zeros_like(p.data)
        elif backend.device_of(v) != p.device:                  # state follows the parameter
            v = self.velocity[id(p)] = backend.to_device(v, p.device)
        return v

    # --- state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Hyper-parameters per group and momentum buffers (as NumPy arrays)."""
        index = {id(p): i for i, p in enumerate(self.parameters())}
        groups = [dict(g, params=[index[id(p)] for p in g["params"]]) for g in self.param_groups]
        buffers = {index[k]: backend.to_numpy(v).copy() for k, v in self.velocity.items()
                   if k in index}
        return {"param_groups": groups, "velocity": buffers}

    def load_state_dict(self, state: dict) -> None:
        params = list(self.parameters())
        if len(state["param_groups"]) != len(self.param_groups):
            raise ValueError("load_state_dict: the saved optimizer has "
                             f"{len(state['param_groups'])} parameter groups, this one "
                             f"{len(self.param_groups)}")
        for group, saved in zip(self.param_groups, state["param_groups"]):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.velocity = {}
        for i, v in state["velocity"].items():
            p = params[int(i)]
            if tuple(v.shape) != tuple(p.shape):
                raise ValueError(f"load_state_dict: momentum buffer {i} has shape {v.shape}, "
                                 f"parameter has {p.shape}")
            self.velocity[id(p)] = backend.asarray(backend.to_device(v, p.device), dtype=p.dtype)

    def to(self, device: str):
        """Move momentum buffers to a device (``step`` also does this lazily)."""
        self.velocity = {k: backend.to_device(v, device) for k, v in self.velocity.items()}
        return self


def _as_groups(params) -> list:
    """``params`` as a list of group dicts; refuses a Module and an empty list."""
    if hasattr(params, "named_parameters"):
        raise TypeError(f"SGD: got the model {type(params).__name__} itself; pass its "
                        "parameters: SGD(model.parameters(), lr=...)")
    params = list(params)
    if not params:
        raise ValueError("SGD: got an empty parameter list; pass model.parameters() of a "
                         "model that has parameters")
    return params if isinstance(params[0], dict) else [{"params": params}]


def _check_group(group, where: str, seen: set) -> None:
    """Refuse settings that cannot be right, and parameters already in a group."""
    lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"{where}: learning rate must be a finite number > 0, got {lr!r}")
    if not 0 <= mu < 1:
        raise ValueError(f"{where}: momentum must be in [0, 1), got {mu!r} (0.9 in the paper)")
    if not wd >= 0:
        raise ValueError(f"{where}: weight decay must be >= 0, got {wd!r} (5e-4 in the paper)")
    if group["nesterov"] and mu == 0:
        raise ValueError(f"{where}: nesterov momentum needs momentum > 0")
    for p in group["params"]:
        if id(p) in seen:
            raise ValueError(f"{where}: a parameter of shape {tuple(p.shape)} is already in "
                             "another group (it would be updated twice); put each parameter "
                             "in one group only")
        seen.add(id(p))


def param_groups(model, weight_decay: float, no_decay_bias: bool = False) -> list:
    """Two groups: weights with ``weight_decay``, and PReLU coefficients without.

    With ``no_decay_bias=True`` biases join the no-decay group too. Empty
    groups are dropped.
    """
    from .nn.layers import PReLU      # nn sits above optim's helpers; import late

    no_decay_ids = set()
    for module in model.modules():
        if isinstance(module, PReLU):
            no_decay_ids.update(id(p) for p in module.parameters())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        skip = id(p) in no_decay_ids or (no_decay_bias and name.endswith("bias"))
        (no_decay if skip else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
