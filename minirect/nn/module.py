"""``Module`` and ``Parameter``: the containers that hold a model's weights.

A ``Module`` finds its parameters and sub-modules by attribute assignment,
like PyTorch: ``self.conv = Conv2d(...)`` registers a child, and
``self.weight = Parameter(...)`` registers a parameter. From that it offers
``parameters()``, ``named_parameters()``, ``train()``/``eval()``,
``to(device)``, ``state_dict()``/``load_state_dict()`` and ``save``/``load``
to ``.npz`` files.
"""

from __future__ import annotations

from .. import backend, files, validate
from ..autograd import Tensor


class Parameter(Tensor):
    """A tensor that is a model weight: ``requires_grad`` is on by default."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)
        if self.data is backend.unwrap(data):
            self.data = self.xp.asarray(self.data, copy=True)   # updated in place: never the caller's array

    def __repr__(self): return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models; subclasses define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_hooks", {})
        object.__setattr__(self, "training", True)

    # --- registration by attribute assignment -----------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before "
                               "assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def add_module(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    # --- calling -----------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *inputs):
        output = self.forward(*inputs)
        for hook in list(self._forward_hooks.values()):
            hook(self, inputs, output)
        return output

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after every forward; returns a remover."""
        key = object()
        self._forward_hooks[key] = hook

        class _Handle:
            def remove(_self):
                self._forward_hooks.pop(key, None)
        return _Handle()

    # --- traversal ---------------------------------------------------------
    def named_children(self): return iter(self._modules.items())

    def children(self): return iter(self._modules.values())

    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self): return (m for _, m in self.named_modules())

    def named_parameters(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self): return (p for _, p in self.named_parameters())

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # --- modes and devices --------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active); ``eval()`` switches it off."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module: return self.train(False)

    def to(self, device: str) -> Module:
        """Move every parameter's data (and gradient) to 'cpu' or 'cuda', in place.

        Parameters stay the same objects, so an optimizer built before the
        move still holds them (its state moves with ``optimizer.to``).
        """
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            if p.grad is not None:
                p.grad = backend.to_device(p.grad, device)
        return self

    @property
    def device(self) -> str:
        first = next(self.parameters(), None)
        return backend.default_device() if first is None else first.device

    # --- state ---------------------------------------------------------------
    def state_dict(self) -> dict:
        """Parameter name -> NumPy copy of its values (device independent)."""
        return {name: backend.to_numpy(p.data).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy values into the parameters, keeping each parameter's device and dtype.

        Every key, shape and value is checked and converted before any parameter is
        written: a state that does not fit leaves the model as it was.
        """
        own = dict(self.named_parameters())
        if strict:
            missing = sorted(set(own) - set(state))
            unexpected = sorted(set(state) - set(own))
            if missing or unexpected:
                raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys "
                               f"{unexpected}")
        matched = {name: value for name, value in state.items() if name in own}
        wrong = [f"{name} is {tuple(value.shape)} in the state but {tuple(own[name].shape)} in "
                 "the model" for name, value in matched.items()
                 if tuple(value.shape) != tuple(own[name].shape)]
        if wrong:
            raise ValueError("load_state_dict: shapes differ (nothing was loaded): " + "; ".join(wrong))
        converted = {name: validate.state_value(name, value, own[name]) for name, value in matched.items()}
        for name, value in converted.items():       # every value converted: now write them all
            own[name].data = value

    def save(self, path) -> None:
        """Write ``state_dict()`` to an ``.npz`` file (written atomically)."""
        save_arrays(path, self.state_dict())

    def load(self, path) -> None:
        self.load_state_dict(load_arrays(path))

    # --- printing -------------------------------------------------------------
    def extra_repr(self) -> str: return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if not self._modules:
            return lines[0] + ")"
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return "\n".join(lines) + "\n)"


def save_arrays(path, arrays: dict) -> None:
    """Save a dict of arrays to ``path`` (.npz), whole or not at all (``files.write_atomically``)."""
    host = {k: backend.to_numpy(v) for k, v in arrays.items()}
    files.write_atomically(path, lambda f: files.save_npz(f, host))


def load_arrays(path) -> dict: return files.load_npz(path)
