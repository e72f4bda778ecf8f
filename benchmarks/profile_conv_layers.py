"""Per conv layer of a benchmark net: where the fast conv's time goes, against its GEMM floor.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \\
        python benchmarks/profile_conv_layers.py --net 22        # and --net cifar

For each distinct conv layer of bench_step.py's net (counted as often as it
occurs), on the CPU with the fast paths on (accel/shifted_windows.py):

* ``fwd`` and ``bwd``: the wall time of the layer's forward and of its
  backward (input and weight gradient; the first layer: weight only), with
  the threads the step uses (``threads.workers()``);
* the same work taken apart on one thread, block by block as the threads
  would cut it: ``cols`` (building the column matrices: in the backward, of
  the padded output gradient, plus laying x out in the columns' order),
  ``gemm`` (the matrix products on those blocks) and ``rest`` (the bias, the
  output's layout copy, the kernels' flip);
* ``floor``: the same GEMMs at this BLAS's best one-thread rate
  (profile_step.best_gemm_seconds) divided by the thread count;
* ``idle``: wall time minus the one-thread work divided by the threads, i.e.
  what the cores lose to waiting and to sharing memory bandwidth.

All times are ms per call of the layer, medians of ``--repeats`` runs; the
last row sums them per step, each layer as often as it occurs. With
``--cold`` the wall times are taken after reading a 64 MB buffer, as in a
training step, where a layer's input and gradient were written long before
and have left the caches; without it the same arrays are reused call after
call and stay in the L3 cache.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from functools import partial

import numpy as np
from bench_step import NETS, layer_plan
from profile_step import best_gemm_seconds


_FLUSH = None


def median_ms(fn, repeats: int, cold: bool = False) -> float:
    """Median ms of ``fn()``; ``cold``: each call after streaming through 64 MB."""
    global _FLUSH
    if cold and _FLUSH is None:
        _FLUSH = np.ones(16 * 2**20, dtype=np.float32)
    fn()
    times = []
    for _ in range(repeats):
        if cold:
            _FLUSH += 1.0                                   # evicts x, W and gy from the caches
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def conv_layers(net) -> Counter:
    """{(batch, c_in, c_out, size, first): count} of the net's 3x3 'same' convs."""
    plan, _ = layer_plan(net)
    size, layers = net["size"], Counter()
    for i, item in enumerate(plan):
        if item[0] == "pool":
            size //= 2
        else:
            layers[(net["batch"], item[1], item[2], size, i == 0)] += 1
    return layers


def taken_apart(x, W, gy, workers: int, first: bool) -> dict:
    """One-thread ms of the fast conv's parts (cols, gemm, rest), forward and
    backward, on the blocks the threads would use."""
    from minirect import backend
    from minirect.accel import shifted_windows as sw

    parts = {f"{phase} {part}": 0.0 for phase in ("fwd", "bwd") for part in ("cols", "gemm", "rest")}

    def timed(key, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        parts[key] += 1e3 * (time.perf_counter() - start)
        return out

    def layout(y, n):                  # (D', n·OH·Wp) -> (n, D', OH, OW), as the fast conv writes it
        return y.reshape(-1, n, OH, Wp)[..., :OW].transpose(1, 0, 2, 3).copy()

    D, C = W.shape[:2]
    fwd = sw.ShiftedWindows(x, (3, 3), (1, 1), workers=workers)
    (OH, OW), Wp = fwd.out_hw, fwd.row_width
    for s, e in fwd.blocks:
        cols = timed("fwd cols", fwd.columns, x[s:e])
        y = timed("fwd gemm", backend.matmul, W.reshape(D, -1), cols)
        timed("fwd rest", layout, y, e - s)
    source, partner = (x, gy) if first else (gy, x)     # 3x3, padding 1: k-1-p = 1 as well
    flipped = timed("bwd rest", lambda: sw.flipped_kernels(W).reshape(C, -1))
    bwd = sw.ShiftedWindows(source, (3, 3), (1, 1), workers=workers)
    for s, e in bwd.blocks:
        cols = timed("bwd cols", bwd.columns, source[s:e])
        laid = timed("bwd cols", bwd.in_window_order, partner[s:e])
        timed("bwd gemm", backend.matmul, cols, laid.T)
        if not first:
            gx = timed("bwd gemm", backend.matmul, flipped, cols)
            timed("bwd rest", layout, gx, e - s)
    return parts


def layer_floor(batch, c_in, c_out, size, first, threads) -> float:
    """ms of the layer's GEMMs at the best one-thread rate, over ``threads``."""
    pixels = batch * size * size
    shapes = [(c_out, 9 * c_in, pixels), (c_out, pixels, 9 * c_in)]
    if not first:
        shapes.append((9 * c_in, c_out, pixels))
    return 1e3 * sum(best_gemm_seconds(m, k, n, 3) for m, k, n in shapes) / threads


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", default="22", choices=sorted(NETS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cold", action="store_true", help="time fwd and bwd with cold caches")
    args = p.parse_args()

    from threadpoolctl import threadpool_info, threadpool_limits

    import minirect as mr
    from minirect.accel import shifted_windows as sw
    from minirect.accel import threads

    workers = threads.workers()
    kernel = [f"{i['internal_api']} {i.get('version')} {i.get('architecture')}"
              for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"net {args.net}, {workers} thread(s), BLAS: {', '.join(kernel)}"
          + (", cold caches" if args.cold else ""))
    print(f"{'layer (N, C->D, HxW) x count':32s} {'fwd':>7s} {'bwd':>7s} | one thread: "
          f"{'cols':>6s} {'gemm':>6s} {'rest':>6s} | {'floor':>6s} {'wall/floor':>10s} {'idle':>6s}")
    rng = np.random.default_rng(0)
    total = Counter()
    for (batch, c_in, c_out, size, first), count in conv_layers(NETS[args.net]).items():
        x = rng.standard_normal((batch, c_in, size, size), dtype=np.float32)
        W = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32)
        gy = rng.standard_normal((batch, c_out, size, size), dtype=np.float32)
        with mr.fast_paths(True):
            fwd = median_ms(partial(sw.conv2d, x, W, None, (1, 1)), args.repeats, args.cold)
            bwd = median_ms(partial(sw.conv2d_backward, x, W, gy, (1, 1), not first, True),
                            args.repeats, args.cold)
        with threadpool_limits(1, user_api="blas"):
            runs = [taken_apart(x, W, gy, workers, first) for _ in range(args.repeats)]
            parts = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            floor = layer_floor(batch, c_in, c_out, size, first, workers)
        one_thread = {part: parts[f"fwd {part}"] + parts[f"bwd {part}"] for part in ("cols", "gemm", "rest")}
        idle = fwd + bwd - sum(one_thread.values()) / workers
        row = dict(fwd=fwd, bwd=bwd, **one_thread, floor=floor, idle=idle)
        total.update({k: v * count for k, v in row.items()})
        name = f"{batch}, {c_in}->{c_out}, {size}x{size}" + (" (first)" if first else "")
        print(f"{name + f' x{count}':32s} " + _cells(row))
    print(f"{'total per step':32s} " + _cells(total))


def _cells(row) -> str:
    return (f"{row['fwd']:7.1f} {row['bwd']:7.1f} |             {row['cols']:6.1f} {row['gemm']:6.1f} "
            f"{row['rest']:6.1f} | {row['floor']:6.1f} {(row['fwd'] + row['bwd']) / row['floor']:10.2f} "
            f"{row['idle']:6.1f}")


if __name__ == "__main__":
    main()
