"""Where a training step's time goes: forward, backward and SGD, and per op.

Builds the ``22`` net of bench_step.py (or another with --net) and times, with
a device synchronization around each part:

* the phases of a step (forward + loss, backward, optimizer step), for
  minirect and, when installed, PyTorch;
* every autograd Function's forward and backward, summed by type (this adds a
  synchronization per op, so the parts add up to more than a plain step);
* the launch floor: the time of one tiny elementwise op, which bounds a
  launch-bound GPU step from below (ops per step × this time);
* on the CPU, the GEMM floor: the matrix products that every im2col engine
  runs for the step's convolutions (forward W @ cols, input gradient Wᵀ @ G,
  weight gradient G @ colsᵀ; the first layer needs no input gradient), each
  timed as one whole-batch GEMM with NumPy's BLAS and its present thread
  count, without building any columns. Their sum is what the convolutions
  cost in GEMMs alone, so a step cannot be faster than that with this BLAS;
  it is printed beside PyTorch's whole step.

    python benchmarks/profile_step.py --device cuda
    OPENBLAS_NUM_THREADS=2 python benchmarks/profile_step.py --net cifar
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_conv import torch_true_float32  # noqa: E402
from bench_step import NETS, build_minirect, build_torch, layer_plan, torch_synchronize  # noqa: E402


def time_phases(forward, backward, sgd, sync, steps):
    """Median seconds of each phase of a step, synchronized, after 3 warm-up steps.
    ``forward()`` returns the loss that ``backward(loss)`` differentiates."""
    times = collections.defaultdict(list)
    for i in range(steps + 3):
        t0 = time.perf_counter()
        loss = forward()
        sync()
        t1 = time.perf_counter()
        backward(loss)
        sync()
        t2 = time.perf_counter()
        sgd()
        sync()
        t3 = time.perf_counter()
        if i >= 3:
            for name, value in (("forward", t1 - t0), ("backward", t2 - t1), ("sgd", t3 - t2)):
                times[name].append(value)
    return {k: statistics.median(v) for k, v in times.items()}


def phases_minirect(net, device, steps):
    import minirect as mr
    import minirect.functional as F

    model, opt, x, y = build_minirect(net, device)

    def backward(loss):
        opt.zero_grad()
        loss.backward()

    return time_phases(lambda: F.softmax_cross_entropy(model(x), y), backward, opt.step,
                       mr.backend.synchronize, steps)


def phases_torch(net, device, steps):
    import torch

    torch_true_float32()
    model, opt, x, y = build_torch(net, device)

    def backward(loss):
        opt.zero_grad()
        loss.backward()

    return time_phases(lambda: torch.nn.functional.cross_entropy(model(x), y), backward,
                       opt.step, lambda: torch_synchronize(device), steps)


def function_methods() -> list:
    """(cls, name, method) for each forward and backward that an autograd
    Function type defines itself (the reference's and accel's alike)."""
    from minirect import autograd

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    return [(cls, name, cls.__dict__[name]) for cls in set(subclasses(autograd.Function))
            for name in ("forward", "backward") if name in cls.__dict__]


def per_op(net, device, steps):
    """Sum of each Function type's forward and backward time per step (synchronized)."""
    import minirect as mr
    import minirect.functional as F

    model, opt, x, y = build_minirect(net, device)
    totals, counts = collections.defaultdict(float), collections.Counter()

    def timed(cls, name, method):
        def wrapper(self, *args, **kwargs):
            mr.backend.synchronize()
            start = time.perf_counter()
            out = method(self, *args, **kwargs)
            mr.backend.synchronize()
            totals[f"{cls.__name__}.{name}"] += time.perf_counter() - start
            counts[f"{cls.__name__}.{name}"] += 1
            return out
        return wrapper

    originals = function_methods()
    for cls, name, method in originals:
        setattr(cls, name, timed(cls, name, method))
    try:
        for i in range(steps + 2):
            if i == 2:
                totals.clear()
                counts.clear()
            loss = F.softmax_cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for cls, name, method in originals:
            setattr(cls, name, method)
    return {k: (v / steps, counts[k] // steps) for k, v in totals.items()}


def launch_floor(device, repeats=2000):
    """Seconds per tiny elementwise op (a + 1 on 16 numbers), the per-op floor."""
    import minirect as mr

    xp = mr.backend.module_for(device)
    a = xp.ones(16, dtype=xp.float32)
    for _ in range(10):
        a = a + 1
    mr.backend.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a = a + 1
    mr.backend.synchronize()
    return (time.perf_counter() - start) / repeats


def conv_gemm_shapes(net):
    """(M, K, N) of every GEMM an im2col engine runs for the net's 3×3 convolutions;
    the batch's pixels are N, or K for the weight gradient."""
    plan, _ = layer_plan(net)
    size, shapes = net["size"], []
    for i, item in enumerate(plan):
        if item[0] == "pool":
            size //= 2
            continue
        c_in, c_out, pixels = item[1], item[2], net["batch"] * size * size
        shapes.append((c_out, 9 * c_in, pixels))               # y = W @ cols
        shapes.append((c_out, pixels, 9 * c_in))               # dW = G @ colsᵀ
        if i > 0:                                              # the data needs no gradient
            shapes.append((9 * c_in, c_out, pixels))           # dcols = Wᵀ @ G
    return shapes


PIXEL_BLOCKS = (512, 2048, 8192, None)    # None: the whole batch in one GEMM


def best_gemm_seconds(m, k, n, repeats):
    """Fastest one-thread time of (m, k) @ (k, n) when the pixel axis (the larger
    of k and n) is cut into blocks of any size in PIXEL_BLOCKS."""
    import numpy as np

    rng = np.random.default_rng(0)
    pixels_in_k = k > n
    pixels = k if pixels_in_k else n
    best = float("inf")
    for block in PIXEL_BLOCKS:
        b = min(block or pixels, pixels)
        a = rng.standard_normal((m, b if pixels_in_k else k), dtype=np.float32)
        c = rng.standard_normal((b, n) if pixels_in_k else (k, b), dtype=np.float32)
        a @ c
        one = min(_timed(a, c) for _ in range(repeats))
        best = min(best, one * pixels / b)
    return best


def _timed(a, b):
    """Seconds of one a @ b."""
    start = time.perf_counter()
    a @ b
    return time.perf_counter() - start


def gemm_floor(net, repeats=3):
    """(seconds, FLOPs, threads): the net's conv GEMMs at the best one-thread
    rate of this BLAS, divided by its thread count (perfect scaling): no engine
    built on this BLAS can do the step's conv GEMMs faster."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threads = max([1] + [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"])
    shapes = conv_gemm_shapes(net)
    with threadpool_limits(1, user_api="blas"):
        seconds = sum(best_gemm_seconds(m, k, n, repeats) for m, k, n in shapes)
    flops = sum(2 * m * k * n for m, k, n in shapes)
    return seconds / threads, flops, threads


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", default="22", choices=list(NETS))   # nets only: a step with SGD
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    net = NETS[args.net]
    mine = phases_minirect(net, args.device, args.steps)
    try:
        ref = phases_torch(net, args.device, args.steps)
    except ImportError:
        ref = None
    print(f"net {args.net}, device {args.device}: median ms per phase (synchronized)")
    print(f"{'phase':10s} {'minirect':>9s} {'torch':>9s}")
    for phase in ("forward", "backward", "sgd"):
        other = f"{ref[phase] * 1e3:9.2f}" if ref else "        -"
        print(f"{phase:10s} {mine[phase] * 1e3:9.2f} {other}")
    if args.device == "cpu":
        seconds, flops, threads = gemm_floor(net)
        step = sum(mine.values())
        print(f"\nGEMM floor: the conv GEMMs alone take {seconds * 1e3:.1f} ms at this BLAS's "
              f"best one-thread rate × {threads} threads ({flops / seconds / 1e9:.0f} GFLOP/s); "
              f"minirect's step {step * 1e3:.1f} ms = {step / seconds:.2f}x the floor")
        if ref:
            theirs = sum(ref.values())
            print(f"PyTorch's whole step {theirs * 1e3:.1f} ms ({flops / theirs / 1e9:.0f} GFLOP/s "
                  f"of conv work): the floor alone is {seconds / theirs:.2f}x PyTorch's step")
    floor = launch_floor(args.device)
    print(f"\nlaunch floor: {floor * 1e6:.1f} µs per tiny elementwise op")
    print("\nper op type (synchronized around every op), ms per step and calls per step:")
    ops = per_op(net, args.device, args.steps)
    for name, (seconds, calls) in sorted(ops.items(), key=lambda kv: -kv[1][0]):
        print(f"  {name:32s} {seconds * 1e3:8.2f} ms  {calls:4d} calls")


if __name__ == "__main__":
    main()
