"""minirect.accel against the reference code it replaces, and the switch.

Every fast path must compute what the plain code in the teaching files
computes: same forward values, same gradients (up to float rounding, as the
order of the additions differs). The op, layer and optimizer tests run with
fast paths on and off as well (tests/conftest.py); here each fast path is
compared with its reference directly, on the shapes the models use.
"""

import ast
import io
import os
import subprocess
import sys
import tokenize
from pathlib import Path

import numpy as np
import pytest

import minirect as mr
import minirect.functional as F
from minirect import accel, nn, optim
from minirect.accel import shifted_windows
from minirect.functional import conv as conv_module

from conftest import _cupy_or_skip

RNG = np.random.default_rng(11)
ROOT = Path(__file__).resolve().parents[1]


def run_conv(xp, x, w, b, gy, stride, padding, need_x=True, need_W=True, dtype="float64"):
    """y, dE/dx, dE/dW, dE/db of conv2d as NumPy arrays (None where not needed)."""
    tx = mr.tensor(xp.asarray(x, dtype=dtype), requires_grad=need_x)
    tw = mr.tensor(xp.asarray(w, dtype=dtype), requires_grad=need_W)
    tb = None if b is None else mr.tensor(xp.asarray(b, dtype=dtype), requires_grad=True)
    y = F.conv2d(tx, tw, tb, stride=stride, padding=padding)
    y.backward(mr.tensor(xp.asarray(gy, dtype=dtype)))
    grads = [tx.grad, tw.grad, None if tb is None else tb.grad]
    return [mr.backend.to_numpy(a) if a is not None else None for a in [y.data, *grads]]


def both_paths(run):
    """run() with fast paths on and with the reference only."""
    results = {}
    for enabled in (True, False):
        with mr.fast_paths(enabled):
            results[enabled] = run()
    return results[True], results[False]


def assert_same(fast, reference, dtype):
    tolerance = dict(rtol=1e-5, atol=1e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-11)
    for a, b in zip(fast, reference):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype == np.dtype(dtype)
            np.testing.assert_allclose(a, b, **tolerance)


# ----------------------------------------------------------------------------
# Shifted windows (stride-1 conv2d) against im2col + GEMM and col2im
# ----------------------------------------------------------------------------

CONV_SHAPES = [  # x (N, C, H, W), W (D, C, kh, kw), stride, padding
    ((3, 8, 9, 7), (5, 8, 3, 3), 1, 1),            # "same" 3x3, odd sizes
    ((2, 3, 28, 28), (4, 3, 3, 3), 1, 1),          # the MNIST nets' first stage
    ((2, 4, 7, 7), (6, 4, 3, 3), 1, 1),            # the last stage's 7x7 maps
    ((2, 3, 9, 8), (4, 3, 7, 7), 1, 3),            # 7x7 kernel
    ((2, 2, 6, 5), (3, 2, 2, 2), 1, 0),            # 2x2 kernel (model of Table 1)
    ((2, 2, 5, 7), (3, 2, 1, 1), 1, 0),            # 1x1 kernel
    ((2, 3, 5, 7), (2, 3, 3, 2), 1, (0, 1)),       # non-square kernel and padding
    ((2, 2, 3, 1), (2, 2, 3, 5), 1, (1, 2)),       # map narrower than the kernel
    ((2, 3, 11, 11), (4, 3, 7, 7), 2, 3),          # conv1 of the large models: stride 2
    ((2, 3, 8, 9), (4, 3, 3, 3), (2, 1), 1),       # strided: the reference runs either way
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_SHAPES)
def test_fast_conv2d_equals_the_reference(xp, x_shape, w_shape, stride, padding, dtype):
    x, w, b = RNG.standard_normal(x_shape), RNG.standard_normal(w_shape), RNG.standard_normal(w_shape[0])
    y_shape = F.conv2d(mr.tensor(x), mr.tensor(w), stride=stride, padding=padding).shape
    gy = RNG.standard_normal(y_shape)
    fast, reference = both_paths(lambda: run_conv(xp, x, w, b, gy, stride, padding, dtype=dtype))
    assert_same(fast, reference, dtype)


@pytest.mark.parametrize("need_x, need_W", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("block_bytes", [300, 25_000, 10**9])   # blocks of 1; of 2, 2, 1; one block
def test_fast_conv2d_on_uneven_blocks_and_partial_gradients(xp, monkeypatch, need_x, need_W,
                                                            block_bytes):
    """Frozen weights (dx only), the first layer (dW only) and both, over
    blocks of samples of uneven size, give what the reference gives."""
    monkeypatch.setattr(shifted_windows, "CPU_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(shifted_windows, "GPU_BLOCK_BYTES", block_bytes)
    x, w = RNG.standard_normal((5, 3, 6, 6)), RNG.standard_normal((4, 3, 3, 3))
    gy = RNG.standard_normal((5, 4, 6, 6))
    fast, reference = both_paths(lambda: run_conv(xp, x, w, None, gy, 1, 1, need_x, need_W))
    assert_same(fast, reference, "float64")
    assert (fast[1] is None) == (not need_x) and (fast[2] is None) == (not need_W)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_SHAPES)
def test_the_fast_conv_runs_exactly_where_it_applies(monkeypatch, x_shape, w_shape, stride,
                                                     padding):
    """The comparisons above only mean something if the fast path runs: for
    stride 1 and padding < kernel size, and only with fast paths on."""
    calls = []
    real_pass = shifted_windows.shifted_pass
    monkeypatch.setattr(shifted_windows, "shifted_pass",
                        lambda *args, **kwargs: calls.append(1) or real_pass(*args, **kwargs))
    (sh, sw), (ph, pw) = conv_module._pair(stride, "", ""), conv_module._pair(padding, "", "")
    expected = (sh, sw) == (1, 1) and ph < w_shape[2] and pw < w_shape[3]
    for enabled in (True, False):
        calls.clear()
        with mr.fast_paths(enabled):
            x = mr.tensor(RNG.standard_normal(x_shape), requires_grad=True)
            F.conv2d(x, mr.tensor(RNG.standard_normal(w_shape)), stride=stride,
                     padding=padding).sum().backward()
        assert bool(calls) == (expected and enabled)


@pytest.mark.parametrize("in_hw, kernel, padding", [
    ((6, 6), (3, 3), (1, 1)), ((5, 7), (3, 2), (0, 1)), ((3, 1), (3, 5), (1, 2)),
    ((2, 2), (4, 4), (3, 3)), ((4, 4), (1, 1), (0, 0))])
def test_shifted_windows_read_inside_each_map(in_hw, kernel, padding):
    """The strided view reads no memory outside the scratch map it starts in
    (as_strided does not check bounds; a read past the end is undefined, and
    0·NaN from it would spoil the weight gradient)."""
    windows = shifted_windows.ShiftedWindows(np.zeros((1, 1, *in_hw)), kernel, padding)
    rows, Wp = windows.padded.shape[2:]
    (kh, kw) = kernel
    farthest = (kh - 1) * Wp + (kw - 1) + windows.length - 1     # offset (kh-1, kw-1), l = L-1
    assert farthest < rows * Wp


def test_fast_conv2d_in_a_training_step_equals_the_reference():
    """A small net's losses and weights after a few SGD steps, both ways."""
    def train():
        mr.seed(5)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                              nn.Linear(4 * 4 * 4, 3))
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        rng = np.random.default_rng(0)
        losses = []
        for _ in range(3):
            x = mr.tensor(rng.standard_normal((6, 1, 8, 8)).astype(np.float32))
            loss = F.softmax_cross_entropy(model(x), mr.tensor(rng.integers(0, 3, 6)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, [p.numpy() for p in model.parameters()]
    fast, reference = both_paths(train)
    np.testing.assert_allclose(fast[0], reference[0], rtol=1e-5)
    for a, b in zip(fast[1], reference[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------
# GPU-only fast paths against their references
# ----------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("nesterov", [False, True])
def test_fused_sgd_equals_the_reference_update(nesterov):
    cp = _cupy_or_skip()
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(1000), rng.standard_normal((4, 1000))

    def train():
        w = nn.Parameter(cp.asarray(w0, dtype=cp.float32))
        opt = optim.SGD([w], lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)
        for g in grads:
            w.grad = cp.asarray(g, dtype=cp.float32)
            opt.step()
        return w.numpy(), mr.backend.to_numpy(opt.velocity[id(w)])
    fast, reference = both_paths(train)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
def test_dropout_masks_keep_their_rate_on_both_paths():
    """The GPU's counter generator and the host generator draw different
    numbers from the same distribution: both keep about 1 - p of the units."""
    cp = _cupy_or_skip()
    x = mr.tensor(cp.ones((200, 500), dtype=cp.float32))
    for enabled in (True, False):
        with mr.fast_paths(enabled):
            kept = float((F.dropout(x, 0.3).data > 0).mean())
        assert abs(kept - 0.7) < 0.01


# ----------------------------------------------------------------------------
# The switch
# ----------------------------------------------------------------------------

def test_fast_paths_as_a_call_and_as_a_context_manager():
    start = accel.enabled()
    try:
        mr.fast_paths(False)
        assert not accel.enabled()
        with mr.fast_paths(True):
            assert accel.enabled()
            with mr.fast_paths(False):
                assert not accel.enabled()
            assert accel.enabled()
        assert not accel.enabled()          # the context restored the call's setting
    finally:
        mr.fast_paths(start)


def test_fast_paths_restores_the_setting_after_an_error():
    start = accel.enabled()
    with pytest.raises(RuntimeError), mr.fast_paths(not start):
        raise RuntimeError("inside the block")
    assert accel.enabled() == start


def test_fast_paths_refuses_what_is_not_a_bool():
    with pytest.raises(TypeError, match="True or False"):
        mr.fast_paths("0")


@pytest.mark.parametrize("value, expected", [("0", False), ("false", False), ("off", False),
                                             ("1", True), ("", True)])
def test_the_environment_variable_sets_the_default(value, expected):
    env = dict(os.environ, MINIRECT_FAST_PATHS=value)
    out = subprocess.run([sys.executable, "-c", "import minirect; print(minirect.accel.enabled())"],
                         env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == str(expected)


# ----------------------------------------------------------------------------
# The teaching core stays small and plain
# ----------------------------------------------------------------------------

CORE = ["minirect/autograd.py", "minirect/backend.py", "minirect/init.py", "minirect/optim.py",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "minirect/functional").glob("*.py")),
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "minirect/nn").glob("*.py"))]
CODE_LINE_BUDGET = 1500
FILE_LINE_LIMIT = 500
SPEED_MECHANISMS = ["as_strided", "ctypes", "RawKernel", "ElementwiseKernel", "begin_capture",
                    "end_capture", "cuda.Graph", "cublas"]


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not in a docstring."""
    docstring_lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                docstring_lines.update(range(first.lineno, first.end_lineno + 1))
    lines = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstring_lines)


def test_the_teaching_core_is_within_its_budget():
    counts = {path: code_lines((ROOT / path).read_text()) for path in CORE}
    total = sum(counts.values())
    assert total <= CODE_LINE_BUDGET, (
        f"the teaching core has {total} code lines (budget {CODE_LINE_BUDGET}): {counts}; "
        "move speed-only code to minirect/accel/")


def test_no_teaching_file_is_over_its_line_limit():
    long_files = {path: n for path in CORE
                  if (n := len((ROOT / path).read_text().splitlines())) > FILE_LINE_LIMIT}
    assert not long_files, f"files over {FILE_LINE_LIMIT} lines: {long_files}"


@pytest.mark.parametrize("path", CORE)
def test_the_teaching_core_has_no_speed_mechanisms(path):
    """No strided views, no ctypes, no hand-written kernels, no graph capture:
    those live in minirect/accel/, reached through one dispatch line."""
    code = "\n".join(line.split("#")[0] for line in (ROOT / path).read_text().splitlines())
    code = code.replace("minirect.accel", "").replace("accel/", "")
    found = [word for word in SPEED_MECHANISMS if word in code]
    assert not found, f"{path} uses {found}; move it to minirect/accel/"


def test_the_teaching_core_never_imports_accel():
    """accel plugs into the core from above: it registers its fast paths with
    ``backend.register_fast_path``; no core file imports it."""
    for path in CORE:
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [getattr(node, "module", None) or ""] + [alias.name for alias in node.names]
                assert not any("accel" in name for name in names), f"{path} imports {names}"


def test_the_core_has_no_import_circle_with_functional():
    """autograd does not import functional (functional registers itself as
    the implementation of Tensor's operators)."""
    tree = ast.parse((ROOT / "minirect/autograd.py").read_text())
    imported = [f"{getattr(node, 'module', None) or ''}.{alias.name}" for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names]
    assert not any("functional" in name for name in imported), imported
    assert mr.autograd.F is mr.functional


# ----------------------------------------------------------------------------
# The registry: accel's paths, asked for by name, switched by fast_paths
# ----------------------------------------------------------------------------

def test_accel_registers_every_path_with_the_core():
    from minirect import backend
    assert set(accel.PATHS) <= set(backend.FAST_PATHS)
    assert all(backend.FAST_PATHS[name].path is path for name, path in accel.PATHS.items())


def test_fast_path_answers_by_name_switch_and_applies(monkeypatch):
    from minirect import backend

    class Path:
        @staticmethod
        def applies(n):
            return n > 0
    monkeypatch.setitem(backend.FAST_PATHS, "test_path", accel._Counted("test_path", Path))
    accel.used(reset=True)
    with mr.fast_paths(True):
        assert backend.fast_path("test_path", 1).path is Path
        assert backend.fast_path("test_path", 0) is None          # does not apply
        assert backend.fast_path("no_such_path", 1) is None       # none registered
    with mr.fast_paths(False):
        assert backend.fast_path("test_path", 1) is None          # switched off
    assert accel.used() == ["test_path"]
    assert "ran: test_path" in accel.report(reset=True) and accel.used() == []


def test_the_report_names_the_paths_a_training_step_ran():
    accel.used(reset=True)
    with mr.fast_paths(True):
        mr.seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.SPP((2, 1)), nn.Linear(20, 3))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        F.softmax_cross_entropy(model(mr.tensor(RNG.standard_normal((2, 1, 8, 8)).astype("float32"))),
                                mr.tensor(np.array([0, 2]))).backward()
        opt.step()
    ran = accel.used(reset=True)
    assert {"conv2d", "max_pool2d", "spp_level"} <= set(ran)
    assert "sgd_momentum" not in ran and "gpu_training" not in ran     # GPU only
    with mr.fast_paths(False):
        model(mr.tensor(RNG.standard_normal((2, 1, 8, 8)).astype("float32")))
        assert accel.used() == [] and "off" in accel.report()


# ----------------------------------------------------------------------------
# Pooling: the tuned max-pool forward and SPP gathered at once
# ----------------------------------------------------------------------------

def _pool_both_ways(xp, fn, x):
    """(y, dE/dx) of fn with the fast paths on and off, as NumPy arrays."""
    out = []
    gy = None
    for enabled in (True, False):
        with mr.fast_paths(enabled):
            tx = mr.tensor(xp.asarray(x), requires_grad=True)
            y = fn(tx)
            if gy is None:
                gy = RNG.standard_normal(y.shape).astype(x.dtype)
            y.backward(mr.tensor(xp.asarray(gy)))
            out.append((y.numpy(), mr.backend.to_numpy(tx.grad)))
    return out


@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((2, 3, 8, 8), 2, None, 0), ((2, 3, 7, 9), 3, 2, 1), ((1, 2, 6, 5), (2, 3), 1, (1, 1)),
    ((2, 1, 5, 5), 3, 1, 0),
    # windows apart: tiling the map, leaving a last row and column, with gaps, padded
    ((64, 32, 28, 28), 2, None, 0), ((2, 3, 7, 9), 2, None, 0), ((2, 2, 9, 8), 2, 3, 0),
    ((2, 2, 7, 7), 2, 2, 1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ties", [False, True])
def test_fast_max_pool_equals_the_reference(xp, shape, kernel, stride, padding, dtype, ties):
    """Same maxima, same winners (ties: the first offset in row-major order),
    hence the same gradients, bit for bit; pixels in no window get 0."""
    x = RNG.standard_normal(shape).astype(dtype)
    if ties:
        x = np.round(x)                              # many equal values in each window
    (fast_y, fast_g), (ref_y, ref_g) = _pool_both_ways(
        xp, lambda t: F.max_pool2d(t, kernel, stride, padding), x)
    assert np.array_equal(fast_y, ref_y) and np.array_equal(fast_g, ref_g)


def test_fast_max_pool_runs_where_it_applies():
    x = mr.tensor(RNG.standard_normal((2, 3, 4, 4)).astype("float32"), requires_grad=True)
    accel.used(reset=True)
    with mr.fast_paths(True):
        y = F.max_pool2d(x, 2)
    assert type(y.creator).__module__ == "minirect.accel.pooling" and accel.used(reset=True) == ["max_pool2d"]
    assert type(y.creator).__name__ == "MaxPool2d"              # what messages and graphs show
    with mr.fast_paths(False):
        assert type(F.max_pool2d(x, 2).creator) is conv_module.MaxPool2d and accel.used() == []


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(64, 32, 28, 28), (2, 5), (3, 4, 7, 7), (1, 1, 1, 1)])
def test_fast_relu_equals_the_reference(xp, shape, dtype):
    """The mask product gives the reference's gradient, zeros included (x = 0
    exactly counts as masked on both paths), for the shapes the nets use."""
    x = RNG.standard_normal(shape).astype(dtype)
    x.flat[::7] = 0.0
    (fast_y, fast_g), (ref_y, ref_g) = _pool_both_ways(xp, F.relu, x)
    assert fast_g.dtype == ref_g.dtype == np.dtype(dtype)
    assert np.array_equal(fast_y, ref_y) and np.array_equal(fast_g, ref_g)   # -0.0 == 0.0


def test_fast_relu_runs_where_it_applies():
    x = mr.tensor(RNG.standard_normal((2, 3)).astype("float32"), requires_grad=True)
    accel.used(reset=True)
    with mr.fast_paths(True):
        y = F.relu(x)
    assert type(y.creator).__module__ == "minirect.accel.rectifiers" and accel.used(reset=True) == ["relu"]
    assert type(y.creator).__name__ == "ReLU"                    # what messages and graphs show
    with mr.fast_paths(False):
        assert type(F.relu(x).creator) is F.activations.ReLU and accel.used() == []


@pytest.mark.parametrize("shape, levels", [
    ((2, 3, 8, 8), (4, 2, 1)), ((2, 2, 7, 5), (3, 2, 1)), ((1, 4, 6, 6), (4,)),
    ((2, 2, 13, 13), (7, 3, 2, 1))])
@pytest.mark.parametrize("ties", [False, True])
def test_fast_spp_equals_the_reference(xp, shape, levels, ties):
    """SPP gathered at once (padded bin tables) against max pooling over the
    explicit bins: the same output and, with overlapping bins, the same gradient."""
    x = RNG.standard_normal(shape).astype("float32")
    if ties:
        x = np.round(x)
    (fast_y, fast_g), (ref_y, ref_g) = _pool_both_ways(xp, lambda t: F.spp(t, levels), x)
    assert np.array_equal(fast_y, ref_y) and np.array_equal(fast_g, ref_g)


@pytest.mark.parametrize("in_hw, bins", [((3, 5), (4, 7)), ((6, 6), (4, 4)), ((5, 2), (2, 3))])
def test_fast_adaptive_pool_equals_the_reference_when_bins_share_pixels(in_hw, bins):
    """Maps smaller than the grid: bins repeat pixels, whose gradients add up."""
    from minirect.accel.pooling import SppLevel
    x = RNG.standard_normal((2, 2, *in_hw))
    gy = RNG.standard_normal((2, 2, *bins))
    results = []
    for level in (SppLevel, conv_module.AdaptiveMaxPool2d):
        tx = mr.tensor(x, requires_grad=True)
        y = level.apply(tx, output_size=bins)
        y.backward(mr.tensor(gy))
        results.append((y.numpy(), mr.backend.to_numpy(tx.grad)))
    assert np.array_equal(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------
# Threads: the shifted-window blocks shared out among CPU cores
# ----------------------------------------------------------------------------

def run_threaded(monkeypatch, workers, run):
    """run() with the fast paths on and ``workers`` threads, counting the
    threaded passes (so that a test knows the threads were used)."""
    from minirect.accel import threads
    calls = []
    real = threads.run_parallel
    monkeypatch.setattr(threads, "workers", lambda: workers)
    monkeypatch.setattr(threads, "run_parallel", lambda tasks: calls.append(len(tasks)) or real(tasks))
    with mr.fast_paths(True):
        result = run()
    monkeypatch.undo()
    return result, calls


STRIDE_1_SHAPES = [case for case in CONV_SHAPES if case[2] == 1]


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", STRIDE_1_SHAPES)
def test_threaded_conv2d_equals_the_reference(monkeypatch, x_shape, w_shape, stride, padding,
                                              dtype, workers):
    """Forward and all three gradients with the blocks shared among threads."""
    x, w, b = RNG.standard_normal(x_shape), RNG.standard_normal(w_shape), RNG.standard_normal(w_shape[0])
    y_shape = F.conv2d(mr.tensor(x), mr.tensor(w), stride=stride, padding=padding).shape
    gy = RNG.standard_normal(y_shape)
    run = lambda: run_conv(np, x, w, b, gy, stride, padding, dtype=dtype)  # noqa: E731
    threaded, calls = run_threaded(monkeypatch, workers, run)
    with mr.fast_paths(False):
        reference = run()
    assert_same(threaded, reference, dtype)
    assert calls and all(n == min(workers, x_shape[0]) for n in calls)   # each pass threaded


@pytest.mark.parametrize("need_x, need_W", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("block_bytes", [300, 25_000, 10**9])   # blocks of 1; of 2, 2, 1; one per thread
def test_threaded_conv2d_on_uneven_shares_and_partial_gradients(monkeypatch, need_x, need_W,
                                                               block_bytes):
    """5 samples shared among 2 threads in blocks of several sizes; each
    thread's partial weight gradient is added to the others'."""
    monkeypatch.setattr(shifted_windows, "CPU_THREAD_BLOCK_BYTES", block_bytes)
    x, w = RNG.standard_normal((5, 3, 6, 6)), RNG.standard_normal((4, 3, 3, 3))
    gy = RNG.standard_normal((5, 4, 6, 6))
    run = lambda: run_conv(np, x, w, None, gy, 1, 1, need_x, need_W)  # noqa: E731
    threaded, calls = run_threaded(monkeypatch, 2, run)
    with mr.fast_paths(False):
        reference = run()
    assert_same(threaded, reference, "float64")
    assert calls


def test_a_batch_of_one_sample_runs_on_one_thread(monkeypatch):
    x, w = RNG.standard_normal((1, 2, 5, 5)), RNG.standard_normal((3, 2, 3, 3))
    run = lambda: run_conv(np, x, w, None, RNG.standard_normal((1, 3, 5, 5)), 1, 1)  # noqa: E731
    _, calls = run_threaded(monkeypatch, 2, run)
    assert all(n == 1 for n in calls)         # one block: nothing to share


def test_run_parallel_keeps_the_order_and_restores_blas_threads():
    from minirect.accel import threads
    before = threads.workers()
    assert threads.run_parallel([lambda i=i: i * i for i in range(4)]) == [0, 1, 4, 9]
    with pytest.raises(ZeroDivisionError):
        threads.run_parallel([lambda: 1, lambda: 1 / 0])
    assert threads.workers() == before


@pytest.mark.parametrize("n, parts", [(5, 2), (2, 3), (64, 2), (1, 1)])
def test_split_covers_the_range_in_near_equal_parts(n, parts):
    from minirect.accel import threads
    ranges = threads.split(n, parts)
    assert [i for a, b in ranges for i in range(a, b)] == list(range(n))
    assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


# ----------------------------------------------------------------------------
# backend.matmul in bands on minirect's threads
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("m, k, n", [(300, 200, 40), (40, 200, 300), (7, 3, 5), (1, 4096, 1024)])
@pytest.mark.parametrize("transposed", [False, True])
def test_parallel_matmul_equals_a_plain_product(monkeypatch, m, k, n, dtype, transposed):
    """Bands of rows (m >= n) or of columns, views of transposed arrays as
    Linear's backward passes them, and small products on one thread."""
    from minirect import backend
    from minirect.accel import threads
    a = RNG.standard_normal((k, m) if transposed else (m, k)).astype(dtype)
    b = RNG.standard_normal((n, k) if transposed else (k, n)).astype(dtype)
    a, b = (a.T, b.T) if transposed else (a, b)
    expected = a @ b
    monkeypatch.setattr(threads, "PARALLEL_MACS", 1000)            # every case but (7, 3, 5) is cut
    result, calls = run_threaded(monkeypatch, 2, lambda: backend.matmul(a, b))
    assert result.dtype == np.dtype(dtype) and result.shape == (m, n)
    np.testing.assert_allclose(result, expected, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-4)
    assert calls == ([] if m * k * n < 1000 else [2])


def test_a_gemm_inside_a_share_is_not_cut_again(monkeypatch):
    """Inside run_parallel's shares the conv's GEMMs run as they are (a share
    waiting on its own pool would never finish)."""
    from minirect import backend
    from minirect.accel import threads
    monkeypatch.setattr(threads, "PARALLEL_MACS", 1)
    a, b = RNG.standard_normal((64, 64)), RNG.standard_normal((64, 64))
    with mr.fast_paths(True):
        monkeypatch.setattr(threads, "workers", lambda: 2)
        assert backend.fast_path("matmul", a, b) is not None
        inside = threads.run_parallel([lambda: backend.fast_path("matmul", a, b)] * 2)
    assert inside == [None, None]


def test_parallel_matmul_leaves_other_arrays_to_the_plain_product(monkeypatch):
    from minirect.accel import threads
    monkeypatch.setattr(threads, "workers", lambda: 2)
    m = threads.ParallelMatmul
    a = RNG.standard_normal((4, 4))
    assert m.applies(a, a)
    assert not m.applies(a[None], a[None])                          # batched: 3-D
    assert not m.applies(a, a.astype("float32"))                    # mixed dtypes
    assert not m.applies(a.astype(int), a.astype(int))              # integers
