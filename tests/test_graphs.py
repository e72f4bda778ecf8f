"""CUDA graphs (minirect.accel: captured_step, cuda_graphs, cublas) and the GPU's dropout numbers.

The CPU tests check what does not need a GPU: how a strided array is handed
to cuBLAS, and that a ``CapturedStep`` on the CPU is the plain step. The
``gpu`` tests check that a replayed step computes what the eager one does.
"""

import types

import numpy as np
import pytest

import minirect as mr
from minirect import backend, nn, optim
from minirect.accel import gpu_random
from minirect.accel.cublas import blas_operand
from minirect.accel.cuda_graphs import GraphRecorder
from minirect.accel.captured_step import CapturedStep
from minirect.train import fit, training_step
from minirect.data import DataLoader

from conftest import _cupy_or_skip


def _as_blas_reads(x, transpose, ld):
    """The matrix cuBLAS sees at x's first element with this flag and leading
    dimension, as a row-major view (the inverse of blas_operand's reading)."""
    step = x.itemsize
    rows, cols = x.shape
    strides = (ld * step, step) if transpose == 0 else (step, ld * step)
    return np.lib.stride_tricks.as_strided(x, shape=(rows, cols), strides=strides)


def _layouts(rng):
    base = rng.standard_normal((12, 10)).astype(np.float32)
    return {
        "c-order": base,
        "transposed": base.T,
        "row slice": base[2:9],
        "column slice (padded rows)": base[:, 1:7],
        "transposed column slice": base[:, 1:7].T,
        "every other row": base[::2],
        "every other column": base[:, ::2],
        "single row": base[3:4, 2:8],
        "single column": base[:, 4:5],
    }


@pytest.mark.parametrize("name", list(_layouts(np.random.default_rng(0))))
def test_blas_operand_describes_the_array(name):
    x = _layouts(np.random.default_rng(0))[name]
    y, transpose, ld = blas_operand(x)
    rows, cols = x.shape
    stored_rows = cols if transpose == 0 else rows         # cuBLAS's rows of the stored matrix
    assert ld >= max(1, stored_rows)
    np.testing.assert_array_equal(_as_blas_reads(y, transpose, ld), x)
    if name in ("c-order", "transposed", "row slice", "column slice (padded rows)",
                "transposed column slice"):
        assert np.shares_memory(y, x), "a layout cuBLAS can read must not be copied"


def test_blas_operand_copies_what_cublas_cannot_read():
    x = np.arange(40, dtype=np.float32).reshape(5, 8)[::2, ::2]     # no unit stride at all
    y, transpose, ld = blas_operand(x)
    assert not np.shares_memory(x, y) and y.flags.c_contiguous and (transpose, ld) == (0, 4)


def _net(dropout=0.0):
    """Conv, pooling, SPP (model B's head), linear; dropout optional."""
    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1),
              nn.ReLU(), nn.SPP((2, 1)), nn.Linear(4 * 5, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(16, 3))


def _batches(count, n=8, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, n))
            for _ in range(count)]


def _train(device, batches, graph, dropout=0.0, lr_change_at=None):
    """Train _net on ``batches``; returns (losses, final parameters, the step)."""
    mr.seed(3)
    model = _net(dropout).to(device)
    opt = optim.SGD(optim.param_groups(model, 5e-4), lr=0.05, momentum=0.9)
    step = training_step(model, opt)
    if graph:
        step = CapturedStep(step, model, opt)
    losses = []
    for i, (x, y) in enumerate(batches):
        if i == lr_change_at:
            for group in opt.param_groups:
                group["lr"] *= 0.1
        loss, logits = step(mr.tensor(x, device=device), mr.tensor(y, device=device))
        assert logits.shape == (len(y), 3)
        losses.append(float(backend.to_numpy(loss)))
    step.grads = [backend.to_numpy(p.grad) for p in model.parameters()]   # the last step's
    return losses, [backend.to_numpy(p.data) for p in model.parameters()], step


def test_captured_step_on_the_cpu_is_the_plain_step():
    batches = _batches(4)
    plain = _train("cpu", batches, graph=False, dropout=0.5)
    captured = _train("cpu", batches, graph=True, dropout=0.5)
    assert plain[0] == captured[0]
    for a, b in zip(plain[1], captured[1]):
        np.testing.assert_array_equal(a, b)
    assert captured[2].recorder is None and captured[2].recordings == 0


def test_captured_step_needs_a_warmup():
    model = _net()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="warmup"):
        CapturedStep(training_step(model, opt), model, opt, warmup=0)


def test_fit_with_cuda_graph_on_the_cpu_changes_nothing():
    x = np.random.default_rng(0).standard_normal((40, 1, 8, 8)).astype(np.float32)
    y = np.arange(40) % 3
    histories = []
    for graph in (False, True):
        mr.seed(0)
        model = _net(0.5)
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        loader = DataLoader(x, y, batch_size=16, shuffle=True, seed=0)   # 16, 16, 8
        histories.append(fit(model, loader, opt, 2, progress=False, cuda_graph=graph))
    assert histories[0].iterations == histories[1].iterations


def test_fit_on_the_cpu_touches_nothing_of_accel(monkeypatch, capsys):
    """On the CPU the GPU training hook does not apply: no CapturedStep, no
    deferred reads, no message (cuda_graph=None, "auto", and True alike)."""
    from minirect.accel import gpu_training
    made = []
    monkeypatch.setattr(gpu_training, "prepare", lambda *a: made.append(a) or a[:1] + (1,))
    x = np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32)
    for cuda_graph in (None, True):
        model = _net()
        fit(model, DataLoader(x, np.arange(16) % 3, batch_size=8),
            optim.SGD(model.parameters(), lr=0.1), 1, progress=False, cuda_graph=cuda_graph)
    assert made == [] and "CUDA graph" not in capsys.readouterr().out


def test_fit_reaches_the_gpu_parts_through_one_hook(monkeypatch):
    """For a model on the GPU fit asks ``fast_path("gpu_training", model)`` once
    and runs the step and the read interval that accel's ``prepare`` returns."""
    from minirect.accel import gpu_training
    calls = []

    def prepare(step, model, optimizer, cuda_graph):
        calls.append(cuda_graph)
        return (lambda x, y: calls.append("step") or step(x, y)), 3
    monkeypatch.setattr(gpu_training, "applies", lambda model: True)
    monkeypatch.setattr(gpu_training, "prepare", prepare)
    x = np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32)
    model = _net()
    with mr.fast_paths(True):                   # on, whatever MINIRECT_FAST_PATHS says
        history = fit(model, DataLoader(x, np.arange(16) % 3, batch_size=4),
                      optim.SGD(model.parameters(), lr=0.1), 1, progress=False, cuda_graph=False)
    assert calls == [False] + ["step"] * 4 and len(history.iterations) == 4
    with mr.fast_paths(False):                  # the switch turns the hook off too
        calls.clear()
        fit(model, DataLoader(x, np.arange(16) % 3, batch_size=4),
            optim.SGD(model.parameters(), lr=0.1), 1, progress=False)
        assert calls == []


def test_the_auto_choice_picks_graphs_for_a_model_on_the_gpu(monkeypatch):
    from minirect.accel import captured_step
    model = _net()
    with mr.fast_paths(True):
        assert captured_step.use_graphs(None, model) == (False, "")        # on the CPU
        monkeypatch.setattr(captured_step, "backend", types.SimpleNamespace(device_of=lambda a: "cuda"))
        assert captured_step.use_graphs(None, model) == (True, "")
        assert captured_step.use_graphs(False, model) == (False, "")       # asked: obeyed
    with mr.fast_paths(False):
        use, why = captured_step.use_graphs(None, model)
    assert not use and "fast_paths" in why


@pytest.mark.parametrize("flags, device, expected", [
    ([], "cpu", False), ([], "cuda", True), (["--no-cuda-graph"], "cuda", False),
    (["--cuda-graph"], "cuda", True), (["--cuda-graph"], "cpu", True)])
def test_the_command_line_turns_graphs_on_for_cuda_by_default(flags, device, expected):
    from minirect import cli
    args = cli._parser().parse_args(["reproduce", "fig3", "--device", device, *flags])
    assert cli._cuda_graph(args) is expected


class _RecorderThatFails:
    """A GraphRecorder stand-in for the CPU: runs work, cannot record."""

    def run(self, fn, *args):
        return fn(*args)

    def record(self, fn, *args):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")


@pytest.mark.parametrize("fallback", [True, False])
def test_a_step_that_cannot_be_recorded_runs_eagerly_saying_why_once(monkeypatch, capsys, fallback):
    with mr.fast_paths(True):          # with them off nothing is recorded at all
        _fail_to_record(monkeypatch, capsys, fallback)


def _fail_to_record(monkeypatch, capsys, fallback):
    from minirect.accel import captured_step
    # captured_step's own view of the backend: every batch looks like a GPU batch
    monkeypatch.setattr(captured_step, "backend", types.SimpleNamespace(is_cupy_array=lambda a: True))
    monkeypatch.setattr(captured_step, "GraphRecorder", _RecorderThatFails)
    monkeypatch.setattr(CapturedStep, "_state_key", lambda self, x, y: ((x.shape,),))
    batches = [(mr.tensor(x), mr.tensor(y)) for x, y in _batches(5)]
    mr.seed(0)
    model = _net()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = CapturedStep(training_step(model, opt), model, opt, fallback=fallback)
    if not fallback:
        step(*batches[0]), step(*batches[1])                   # warm-up runs eagerly
        with pytest.raises(RuntimeError, match="capturing"):
            step(*batches[2])
        return
    losses = [float(step(x, y)[0]) for x, y in batches]
    lines = [line for line in capsys.readouterr().out.splitlines() if "CUDA graph" in line]
    assert len(lines) == 1 and "capturing" in lines[0] and "eagerly" in lines[0]
    mr.seed(0)
    model = _net()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    plain = training_step(model, opt)
    assert losses == [float(plain(x, y)[0]) for x, y in batches]   # no batch lost or repeated


# --------------------------------------------------------------------------- GPU

@pytest.mark.gpu
@pytest.mark.parametrize("name", list(_layouts(np.random.default_rng(0))))
def test_matmul_while_recording_matches_cupy(name):
    cp = _cupy_or_skip()
    rng = np.random.default_rng(2)
    left = cp.asarray(_layouts(rng)[name])
    right = cp.asarray(rng.standard_normal((left.shape[1], 5)).astype(np.float32))
    recorder = GraphRecorder()

    def products():
        return backend.matmul(left, right), backend.matmul(right.T, left.T)
    recorder.run(products)                 # warm-up: fills the private pool, as CapturedStep does
    graph, out = recorder.record(products)
    recorder.replay(graph)
    cp.cuda.Device().synchronize()
    np.testing.assert_allclose(out[0].get(), (left @ right).get(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[1].get(), (right.T @ left.T).get(), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_replayed_steps_match_eager_steps(dropout):
    _cupy_or_skip()
    batches = _batches(8)
    eager = _train("cuda", batches, graph=False, dropout=dropout)
    replayed = _train("cuda", batches, graph=True, dropout=dropout)
    assert replayed[2].recordings == 1
    np.testing.assert_allclose(replayed[0], eager[0], rtol=1e-4)
    for a, b in zip(replayed[1], eager[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
def test_a_new_learning_rate_records_a_new_graph():
    _cupy_or_skip()
    batches = _batches(10)
    eager = _train("cuda", batches, graph=False, lr_change_at=6)
    replayed = _train("cuda", batches, graph=True, lr_change_at=6)
    assert replayed[2].recordings == 2
    for a, b in zip(replayed[1], eager[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
def test_a_short_batch_runs_eagerly_and_keeps_the_graph():
    _cupy_or_skip()
    batches = _batches(6) + _batches(1, n=5, seed=9) + _batches(3, seed=4)
    eager = _train("cuda", batches, graph=False)
    replayed = _train("cuda", batches, graph=True)
    assert replayed[2].recordings == 1
    for a, b in zip(replayed[2].grads, eager[2].grads):     # p.grad is the replay's again
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(replayed[0], eager[0], rtol=1e-4)
    for a, b in zip(replayed[1], eager[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
def test_gpu_uniform_numbers_are_fresh_seeded_and_uniform():
    cp = _cupy_or_skip()
    mr.seed(4)
    a, b = gpu_random.uniform((200_000,)), gpu_random.uniform((200_000,))
    mr.seed(4)
    again = gpu_random.uniform((200_000,))
    assert cp.array_equal(a, again) and not cp.array_equal(a, b)
    values = a.get()
    assert values.min() >= 0 and values.max() < 1
    counts = np.histogram(values, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 20_000) < 5 * np.sqrt(20_000))     # 5 sigma per bin
    assert abs(np.corrcoef(values[:-1], values[1:])[0, 1]) < 0.01


@pytest.mark.gpu
def test_replayed_dropout_draws_new_masks():
    cp = _cupy_or_skip()
    mr.seed(0)
    x = mr.tensor(cp.ones((64, 64), dtype=cp.float32))
    recorder = GraphRecorder()

    def masked():
        return (mr.functional.dropout(x, 0.5).data,)
    recorder.run(masked)                   # warm-up; also puts the generator's state on the GPU
    graph, (mask,) = recorder.record(masked)
    recorder.replay(graph)
    first = mask.copy()
    recorder.replay(graph)
    assert not cp.array_equal(first, mask)
    assert 0.4 < float((mask > 0).mean()) < 0.6


class _MatmulNet(nn.Module):
    """A custom model whose forward pass is the ``@`` operator (MatMul)."""

    def __init__(self, device):
        super().__init__()
        rng = np.random.default_rng(6)
        self.W = nn.Parameter(backend.to_device(rng.standard_normal((16, 3)).astype(np.float32) * 0.3,
                                                device))

    def forward(self, x):
        return mr.functional.relu(x.reshape(x.shape[0], -1)[:, :16]) @ self.W


@pytest.mark.gpu
def test_a_recorded_custom_step_with_the_matmul_operator():
    """Function's rule: every GEMM goes through backend.matmul, ``@`` included,
    so a custom step that uses ``x @ W`` records and replays as it runs eagerly."""
    _cupy_or_skip()
    batches = _batches(6)
    results = []
    for graph in (False, True):
        model = _MatmulNet("cuda")
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        step = training_step(model, opt)
        if graph:
            step = CapturedStep(step, model, opt)
        losses = [float(backend.to_numpy(step(mr.tensor(x, device="cuda"),
                                              mr.tensor(y, device="cuda"))[0]))
                  for x, y in batches]
        results.append((losses, model.W.numpy()))
    assert step.recordings == 1
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-4)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-4, atol=1e-6)
