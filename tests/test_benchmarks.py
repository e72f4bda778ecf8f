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
