"""Numerical gradient checking by central differences.

For a function f of tensors x_1..x_k, gradcheck compares the analytic
gradient of the scalar  s = Σ f(x) · r  (r a fixed random projection, so every
output element matters) with the central difference

    ds/dx_i[j] ≈ (s(x_i[j] + eps) - s(x_i[j] - eps)) / (2 eps).

Run it in float64: in float32 the rounding error of the difference quotient is
about 1e-7 / eps, far too coarse to trust.
"""

from __future__ import annotations

from . import backend
from .autograd import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised when analytic and numerical gradients disagree."""


def _scalar(fn, inputs, projection):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    total = 0.0
    for o, r in zip(outs, projection):
        total = total + (o * r).sum()
    return total


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
              seed: int = 0, raise_exception: bool = True) -> bool:
    """Check ``fn``'s backward pass against central differences.

    ``inputs`` are tensors; those with ``requires_grad=True`` are checked.
    They should be float64. On failure a ``GradcheckError`` reports, for the
    worst input, the index of the worst element, both gradient values and the
    error; with ``raise_exception=False`` the function returns False instead.
    """
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for t in checked:
        if t.dtype != backend.dtype("float64"):
            raise ValueError(f"gradcheck: inputs should be float64, got {t.dtype}; "
                             "float32 finite differences are too noisy")
    # A fixed random projection of the outputs, on the inputs' backend.
    with no_grad():
        out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    rng = backend.private_generator(seed)
    projection = [Tensor(backend.to_device(rng.standard_normal(o.shape), o.device)) for o in outs]

    for t in checked:
        t.grad = None
    _scalar(fn, inputs, projection).backward()
    analytic = [backend.to_numpy(t.grad) if t.grad is not None else 0.0 * backend.to_numpy(t.data)
                for t in checked]
    for which, (t, ga) in enumerate(zip(checked, analytic)):
        # Perturb a host copy and move it to t's device (the named calls in backend), so
        # this works on any array library, whether or not its arrays can be written in place.
        original, host = t.data, backend.to_numpy(t.data).copy()
        flat, numeric = host.reshape(-1), backend.module_for("cpu").zeros(host.size)
        with no_grad():
            for j in range(flat.size):
                old = flat[j].item()
                flat[j] = old + eps
                t.data = backend.to_device(host, t.device)
                plus = _scalar(fn, inputs, projection).item()
                flat[j] = old - eps
                t.data = backend.to_device(host, t.device)
                minus = _scalar(fn, inputs, projection).item()
                flat[j] = old
                numeric[j] = (plus - minus) / (2 * eps)
        t.data = original
        err = abs(ga.reshape(-1) - numeric)
        limit = atol + rtol * abs(numeric)
        if (err > limit).any():
            worst = int((err - limit).argmax())
            idx = tuple(int(i) for i in backend.module_for("cpu").unravel_index(worst, t.shape))
            msg = (f"gradcheck failed for input {which} (shape {t.shape}) at index {idx}: "
                   f"analytic {ga.reshape(-1)[worst].item():.6g}, numerical "
                   f"{numeric[worst].item():.6g}, abs error "
                   f"{err[worst].item():.3g} > {limit[worst].item():.3g}")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    for t in checked:
        t.grad = None
    return True
