"""The teaching core on the Python array API standard (docs/gpu.md, "The array API").

array_api_strict stands in for CuPy on a machine without a GPU: its ``device1``
refuses ``np.asarray`` (an implicit host copy), mixing devices raises, and with
``boolean_indexing=False, data_dependent_shapes=False`` no data-dependent shape
(a device sync) can hide. The op, layer and optimizer tests run there through
the ``xp`` fixture (tests/conftest.py); this module checks the rest: the
namespace the core is given, that its source names only the standard's
functions, and that a short training run there follows NumPy's loss curve.
"""

import ast
import pathlib

import numpy as np
import pytest

import minirect as mr
from minirect import backend, data, models, nn, optim
from minirect.train import fit, training_step

strict = pytest.importorskip("array_api_strict")
compat = pytest.importorskip("array_api_compat")

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORE = ["minirect/autograd.py", "minirect/backend.py", "minirect/init.py", "minirect/optim.py",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "minirect/functional").glob("*.py")),
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "minirect/nn").glob("*.py"))]
DEVICE1 = strict.Device("device1")


@pytest.fixture
def strict_flags():
    with strict.ArrayAPIStrictFlags(boolean_indexing=False, data_dependent_shapes=False):
        yield


# ----------------------------------------------------------------------------
# The namespace the core computes with
# ----------------------------------------------------------------------------

def test_array_module_is_the_standard_namespace_with_fast_paths_off():
    x = np.ones(3, dtype=np.float32)
    with mr.fast_paths(False):
        assert backend.array_module(x) is compat.array_namespace(x)      # array_api_compat.numpy
    with mr.fast_paths(True):
        assert backend.array_module(x) is np
    y = strict.asarray([1.0], device=DEVICE1)
    for on in (True, False):
        with mr.fast_paths(on):
            assert backend.array_module(y) is strict
            assert backend.device_of(y) == DEVICE1


def test_mixing_libraries_is_refused_by_name():
    with pytest.raises(TypeError, match="Add: cannot mix a numpy.ndarray and a array_api_strict"):
        mr.tensor(np.ones(2)) + mr.tensor(strict.ones(2, device=DEVICE1, dtype=strict.float64))


def test_device1_refuses_a_host_copy_and_backend_names_the_one_that_is_allowed():
    y = strict.asarray([1.0, 2.0], device=DEVICE1)
    with pytest.raises(RuntimeError):
        np.asarray(y)                                   # what CuPy refuses too
    assert backend.to_numpy(y).tolist() == [1.0, 2.0]   # the named host copy
    assert mr.tensor(strict.asarray([2.5], device=DEVICE1)).item() == 2.5


# ----------------------------------------------------------------------------
# The core's source names only the standard's functions
# ----------------------------------------------------------------------------

STANDARD = set(dir(strict))
# Attributes of an array namespace the core may use beyond the standard: none.
EXTRA = set()


def _names_used(path):
    """(line, 'xp.name') for every attribute read from a name ``xp`` or ``<...>.xp``."""
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.Attribute):
            base = node.value
            if (isinstance(base, ast.Name) and base.id == "xp") or \
                    (isinstance(base, ast.Attribute) and base.attr == "xp"):
                yield node.lineno, node.attr


def test_the_core_calls_only_the_standards_functions():
    offenders = [f"{path}:{line}: xp.{name}" for path in CORE for line, name in _names_used(path)
                 if name not in STANDARD | EXTRA]
    assert not offenders, "not in the array API standard:\n" + "\n".join(offenders)


def test_only_backend_imports_numpy_or_cupy():
    for path in CORE:
        if path == "minirect/backend.py":
            continue
        tree = ast.parse((ROOT / path).read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}
        imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.level == 0}
        assert not imported & {"numpy", "cupy", "cupyx"}, path


def test_the_scan_sees_a_numpy_only_call(tmp_path):
    """The check above would catch ``xp.ascontiguousarray`` (NumPy/CuPy only)."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x, xp):\n    return xp.ascontiguousarray(x) + self.xp.add.at\n")
    names = {n for _, n in _names_used(bad)}
    assert {"ascontiguousarray", "add"} <= names and "ascontiguousarray" not in STANDARD


# ----------------------------------------------------------------------------
# Models, training and state on device1
# ----------------------------------------------------------------------------

def _digits_batches(device, count=4, batch=32):
    """A few (x, y) batches of the embedded digits, made on ``device``."""
    digits = data.Digits(train=True)
    x = digits.images[:count * batch].astype(np.float32) / 16
    y = digits.labels[:count * batch].astype(np.int64)
    return [(mr.tensor(backend.to_device(x[i:i + batch], device)),
             mr.tensor(backend.to_device(y[i:i + batch], device)))
            for i in range(0, len(y), batch)]


def _short_fit(device, epochs=2):
    mr.seed(0)
    model = models.plain_net(6, widths=(4, 4, 8, 8), in_channels=1, num_classes=10,
                             input_size=8).to(device)
    opt = optim.SGD(optim.param_groups(model, 5e-4), lr=0.05, momentum=0.9)
    step, losses = training_step(model, opt), []
    for _ in range(epochs):
        for x, y in _digits_batches(device):
            loss, _ = step(x, y)
            losses.append(backend.to_numpy(loss).item())           # the named host read
    return model, losses


def test_a_short_fit_on_device1_follows_numpys_loss_curve(strict_flags):
    with mr.fast_paths(False):
        model, on_device1 = _short_fit(DEVICE1)
    assert all(p.device == DEVICE1 for p in model.parameters())
    _, on_numpy = _short_fit("cpu")
    np.testing.assert_allclose(on_device1, on_numpy, rtol=2e-5, atol=2e-5)


def _fit_with_loaders(device, out_dir, epochs=2, resume=False):
    """``fit`` as a user calls it: DataLoaders on ``device`` (shuffled: a gather per
    batch), validation, checkpoints in ``out_dir``; returns the history."""
    mr.seed(0)
    digits, held_out = data.Digits(train=True), data.Digits(train=False)
    train_loader = data.DataLoader(digits.images[:192], digits.labels[:192], batch_size=32,
                                   shuffle=True, seed=1, device=device)
    val_loader = data.DataLoader(held_out.images[:64], held_out.labels[:64], batch_size=32,
                                 device=device)
    model = models.plain_net(6, widths=(4, 4, 8, 8), in_channels=1, num_classes=10,
                             input_size=8).to(device)
    opt = optim.SGD(optim.param_groups(model, 5e-4), lr=0.05, momentum=0.9)
    return fit(model, train_loader, opt, epochs, val_loader=val_loader, out_dir=str(out_dir),
               resume=resume, progress=False)


def test_fit_with_data_loaders_on_device1_equals_numpy(strict_flags, tmp_path):
    """The whole loop on device1: the loaders' transfer and gathers, the error counts, the
    weight check, the loss reads, the checkpoint and a resume; NumPy's curve within float32."""
    with mr.fast_paths(False):
        on_device1 = _fit_with_loaders(DEVICE1, tmp_path / "d1", epochs=1)
        on_device1 = _fit_with_loaders(DEVICE1, tmp_path / "d1", epochs=2, resume=True)
        on_numpy = _fit_with_loaders("cpu", tmp_path / "np", epochs=2)
    losses = [[row["loss"] for row in h.iterations] for h in (on_device1, on_numpy)]
    np.testing.assert_allclose(*losses, rtol=2e-5, atol=2e-5)
    for a, b in zip(on_device1.evaluations, on_numpy.evaluations):
        assert a["val_error"] == b["val_error"]
        np.testing.assert_allclose(a["val_loss"], b["val_loss"], rtol=2e-5)


@pytest.mark.parametrize("depth", [22, 30])
def test_the_papers_deep_nets_train_a_step_on_device1(strict_flags, depth):
    mr.seed(0)
    with mr.fast_paths(False):
        model = models.plain_net(depth, widths=(2, 2, 2, 2), in_channels=1, num_classes=10,
                                 input_size=8).to(DEVICE1)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = _digits_batches(DEVICE1, count=1, batch=8)[0]
        loss, logits = training_step(model, opt)(x, y)
    assert logits.shape == (8, 10) and np.isfinite(backend.to_numpy(loss))


def test_state_dict_round_trip_on_device1(strict_flags):
    mr.seed(0)
    with mr.fast_paths(False):
        model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.PReLU(3), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(48, 10)).to(DEVICE1)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x, y = _digits_batches(DEVICE1, count=1, batch=4)[0]
        training_step(model, opt)(x, y)
        state, opt_state = model.state_dict(), opt.state_dict()
        other_opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        other_opt.load_state_dict(opt_state)           # the optimizer's state round-trips
        assert all(backend.device_of(v) == DEVICE1 for v in other_opt.velocity.values())
        other = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.PReLU(3), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(48, 10)).to(DEVICE1)
        other.load_state_dict(state)
        other_opt = optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
        other_opt.load_state_dict(opt_state)
    for (name, a), b in zip(state.items(), other.state_dict().values()):
        assert np.array_equal(a, b), name
    assert all(p.device == DEVICE1 for p in other.parameters())
    assert all(backend.device_of(v) == DEVICE1 for v in other_opt.velocity.values())


def test_initial_weights_are_the_same_on_device1(strict_flags):
    mr.seed(3)
    host = nn.Conv2d(2, 4, 3).weight.numpy()
    mr.seed(3)
    with mr.using(DEVICE1):
        moved = nn.Conv2d(2, 4, 3)
    assert moved.weight.device == DEVICE1
    assert np.array_equal(host, moved.weight.numpy())


@pytest.mark.gpu
def test_the_reference_path_runs_on_cupys_standard_namespace():
    """On a GPU (benchmarks/run_gpu.sh): fast paths off, the core computes with
    array_api_compat.cupy, and a step there equals NumPy's within float32 rounding."""
    if not mr.cuda_available():
        pytest.skip("CuPy or a CUDA device is not available")
    import cupy
    with mr.fast_paths(False):
        assert backend.array_module(cupy.ones(2)) is compat.array_namespace(cupy.ones(2))
        _, on_cuda = _short_fit("cuda", epochs=1)
    _, on_numpy = _short_fit("cpu", epochs=1)
    np.testing.assert_allclose(on_cuda, on_numpy, rtol=1e-4, atol=1e-4)


def test_a_boolean_mask_index_is_refused_with_the_fix():
    """Read as positions 0/1 a mask would pick wrong rows; its shape depends on the data."""
    x = mr.tensor(np.arange(6, dtype=np.float32).reshape(3, 2), requires_grad=True)
    with pytest.raises(TypeError, match="flatnonzero"):
        x[np.array([False, True, True])]
    np.testing.assert_array_equal(x[np.flatnonzero([False, True, True])].numpy(), [[2, 3], [4, 5]])


# ----------------------------------------------------------------------------
# PyTorch tensors (optional: skipped without torch)
# ----------------------------------------------------------------------------

def test_fit_on_pytorch_cpu_tensors_equals_numpy(tmp_path):
    """The reference engine on torch tensors through array-api-compat (docs/gpu.md, "On
    PyTorch tensors"): the same loader, net and SGD; NumPy's curve within float32 rounding."""
    torch = pytest.importorskip("torch")
    cpu = torch.device("cpu")
    from minirect import accel
    accel.used(reset=True)
    with mr.fast_paths(True):                         # NumPy/CuPy code: torch runs the reference
        on_torch = _fit_with_loaders(cpu, tmp_path / "torch", epochs=2)
    assert accel.used() == []
    with mr.using(cpu):                               # the default device, as with "cuda"
        layer = nn.Conv2d(1, 2, 3)
    assert isinstance(layer.weight.data, torch.Tensor)
    with mr.fast_paths(False):
        on_numpy = _fit_with_loaders("cpu", tmp_path / "np", epochs=2)
    losses = [[row["loss"] for row in h.iterations] for h in (on_torch, on_numpy)]
    np.testing.assert_allclose(*losses, rtol=2e-5, atol=2e-5)
    assert [e["val_error"] for e in on_torch.evaluations] == \
        [e["val_error"] for e in on_numpy.evaluations]
