"""Training-step benchmark: minirect against PyTorch on the same net and batch.

A step is forward + backward + SGD update. Nets (all 3×3 convs, "same" padding,
ReLU, 2×2 max pooling between stages, fc 256-256-classes):

* ``22``    batch 64, 1×28×28: conv1 + 6/6/6 convs at 28/14/7, widths 32/64/64
* ``30``    batch 64, 1×28×28: conv1 + 9/9/8 convs, same widths
* ``cifar`` batch 128, 3×32×32: the 22-layer layout at 32/16/8

and one layer, so that a single command prints the whole table:

* ``conv``  batch 64, 64→64 channels, 32×32, 3×3, padding 1: forward +
  backward (dx, dW, db) of one conv layer, no optimizer; a line below its
  rows gives the machine's GEMM rate and each framework's share of it.
  bench_conv.py times other layer shapes, column-block sizes and the GPU.

Each framework runs in its own subprocess so that peak memory (the growth of
the process's max RSS from just before the first step, i.e. beyond the model
and the batch) is measured separately. Prints median time per step, images/s, peak memory and
the ratios minirect / PyTorch.

A shared machine's speed drifts over minutes, so the two frameworks are
measured in alternating order for ``--rounds`` rounds; the table shows the
median over rounds, and the ratio's median and range over the rounds (each
round's ratio compares two measurements taken one right after the other).

    python benchmarks/bench_step.py                 # all nets, CPU
    python benchmarks/bench_step.py --nets 22 --device cuda
    python benchmarks/bench_step.py --reference     # + row 'reference': fast paths off

The row ``minirect`` runs with minirect's fast paths (the default); the row
``reference`` runs the same step with ``MINIRECT_FAST_PATHS=0``, i.e. only
the plain code of the teaching files (im2col + GEMM, SGD in array ops).

The row ``dezero`` (the ``22`` net, CPU, when ``pip install dezero`` is
present; otherwise skipped with a message) runs the same step in DeZero
0.0.13, the from-scratch framework of *Deep Learning from Scratch 3*: its
im2col conv, max pooling, MomentumSGD with a WeightDecay hook. DeZero does
not import under NumPy 2 (it names ``np.int``, removed in NumPy 1.24);
``import_dezero`` puts the old aliases back on numpy for this process only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

NETS = {
    "22": dict(batch=64, channels=1, size=28, stages=(6, 6, 6), widths=(32, 32, 64, 64)),
    "30": dict(batch=64, channels=1, size=28, stages=(9, 9, 8), widths=(32, 32, 64, 64)),
    "cifar": dict(batch=128, channels=3, size=32, stages=(6, 6, 6), widths=(32, 32, 64, 64)),
}
LAYERS = {"conv": dict(batch=64, channels=64, size=32, out_channels=64)}
BENCHMARKS = {**LAYERS, **NETS}


def layer_plan(net):
    """[("conv", c_in, c_out) | ("pool",) ...] then fc sizes; shared by both frameworks."""
    plan, c = [("conv", net["channels"], net["widths"][0])], net["widths"][0]
    size = net["size"]
    for s, (count, width) in enumerate(zip(net["stages"], net["widths"][1:])):
        if s > 0:
            plan.append(("pool",))
            size //= 2
        for _ in range(count):
            plan.append(("conv", c, width))
            c = width
    return plan, c * size * size


def peak_rss_mb():
    """Peak resident memory of this process, MB.

    Linux's VmHWM starts afresh with each program. ru_maxrss does not: it is
    inherited across fork and exec, so a child started by a parent that had
    imported PyTorch would report the parent's peak and no growth at all
    (the bug this replaced). ru_maxrss is only the fallback off Linux.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024          # kB
    except OSError:
        pass
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024    # bytes there, kB elsewhere


def build_minirect(net, device):
    """(model, optimizer, x, y) of ``net`` in minirect, seeded, on ``device``."""
    import numpy as np

    import minirect as mr
    from minirect import nn, optim

    mr.seed(0)
    plan, flat = layer_plan(net)
    layers = []
    for item in plan:
        layers += [nn.Conv2d(item[1], item[2], 3, padding=1), nn.ReLU()] if item[0] == "conv" \
            else [nn.MaxPool2d(2)]
    layers += [nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
               nn.Linear(256, 10)]
    model = nn.Sequential(*layers).to(device)
    opt = optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    x = mr.tensor(rng.standard_normal((net["batch"], net["channels"], net["size"], net["size"]),
                                      dtype=np.float32)).to(device)
    y = mr.tensor(rng.integers(0, 10, net["batch"])).to(device)
    return model, opt, x, y


def build_torch(net, device):
    """(model, optimizer, x, y) of ``net`` in PyTorch, the same layers and recipe."""
    import torch

    torch.manual_seed(0)
    plan, flat = layer_plan(net)
    layers = []
    for item in plan:
        layers += [torch.nn.Conv2d(item[1], item[2], 3, padding=1), torch.nn.ReLU()] \
            if item[0] == "conv" else [torch.nn.MaxPool2d(2)]
    layers += [torch.nn.Flatten(), torch.nn.Linear(flat, 256), torch.nn.ReLU(),
               torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)]
    model = torch.nn.Sequential(*layers).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(net["batch"], net["channels"], net["size"], net["size"], device=device)
    y = torch.randint(0, 10, (net["batch"],), device=device)
    return model, opt, x, y


def import_dezero():
    """DeZero, importable under NumPy 2: the aliases it uses (``np.int`` in a
    default argument, evaluated at import) are set back on numpy first, to
    the builtins they always meant. Nothing else of DeZero is changed."""
    import numpy as np
    for alias, meaning in (("int", int), ("float", float), ("bool", bool), ("object", object)):
        if alias not in np.__dict__:
            setattr(np, alias, meaning)
    import dezero
    return dezero


def dezero_in_float32(dezero):
    """Python floats in DeZero's arithmetic (``gy * (1/N)`` in its loss)
    become 0-d arrays; NumPy 1 let a 0-d float64 array keep a float32
    operand float32, NumPy 2 (NEP 50) makes the result float64, and every
    gradient after it. So Python floats become float32 0-d arrays here."""
    import numpy as np
    as_array = dezero.core.as_array

    def as_array_float32(x, array_module=np):
        return array_module.array(x, dtype=np.float32) if isinstance(x, float) \
            else as_array(x, array_module)

    dezero.core.as_array = as_array_float32


def build_dezero(net):
    """(model, optimizer, x, y) of ``net`` in DeZero, the same layers and recipe.

    float32 where DeZero allows: Python floats in its arithmetic become
    float32 (``dezero_in_float32``); its initializers multiply float32 weights by a
    NumPy float64 scalar (float64 under NumPy 2's rules), so the parameters
    are cast back; labels are int16, because its loss subtracts a one-hot
    array of the labels' dtype from the float32 softmax (int16 keeps it
    float32, int64 would give float64).
    """
    import numpy as np
    dezero = import_dezero()
    import dezero.functions as F
    import dezero.layers as L
    dezero_in_float32(dezero)

    np.random.seed(0)
    plan, flat = layer_plan(net)

    class Net(dezero.Model):
        def __init__(self):
            super().__init__()
            self.convs = []
            for i, item in enumerate(plan):
                if item[0] == "conv":
                    conv = L.Conv2d(item[2], 3, stride=1, pad=1, in_channels=item[1])
                    setattr(self, f"conv{i}", conv)
                    self.convs.append(conv)
            self.fc1, self.fc2 = L.Linear(256, in_size=flat), L.Linear(256, in_size=256)
            self.fc3 = L.Linear(10, in_size=256)

        def forward(self, x):
            convs = iter(self.convs)
            for item in plan:
                x = F.relu(next(convs)(x)) if item[0] == "conv" else F.pooling(x, 2, 2)
            x = F.reshape(x, (x.shape[0], -1))
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    model = Net()
    for p in model.params():
        p.data = p.data.astype(np.float32)
    opt = dezero.optimizers.MomentumSGD(lr=0.001, momentum=0.9).setup(model)
    opt.add_hook(dezero.optimizers.WeightDecay(5e-4))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((net["batch"], net["channels"], net["size"], net["size"]),
                           dtype=np.float32)
    y = rng.integers(0, 10, net["batch"]).astype(np.int16)
    return model, opt, x, y


def run_dezero(net, steps, warmup):
    import_dezero()
    import dezero.functions as F

    model, opt, x, y = build_dezero(net)
    dtypes = set()

    def step():
        loss = F.softmax_cross_entropy(model(x), y)
        model.cleargrads()
        loss.backward()
        opt.update()
        dtypes.update(str(p.grad.data.dtype) for p in model.params())

    result = _time(step, steps, warmup, "cpu")
    result["dtypes"] = sorted(dtypes | {str(p.data.dtype) for p in model.params()})
    return result


def dezero_available():
    import importlib.util
    return importlib.util.find_spec("dezero") is not None


def layer_inputs(spec, rng):
    """x (N, C, H, W) and the output gradient gy (N, D, H, W) of a LAYERS entry, float32."""
    import numpy as np
    n, c, d, size = spec["batch"], spec["channels"], spec["out_channels"], spec["size"]
    return (rng.standard_normal((n, c, size, size), dtype=np.float32),
            rng.standard_normal((n, d, size, size), dtype=np.float32))


def layer_flops(spec):
    """Flops of forward + backward: three GEMMs of 2·N·D·H·W·C·3·3 each."""
    return 3 * 2 * spec["batch"] * spec["out_channels"] * spec["size"] ** 2 * spec["channels"] * 9


def torch_synchronize(device):
    if device == "cuda":
        import torch
        torch.cuda.synchronize()


def run_minirect(net, device, steps, warmup, graph=False):
    import minirect as mr
    from minirect.accel.captured_step import CapturedStep
    from minirect.train import training_step

    if "out_channels" in net:
        return _run_minirect_layer(net, device, steps, warmup)
    model, opt, x, y = build_minirect(net, device)
    train_step = training_step(model, opt)          # forward, loss, backward, SGD update
    if graph:                                       # the same step, replayed from a CUDA graph
        train_step = CapturedStep(train_step, model, opt)

    def step():
        train_step(x, y)
        mr.backend.synchronize()

    def graph_pool_bytes():          # the recorded graph's memory is in its own pool
        recorder = getattr(train_step, "recorder", None)
        return recorder.pool.total_bytes() if recorder is not None else 0

    return _time(step, steps, warmup, device, extra_gpu_bytes=graph_pool_bytes)


def _run_minirect_layer(spec, device, steps, warmup):
    import numpy as np

    import minirect as mr
    from minirect import nn

    mr.seed(0)
    layer = nn.Conv2d(spec["channels"], spec["out_channels"], 3, padding=1).to(device)
    x_np, gy_np = layer_inputs(spec, np.random.default_rng(0))
    x = mr.tensor(x_np, device=device, requires_grad=True)
    gy = mr.tensor(gy_np, device=device)

    def step():
        layer.zero_grad()
        x.zero_grad()
        layer(x).backward(gy)
        mr.backend.synchronize()

    from bench_conv import gemm_gflops
    result = _time(step, steps, warmup, device)
    result["gemm_gflops"] = gemm_gflops(device, reps=5)      # same process, same threads
    return result


def _run_torch_layer(spec, device, steps, warmup):
    import numpy as np
    import torch

    layer = torch.nn.Conv2d(spec["channels"], spec["out_channels"], 3, padding=1).to(device)
    x_np, gy_np = layer_inputs(spec, np.random.default_rng(0))
    x = torch.from_numpy(x_np).to(device).requires_grad_()
    gy = torch.from_numpy(gy_np).to(device)

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).backward(gy)
        torch_synchronize(device)

    return _time(step, steps, warmup, device, torch_cuda=device == "cuda")


def run_torch(net, device, steps, warmup):
    import torch

    if "out_channels" in net:
        return _run_torch_layer(net, device, steps, warmup)
    model, opt, x, y = build_torch(net, device)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        torch_synchronize(device)

    return _time(step, steps, warmup, device, torch_cuda=device == "cuda")


def _time(step, steps, warmup, device, torch_cuda=False, extra_gpu_bytes=lambda: 0):
    base = peak_rss_mb()          # model and batch exist; the steps' own memory comes on top
    for _ in range(warmup):
        step()
    gpu_peak = None
    if device == "cuda" and torch_cuda:
        import torch
        torch.cuda.reset_peak_memory_stats()
    elif device == "cuda":
        import cupy
        pool = cupy.get_default_memory_pool()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    if device == "cuda" and torch_cuda:
        # Reserved, not allocated: like CuPy's pool.total_bytes() below, it
        # counts the memory the caching allocator holds, freed blocks included.
        import torch
        gpu_peak = torch.cuda.max_memory_reserved() / 2**20
    elif device == "cuda":
        gpu_peak = (pool.total_bytes() + extra_gpu_bytes()) / 2**20
    return {"median_s": statistics.median(times), "min_s": min(times),
            "peak_rss_growth_mb": peak_rss_mb() - base, "peak_rss_mb": peak_rss_mb(),
            "gpu_mb": gpu_peak}


def child(args):
    net = BENCHMARKS[args.net]
    if args.framework == "torch":
        import torch
        from bench_conv import torch_true_float32
        torch.set_num_threads(args.threads)
        torch_true_float32()
        result = run_torch(net, args.device, args.steps, args.warmup)
    elif args.framework == "dezero":
        result = run_dezero(net, args.steps, args.warmup)
    else:       # "minirect", "reference" (fast paths off: see measure) or "graph"
        result = run_minirect(net, args.device, args.steps, args.warmup,
                              graph=args.framework == "graph")
    result["images_per_s"] = net["batch"] / result["median_s"]
    print("RESULT " + json.dumps(result))


def measure(framework, net, device, steps, warmup, threads):
    cmd = [sys.executable, __file__, "--child", framework, "--net", net, "--device", device,
           "--steps", str(steps), "--warmup", str(warmup), "--threads", str(threads)]
    # Both frameworks get the same number of threads: PyTorch through
    # set_num_threads in the child, NumPy's BLAS through these variables
    # (read when the library loads).
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env["MINIRECT_FAST_PATHS"] = "0" if framework == "reference" else "1"
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{framework} {net} failed:\n{out.stderr[-2000:]}")


def _combine(results, batch, key):
    """One row from several rounds: median of the rounds' median times, and
    the largest memory measurement."""
    median_s = statistics.median(r["median_s"] for r in results)
    return {"median_s": median_s, "min_s": min(r["min_s"] for r in results),
            "images_per_s": batch / median_s, key: max((r[key] or 0) for r in results)}


def torch_available():
    """Whether PyTorch is installed, without importing it here (the children
    import it; this process stays small)."""
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", nargs="+", default=list(BENCHMARKS), choices=list(BENCHMARKS),
                   help="what to time (default: all): the conv layer and the three nets")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int,
                   default=int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count())),
                   help="CPU threads for both frameworks (default: $OPENBLAS_NUM_THREADS if set, "
                        "else all cores). With 1 the ratio does not depend on how the machine "
                        "shares its cores")
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating minirect/PyTorch measurements per net (default 3)")
    p.add_argument("--graph", action="store_true",
                   help="on cuda: also time minirect's step replayed from a CUDA graph "
                        "(row 'graph'; minirect.accel.captured_step)")
    p.add_argument("--reference", action="store_true",
                   help="also time minirect with its fast paths off (row 'reference', "
                        "MINIRECT_FAST_PATHS=0): the plain code of the teaching files")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--no-dezero", action="store_true",
                   help="skip the DeZero row (22-layer net, CPU; run when dezero is installed)")
    p.add_argument("--child", choices=["minirect", "reference", "graph", "dezero", "torch"],
                   help=argparse.SUPPRESS)
    p.add_argument("--net", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.framework = args.child
        return child(args)
    rows = []
    have_torch = torch_available()
    print(f"device {args.device}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"torch {'present' if have_torch else 'absent'}")
    header = (f"{'net':>6} {'framework':>9} {'median ms':>10} {'img/s':>8} {'peak MB':>8} "
              f"{'ratio':>6} {'ratio range':>12} {'mem ratio':>9}")
    print(header)
    key = "gpu_mb" if args.device == "cuda" else "peak_rss_growth_mb"
    for net in args.nets:
        frameworks = ["minirect"]
        if args.reference:
            frameworks.append("reference")
        if args.graph and args.device == "cuda" and net in NETS:
            frameworks.append("graph")
        if net == "22" and args.device == "cpu" and not args.no_dezero:
            if dezero_available():
                frameworks.append("dezero")
            else:
                print("  (no DeZero row: pip install dezero to add one)")
        if have_torch:
            frameworks.append("torch")
        rounds = {name: [] for name in frameworks}
        for r in range(args.rounds):
            for name in (frameworks if r % 2 == 0 else frameworks[::-1]):
                rounds[name].append(measure(name, net, args.device, args.steps, args.warmup,
                                            args.threads))
        combined = {name: _combine(results, BENCHMARKS[net]["batch"], key)
                    for name, results in rounds.items()}
        if net in LAYERS:           # the share of the machine's GEMM rate, printed below the rows
            gemm = max(r["gemm_gflops"] for r in rounds["minirect"])
            for r in combined.values():
                r["gflops"] = layer_flops(LAYERS[net]) / r["median_s"] / 1e9
                r["gemm_share"] = r["gflops"] / gemm
        ref = combined.get("torch")
        ratios = {name: [m["median_s"] / t["median_s"] for m, t in zip(rounds[name], rounds["torch"])]
                  for name in combined if name != "torch" and ref}
        for name, r in combined.items():
            line = (f"{net:>6} {name:>9} {r['median_s'] * 1e3:>10.1f} {r['images_per_s']:>8.0f} "
                    f"{(r[key] or 0):>8.1f} ")
            if name in ratios:
                mem_ratio = (r[key] or 0) / max(ref[key] or 1e-9, 1e-9)
                spread = f"{min(ratios[name]):.2f}-{max(ratios[name]):.2f}"
                line += f"{statistics.median(ratios[name]):>6.2f} {spread:>12} {mem_ratio:>9.2f}"
            print(line)
        if net in LAYERS:
            print(f"{'':>6} GEMM rate (float32 2048x2048 matmul) {gemm:.0f} GFLOP/s; the layer: "
                  + ", ".join(f"{name} {r['gflops']:.0f} GFLOP/s ({100 * r['gemm_share']:.0f}%)"
                              for name, r in combined.items()))
        rows.append({"net": net, "device": args.device, **combined, "ratios": ratios,
                     "rounds": rounds})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
