"""Shared fixtures: the ``xp`` fixture runs a test on NumPy and on CuPy.

The CuPy case is marked ``gpu`` and skipped when CuPy cannot be imported or no
CUDA device is present.

The ``fast_paths`` fixture runs every test of the op, layer and optimizer
modules twice: with ``minirect.fast_paths(True)`` and with the reference code
only (``False``). Elsewhere it keeps the switch as the environment set it
(``MINIRECT_FAST_PATHS``) and restores it after each test.
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


# Test modules whose every test runs with fast paths on and off.
BOTH_PATHS = {"test_functions", "test_conv", "test_nn", "test_optim"}


def pytest_generate_tests(metafunc):
    if "fast_paths" in metafunc.fixturenames and metafunc.module.__name__ in BOTH_PATHS:
        metafunc.parametrize("fast_paths", [True, False], ids=["fast", "reference"],
                             indirect=True)


@pytest.fixture(autouse=True)
def fast_paths(request):
    """True or False: whether the test runs with minirect's fast paths."""
    enabled = getattr(request, "param", minirect.accel.enabled())
    with minirect.fast_paths(enabled):
        yield enabled


@pytest.fixture(autouse=True)
def _fresh_seed():
    minirect.seed(0)
    yield
