"""GEMM rate for the matrix shapes the convolution uses, against a square GEMM.

Why the CPU convolution of thin layers stays below the machine's GEMM rate:
a 3×3 conv with D output channels multiplies a D × 9C matrix by a 9C × n·L
column block (forward, input gradient) and the columns by the transpose of
a D × n·L matrix (weight gradient, ``shifted_pass``'s correlation). With
D = 32 the first shape is thin, and BLAS runs it well below its square-matrix
rate. The block sizes n·L are those conv2d's fast path uses
(``minirect.accel.shifted_windows.ShiftedWindows``).
Prints GFLOP/s per shape (median of 30 runs).

    python benchmarks/bench_gemm_shapes.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from minirect.accel.shifted_windows import ShiftedWindows


def rate(a, b, repeats=30) -> float:
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / statistics.median(times) / 1e9


def main():
    rng = np.random.default_rng(0)

    def m(rows, cols):
        return rng.standard_normal((rows, cols), dtype=np.float32)

    print(f"square 2048 x 2048 x 2048: {rate(m(2048, 2048), m(2048, 2048)):7.1f} GFLOP/s")
    # The 22-layer net's 3×3 "same" convs at 28×28 (32 ch) and 14×14 (64 ch), batch 64.
    for size, C in [(28, 32), (14, 64)]:
        windows = ShiftedWindows(np.empty((64, C, size, size), np.float32), (3, 3), (1, 1))
        D, K, NL = C, 9 * C, windows.largest * windows.length      # one block's columns: K × n·L
        w, cols, g = m(D, K), m(K, NL), m(D, NL)
        print(f"{size}x{size}, {C} ch, blocks of {K} x {NL}: forward W @ cols {rate(w, cols):7.1f}   "
              f"weight grad G @ colsᵀ {rate(g, cols.T):7.1f}   "
              f"as its transpose cols @ Gᵀ {rate(cols, g.T):7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
