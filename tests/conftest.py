"""Shared fixtures: the ``xp`` fixture runs a test on NumPy and on CuPy.

The CuPy case is marked ``gpu`` and skipped when CuPy cannot be imported or no
CUDA device is present.
"""

import importlib

import pytest

import minirect


def _cupy_or_skip():
    if not minirect.cuda_available():
        pytest.skip("CuPy or a CUDA device is not available")
    return importlib.import_module("cupy")


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test; tests build their inputs with it."""
    if request.param == "cupy":
        module = _cupy_or_skip()
        minirect.use("cuda")
        yield module
        minirect.use("cpu")
    else:
        yield importlib.import_module("numpy")


@pytest.fixture
def device(xp):
    return "cuda" if xp.__name__ == "cupy" else "cpu"


@pytest.fixture(autouse=True)
def _fresh_seed():
    minirect.seed(0)
    yield
