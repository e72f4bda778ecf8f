"""Before/after of one fast path: a training step with and without it, alternating.

    python benchmarks/ab_fast_path.py relu --net 22
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \\
        python benchmarks/ab_fast_path.py relu --net cifar --rounds 5

Builds bench_step.py's net once and times its step (forward, loss, backward,
SGD) in rounds that alternate between all fast paths on ("with") and all on
but the named one ("without"), so that a drifting machine shifts both alike.
Prints the median ms of each and the ratio without / with per round; a
ratio above 1 means the path pays. The path is left out by taking it off the
core's registry (``backend.FAST_PATHS``) for the "without" rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import bench_step


def time_steps(step, steps: int) -> float:
    """Median seconds of ``steps`` calls of ``step``."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", help="the fast path's name, e.g. relu, conv2d, max_pool2d")
    parser.add_argument("--net", default="22", choices=sorted(bench_step.NETS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()

    import minirect as mr
    from minirect import accel, backend
    from minirect.train import training_step

    if args.path not in backend.FAST_PATHS:
        parser.error(f"no fast path {args.path!r}; registered: {', '.join(sorted(backend.FAST_PATHS))}")
    model, opt, x, y = bench_step.build_minirect(bench_step.NETS[args.net], "cpu")
    step = training_step(model, opt)
    registered = backend.FAST_PATHS[args.path]
    results = {"with": [], "without": []}
    with mr.fast_paths(True):
        for _ in range(2):                                   # warm-up, both ways
            step(x, y)
        for _ in range(args.rounds):
            for case in ("without", "with"):
                if case == "without":
                    del backend.FAST_PATHS[args.path]
                try:
                    results[case].append(time_steps(lambda: step(x, y), args.steps))
                finally:
                    backend.FAST_PATHS[args.path] = registered
    ratios = [a / b for a, b in zip(results["without"], results["with"])]
    print(f"net {args.net}, fast path {args.path!r}: {args.rounds} rounds of {args.steps} steps")
    for case in ("without", "with"):
        print(f"  {case:8s} {1e3 * statistics.median(results[case]):8.1f} ms per step (median)")
    print(f"  without / with: {statistics.median(ratios):.3f} "
          f"(rounds {min(ratios):.3f}-{max(ratios):.3f})")
    print(" ", accel.report())


if __name__ == "__main__":
    main()
