"""The benchmark scripts' own measuring tools (the timings themselves are not tested)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bench_step  # noqa: E402

linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="VmHWM is read from /proc (Linux)")


def _peak_of_a_fresh_process(code: str) -> float:
    """bench_step.peak_rss_mb() printed by a new Python process after ``code``."""
    child = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); "
         f"import bench_step, numpy as np; {code}; print(bench_step.peak_rss_mb())"],
        capture_output=True, text=True, check=True)
    return float(child.stdout)


@linux_only
def test_peak_memory_sees_what_this_process_touches():
    # In fresh processes: here, an earlier test's peak could hide the growth.
    idle = _peak_of_a_fresh_process("pass")
    busy = _peak_of_a_fresh_process("block = np.ones(64 * 2**20 // 8)")   # 64 MB, written
    assert busy - idle > 50


@linux_only
def test_a_child_does_not_inherit_its_parents_peak_memory():
    """bench_step measures each framework in a child process; the child's peak
    must be its own, not the parent's (ru_maxrss is inherited across exec)."""
    block = np.ones(300 * 2**20 // 8)            # the parent peaks at > 300 MB
    child_peak = _peak_of_a_fresh_process("pass")
    del block
    assert child_peak < 200


def test_the_conv_layer_entry_times_forward_and_backward():
    """bench_step's one-layer row runs in its child process and reports a time
    and its own memory (the layer's columns and gradients: a few MB at least)."""
    result = bench_step.measure("minirect", "conv", "cpu", steps=1, warmup=0, threads=1)
    assert result["median_s"] > 0 and result["images_per_s"] > 0
    if Path("/proc/self/status").exists():
        assert result["peak_rss_growth_mb"] > 5


def test_the_gemm_floor_counts_every_conv_gemm_of_a_step():
    """profile_step's floor: forward, input and weight gradient of each conv,
    no input gradient for the first (the data), the FLOPs of the convolutions."""
    import profile_step

    net = bench_step.NETS["22"]
    shapes = profile_step.conv_gemm_shapes(net)
    convs = [item for item in bench_step.layer_plan(net)[0] if item[0] == "conv"]
    assert len(shapes) == 3 * len(convs) - 1
    sizes = [28] * 7 + [14] * 6 + [7] * 6          # conv1 + 6/6/6 convs at 28/14/7
    forward_flops = sum(2 * 64 * s * s * c_out * 9 * c_in
                        for (_, c_in, c_out), s in zip(convs, sizes))
    first = 2 * 64 * 28 * 28 * 32 * 9 * 1
    assert sum(2 * m * k * n for m, k, n in shapes) == 3 * forward_flops - first


def test_the_gemm_floor_times_blocks_of_the_pixel_axis():
    import profile_step

    seconds = profile_step.best_gemm_seconds(8, 16, 1024, repeats=1)
    assert 0 < seconds < 1
    tiny = dict(batch=2, channels=1, size=8, stages=(1, 1, 1), widths=(4, 4, 4, 4))
    floor, flops, threads = profile_step.gemm_floor(tiny, repeats=1)
    assert floor > 0 and flops > 0 and threads >= 1


def test_the_benchmark_scripts_import_each_other_in_one_direction():
    """bench_step and profile_step use bench_conv's helpers; bench_conv imports
    no other benchmark script (no import circle), and none imports minirect.graphs."""
    import ast
    imports = {}
    for path in BENCHMARKS.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names.add(node.module or "")
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        imports[path.stem] = names
    scripts = set(imports)
    assert not (imports["bench_conv"] & scripts), imports["bench_conv"]
    for name, names in imports.items():
        assert "minirect.graphs" not in names, name
        for other in names & scripts:
            assert name not in imports[other], f"{name} and {other} import each other"


def test_the_per_layer_profile_counts_every_conv_of_the_net():
    """profile_conv_layers: the 22-layer net's 19 convs as five distinct layers,
    the first marked (no input gradient), counted as often as they occur."""
    import profile_conv_layers

    layers = profile_conv_layers.conv_layers(bench_step.NETS["22"])
    assert sum(layers.values()) == 19
    assert layers == {(64, 1, 32, 28, True): 1, (64, 32, 32, 28, False): 6,
                      (64, 32, 64, 14, False): 1, (64, 64, 64, 14, False): 5,
                      (64, 64, 64, 7, False): 6}


def test_the_per_layer_profile_takes_a_small_conv_apart():
    """Each part of the fast conv is timed (a part that never ran would read 0)."""
    import profile_conv_layers

    rng = np.random.default_rng(0)
    x, W, gy = (rng.standard_normal(s, dtype=np.float32)
                for s in [(2, 3, 6, 6), (4, 3, 3, 3), (2, 4, 6, 6)])
    parts = profile_conv_layers.taken_apart(x, W, gy, workers=2, first=False)
    assert set(parts) == {f"{p} {q}" for p in ("fwd", "bwd") for q in ("cols", "gemm", "rest")}
    assert all(ms > 0 for ms in parts.values())


def test_the_thread_balance_adds_up():
    """thread_balance.summarize: two threaded calls and two ops, by hand."""
    import thread_balance
    calls = [(0.010, [0.008, 0.006], 0.003),        # wall, each share's time, end-to-end spread
             (0.005, [0.004, 0.004], 0.000)]
    row = thread_balance.summarize(0.030, calls, {"ReLU.backward": 0.006, "Conv2d.forward": 0.002}, 2)
    assert row["threaded"] == pytest.approx(0.015) and row["one core"] == pytest.approx(0.015)
    assert row["work / cores"] == pytest.approx(0.011) and row["imbalance"] == pytest.approx(0.003)
    assert row["dispatch"] == pytest.approx(0.002 + 0.001)
    assert row["  other"] == pytest.approx(0.015 - 0.008) and row["calls"] == 2


def test_thread_balance_watches_the_pool_every_threaded_pass_uses():
    """The shifted-window conv and the banded GEMMs both go through run_parallel."""
    import inspect

    from minirect.accel import shifted_windows, threads
    assert "threads.run_parallel(" in inspect.getsource(shifted_windows.shifted_pass)
    assert "run_parallel(" in inspect.getsource(threads.ParallelMatmul.matmul)
