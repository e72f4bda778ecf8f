"""Shared fixtures: the ``xp`` fixture runs a test on NumPy, on CuPy and on
array_api_strict's fake device ``device1``.

The CuPy case is marked ``gpu`` and skipped when CuPy cannot be imported or no
CUDA device is present. The ``array_api_strict`` case stands in for CuPy on a
machine without a GPU: the array API standard only, arrays on ``device1`` (no
implicit host copy: ``np.asarray`` refuses them), boolean indexing and
data-dependent shapes switched off, fast paths off (the reference path).
Tests that cannot run there are named in ``NOT_ON_STRICT`` with the reason.

The ``fast_paths`` fixture runs every test of the op, layer and optimizer
modules twice: with ``minirect.fast_paths(True)`` and with the reference code
only (``False``). Elsewhere it keeps the switch as the environment set it
(``MINIRECT_FAST_PATHS``) and restores it after each test.
"""

import functools
import importlib

import pytest

import minirect


def _cupy_or_skip():
    if not minirect.cuda_available():
        pytest.skip("CuPy or a CUDA device is not available")
    return importlib.import_module("cupy")


# test function name -> why it does not run on array_api_strict (skipped there, with the reason)
NOT_ON_STRICT = {
    "test_accel": "the fast paths are NumPy/CuPy mechanisms, compared there with the reference",
}


def _on_strict(node) -> bool:
    callspec = getattr(node, "callspec", None)
    return callspec is not None and callspec.params.get("xp") == "array_api_strict"


class OnDevice1:
    """array_api_strict, whose array makers put arrays on ``device1`` unless told otherwise."""

    __name__ = "array_api_strict"
    MAKERS = ("asarray", "ones", "zeros", "full", "empty", "arange", "eye", "linspace")

    def __init__(self):
        self.module = importlib.import_module("array_api_strict")
        self.device = self.module.Device("device1")

    def __getattr__(self, name):
        f = getattr(self.module, name)
        return functools.partial(f, device=self.device) if name in self.MAKERS else f


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu), "array_api_strict"])
def xp(request):
    """The array module under test; tests build their inputs with it."""
    if request.param == "array_api_strict":
        reason = NOT_ON_STRICT.get(request.node.originalname) or NOT_ON_STRICT.get(request.module.__name__)
        if reason is not None:
            pytest.skip(f"not on array_api_strict: {reason}")
        if request.getfixturevalue("fast_paths"):
            pytest.skip("array_api_strict runs the reference path only (fast paths off)")
        strict = pytest.importorskip("array_api_strict")
        with strict.ArrayAPIStrictFlags(boolean_indexing=False, data_dependent_shapes=False):
            yield OnDevice1()
    elif request.param == "cupy":
        module = _cupy_or_skip()
        minirect.use("cuda")
        yield module
        minirect.use("cpu")
    else:
        yield importlib.import_module("numpy")


@pytest.fixture
def device(xp):
    return xp.device if isinstance(xp, OnDevice1) else "cuda" if xp.__name__ == "cupy" else "cpu"


# Test modules whose every test runs with fast paths on and off.
BOTH_PATHS = {"test_functions", "test_conv", "test_nn", "test_optim"}


def pytest_generate_tests(metafunc):
    if "fast_paths" in metafunc.fixturenames and metafunc.module.__name__ in BOTH_PATHS:
        metafunc.parametrize("fast_paths", [True, False], ids=["fast", "reference"],
                             indirect=True)


@pytest.fixture(autouse=True)
def fast_paths(request):
    """True or False: whether the test runs with minirect's fast paths (always
    off on array_api_strict)."""
    enabled = getattr(request, "param", None)
    if enabled is None:
        enabled = minirect.accel.enabled() and not _on_strict(request.node)
    with minirect.fast_paths(enabled):
        yield enabled


@pytest.fixture(autouse=True)
def _fresh_seed():
    minirect.seed(0)
    yield
