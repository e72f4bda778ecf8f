"""Every public differentiable function states its forward and gradient formulas."""

import inspect

import pytest

import minirect.functional as F

NOT_DIFFERENTIABLE = {"accuracy", "error_rate", "im2col", "col2im", "sum_to_shape"}
PUBLIC = sorted(name for name, obj in vars(F).items()
                if inspect.isfunction(obj) and not name.startswith("_") and name not in NOT_DIFFERENTIABLE)


def test_public_functions_are_listed():
    assert {"conv2d", "prelu", "softmax_cross_entropy", "matmul", "spp", "getitem"} <= set(PUBLIC)


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_has_forward_and_gradient(name):
    doc = getattr(F, name).__doc__ or ""
    assert "y" in doc or "E =" in doc, f"{name}: no forward formula"
    assert "dE/d" in doc, f"{name}: no gradient formula (dE/d...)"
