"""conv2d benchmark: minirect against PyTorch, forward + backward, same machine.

Default layer: batch 64, 64 → 64 channels, 32×32, 3×3 kernel, padding 1,
float32 (a middle layer of the paper's nets on CIFAR-sized input). Prints the
median time of forward+backward (dx, dW, db) over several repetitions after a
warmup (the two frameworks take turns), the ratio minirect / PyTorch, the
machine's float32 GEMM rate (one big matmul), and the rate the convolution
achieves: fwd+bwd does 3× the forward's 2·N·D·OH·OW·C·kh·kw flops (forward,
dW and dx are one GEMM each).

    python benchmarks/bench_conv.py                  # CPU: NumPy vs torch CPU
    python benchmarks/bench_conv.py --device cuda    # CuPy vs torch CUDA
    python benchmarks/bench_conv.py --batch 128 --channels 32 --size 16

On the CPU, PyTorch gets as many threads as NumPy's BLAS uses (threadpoolctl
tells; otherwise the number of CPUs), so that both sides use the same cores.
On the CPU each timed step starts after a 0.3 s rest (REST_S): both
frameworks share this process, and OpenBLAS's idle threads spin for ~0.1 s
after each call, slowing whatever runs next. bench_step.py --nets conv times
the same layer with each framework in its own process. On a shared machine,
run it twice: medians resist, but do not cure, noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import minirect as mr
import minirect.functional as F
from minirect import backend
from minirect.accel import shifted_windows


def torch_true_float32():
    """Turn TF32 off in PyTorch. On NVIDIA GPUs PyTorch convolves float32
    with TF32 tensor cores by default (10-bit mantissas); minirect computes
    in true float32, so the comparison needs PyTorch to do the same."""
    import torch
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return max(counts)
    except ImportError:
        pass
    return os.cpu_count() or 1


# Seconds of rest before each timed step. After a call, OpenBLAS's worker
# threads keep spinning for about 0.1 s waiting for more work, and on a
# 2-core machine they take the cores from whatever runs next: a PyTorch conv
# step timed right after a NumPy GEMM took 1.5x as long (164-175 ms against
# 110-115 ms). Both frameworks share this process, so each step starts after
# the other's threads have gone to sleep. Not on a GPU: there a pause would
# let the clocks drop before a 1-2 ms step.
REST_S = 0.3


def median_times(steps: dict, sync, reps: int, warmup: int, rest_s: float = 0.0) -> dict:
    """Median seconds of each step; the steps take turns, so that a load that
    comes and goes on a shared machine hits all of them alike. ``rest_s``:
    a pause before each timed step (REST_S on the CPU)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    sync()
    times = {name: [] for name in steps}
    for _ in range(reps):
        for name, step in steps.items():
            time.sleep(rest_s)
            start = time.perf_counter()
            step()
            sync()               # GPU work is asynchronous: wait before reading the clock
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def gemm_gflops(device: str, reps: int, n: int = 2048) -> float:
    """Float32 rate of one big square matmul on minirect's backend."""
    xp = backend.module_for(device)
    a = xp.asarray(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    seconds = median_times({"gemm": lambda: a @ a}, lambda: backend.synchronize(xp), reps, 2)
    return 2 * n**3 / seconds["gemm"] / 1e9


def minirect_step(args, x_host, w_host, b_host, gy_host):
    x = mr.tensor(x_host, requires_grad=True).to(args.device)
    w = mr.tensor(w_host, requires_grad=True).to(args.device)
    b = mr.tensor(b_host, requires_grad=True).to(args.device)
    gy = mr.tensor(gy_host).to(args.device)

    def step():
        x.grad = w.grad = b.grad = None
        F.conv2d(x, w, b, stride=args.stride, padding=args.padding).backward(gy)
    return step


def torch_step(args, x_host, w_host, b_host, gy_host):
    """The same step in PyTorch, or None when torch (or its CUDA) is missing."""
    try:
        import torch
    except ImportError:
        return None
    if args.device == "cuda" and not torch.cuda.is_available():
        return None
    device = "cuda" if args.device == "cuda" else "cpu"
    torch_true_float32()          # TF32 off: minirect computes in true float32
    x = torch.tensor(x_host, device=device, requires_grad=True)
    w = torch.tensor(w_host, device=device, requires_grad=True)
    b = torch.tensor(b_host, device=device, requires_grad=True)
    gy = torch.tensor(gy_host, device=device)

    def step():
        x.grad = w.grad = b.grad = None
        torch.nn.functional.conv2d(x, w, b, stride=args.stride, padding=args.padding).backward(gy)
    return step


def synchronize(device: str):
    """Wait for both frameworks' queued GPU work (no-op on the CPU)."""
    if device != "cuda":
        return
    backend.synchronize(backend.module_for("cuda"))
    try:
        import torch
        torch.cuda.synchronize()
    except (ImportError, RuntimeError, AssertionError):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", type=int, default=64, help="input channels")
    parser.add_argument("--out-channels", type=int, default=None, help="default: --channels")
    parser.add_argument("--size", type=int, default=32, help="height = width")
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--padding", type=int, default=1)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--block-mb", type=float, default=None,
                        help="override minirect's column-block budget (CPU_BLOCK_BYTES or "
                             "GPU_BLOCK_BYTES in minirect/accel/shifted_windows.py), in MiB")
    args = parser.parse_args(argv)
    if args.block_mb is not None:
        name = "GPU_BLOCK_BYTES" if args.device == "cuda" else "CPU_BLOCK_BYTES"
        setattr(shifted_windows, name, int(args.block_mb * 2**20))

    N, C, S, k = args.batch, args.channels, args.size, args.kernel
    D = args.out_channels or C
    OH = (S + 2 * args.padding - k) // args.stride + 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, S, S), dtype=np.float32)
    w = rng.standard_normal((D, C, k, k), dtype=np.float32) * np.float32((2 / (C * k * k)) ** 0.5)
    b = np.zeros(D, dtype=np.float32)
    gy = rng.standard_normal((N, D, OH, OH), dtype=np.float32)

    threads = blas_threads()
    try:
        import torch
        if args.device == "cpu":
            torch.set_num_threads(threads)
        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch_info = "torch not installed"
    print(f"conv2d fwd+bwd: batch {N}, {C}->{D} channels, {S}x{S}, {k}x{k}, stride {args.stride}, "
          f"padding {args.padding}, float32, device {args.device}")
    block = shifted_windows.GPU_BLOCK_BYTES if args.device == "cuda" else shifted_windows.CPU_BLOCK_BYTES
    print(f"numpy {np.__version__} ({threads} BLAS threads); {torch_info}; "
          f"minirect column blocks of {block / 2**20:g} MiB")

    gemm = gemm_gflops(args.device, args.reps)
    flops = 3 * 2 * N * D * OH * OH * C * k * k
    steps = {"minirect": minirect_step(args, x, w, b, gy)}
    step = torch_step(args, x, w, b, gy)
    if step is not None:
        steps["torch"] = step
    medians = median_times(steps, lambda: synchronize(args.device), args.reps, args.warmup,
                           rest_s=REST_S if args.device == "cpu" else 0.0)
    t_mr, t_torch = medians["minirect"], medians.get("torch")

    def rate(seconds):
        return flops / seconds / 1e9

    print(f"GEMM rate (float32 2048x2048 matmul): {gemm:8.1f} GFLOP/s")
    print(f"minirect: {t_mr * 1e3:8.1f} ms median  {rate(t_mr):7.1f} GFLOP/s "
          f"({100 * rate(t_mr) / gemm:.0f}% of GEMM rate)")
    if t_torch is None:
        print("PyTorch:  not available on this device")
    else:
        print(f"PyTorch:  {t_torch * 1e3:8.1f} ms median  {rate(t_torch):7.1f} GFLOP/s "
              f"({100 * rate(t_torch) / gemm:.0f}% of GEMM rate)")
        print(f"ratio minirect / PyTorch: {t_mr / t_torch:.2f}")


if __name__ == "__main__":
    main()
