"""Would a channels-last layout pay? Two NHWC forms of a 3x3 conv's forward against the fast path.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \\
        python benchmarks/try_channels_last.py

One thread (BLAS on one thread), the 22-layer net's stage convs, ms per
forward of the whole batch (median of 7). The input is given already in
NHWC order and the output is left in it, as a channels-last engine would
keep them, so the layout copies a change of layout would add are not
counted: this measures the best case for channels-last.

* ``slabs``: no column matrix at all. The padded NHWC maps, flattened to
  (n·Hp·Wp, C), hold every kernel offset's input as one contiguous slab
  (rows shifted by i·Wp + j), so y = Σ_ij slab_ij @ W_ij: nine GEMMs with
  K = C, accumulated.
* ``tall``: the NHWC column matrix (n·Hp·Wp, 9·C) built by one strided
  copy (contiguous runs of C floats), then one tall GEMM with K = 9·C, the
  orientation OpenBLAS runs fastest for these shapes (bench_gemm_shapes.py).

Both are checked against the fast path's output.
"""

from __future__ import annotations

import statistics
import time
from functools import partial

import numpy as np
from numpy.lib.stride_tricks import as_strided

LAYERS = [(64, 32, 32, 28), (64, 64, 64, 14), (64, 64, 64, 7)]    # N, C, D, size
BLOCK_BYTES = 2**20


def median_ms(fn, repeats=7):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def nhwc_conv(x_nhwc, W, form):
    """3x3 'same' conv of x (N, H, W, C) -> (N, H, W, D), by ``form``."""
    N, S, _, C = x_nhwc.shape
    D = W.shape[0]
    Hp, Wp = S + 3, S + 1               # a row above, a row below, a spare row; one shared gap column
    per_sample = Hp * Wp * C * 4 * (9 if form == "tall" else 1)
    block = max(1, BLOCK_BYTES // per_sample)
    padded = np.zeros((block, Hp, Wp, C), np.float32)
    taps = np.ascontiguousarray(W.transpose(2, 3, 1, 0))          # (3, 3, C, D)
    out = np.empty((N, S, S, D), np.float32)
    for s in range(0, N, block):
        n = min(s + block, N) - s
        padded[:n, 1:S + 1, 1:, :] = x_nhwc[s:s + n]
        flat = padded[:n].reshape(-1, C)
        rows = n * Hp * Wp - 2 * Wp - 2                        # the last offset's slab ends inside
        if form == "slabs":
            y = flat[:rows] @ taps[0, 0]
            for i, j in [(i, j) for i in range(3) for j in range(3)][1:]:
                y += flat[i * Wp + j:i * Wp + j + rows] @ taps[i, j]
        else:
            windows = as_strided(flat, shape=(rows, 3, 3, C), strides=(C * 4, Wp * C * 4, C * 4, 4))
            y = np.ascontiguousarray(windows).reshape(rows, 9 * C) @ taps.reshape(9 * C, D)
        full = np.empty((n * Hp * Wp, D), np.float32)
        full[:rows] = y
        out[s:s + n] = full.reshape(n, Hp, Wp, D)[:, :S, :S, :]
    return out


def main():
    from threadpoolctl import threadpool_info

    from minirect.accel import shifted_windows as sw

    rng = np.random.default_rng(0)
    blas = [f"{i['internal_api']} {i.get('architecture')}, {i['num_threads']} thread(s)"
            for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"BLAS: {', '.join(blas)}; ms per forward of the batch")
    for N, C, D, S in LAYERS:
        x = rng.standard_normal((N, C, S, S), dtype=np.float32)
        W = rng.standard_normal((D, C, 3, 3), dtype=np.float32)
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        reference = sw.conv2d(x, W, None, (1, 1))
        cells = [f"shifted windows {median_ms(partial(sw.conv2d, x, W, None, (1, 1))):6.2f}"]
        for form in ("slabs", "tall"):
            y = nhwc_conv(x_nhwc, W, form).transpose(0, 3, 1, 2)
            assert np.allclose(y, reference, rtol=1e-4, atol=1e-3), form
            cells.append(f"{form} {median_ms(partial(nhwc_conv, x_nhwc, W, form)):6.2f}")
        print(f"  {N}, {C}->{D}, {S}x{S}:  " + " | ".join(cells))


if __name__ == "__main__":
    main()
