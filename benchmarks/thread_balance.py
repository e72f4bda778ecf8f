"""How a CPU training step uses its cores: threaded passes, their waits, and the one-core rest.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \\
        python benchmarks/thread_balance.py --net 22

Builds bench_step.py's net and times its steps (fast paths on), watching
``accel.threads.run_parallel``, through which every threaded pass runs (the
shifted-window convolutions, the banded GEMMs). Per step it prints:

* ``threaded``: the wall time inside run_parallel calls, and in it
  ``work / cores`` (the shares' summed time divided by the cores: the time with
  perfect balance), ``imbalance`` (from the first share's end to the last's:
  one core waits) and ``dispatch`` (the call's wall time beyond its longest
  share: handing the shares to the pool and collecting them);
* ``one core``: the rest of the step, where one core works and the others
  wait, split by autograd Function (each op's time minus the threaded passes
  inside it) plus ``other`` (the engine's own Python, the optimizer).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time

import bench_step
from profile_step import function_methods


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--net", default="22", choices=sorted(bench_step.NETS))
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()

    from minirect.accel import threads
    from minirect.train import training_step

    calls = []                      # per run_parallel call: (wall, [share seconds], imbalance)
    real_run = threads.run_parallel

    def watched_run(tasks):
        ends, spans = [0.0] * len(tasks), [0.0] * len(tasks)

        def timed(i, task):
            def share():
                start = time.perf_counter()
                try:
                    return task()
                finally:
                    ends[i] = time.perf_counter()
                    spans[i] = ends[i] - start
            return share
        start = time.perf_counter()
        result = real_run([timed(i, t) for i, t in enumerate(tasks)])
        calls.append((time.perf_counter() - start, spans, max(ends) - min(ends)))
        return result

    per_op = collections.defaultdict(float)

    def timed_method(name, method):
        def wrapper(self, *a, **k):
            before, start = len(calls), time.perf_counter()
            out = method(self, *a, **k)
            inside = sum(wall for wall, _, _ in calls[before:])
            per_op[f"{type(self).__name__}.{name}"] += time.perf_counter() - start - inside
            return out
        return wrapper

    model, opt, x, y = bench_step.build_minirect(bench_step.NETS[args.net], "cpu")
    step = training_step(model, opt)
    threads.run_parallel = watched_run
    patched = function_methods()
    for cls, name, method in patched:
        setattr(cls, name, timed_method(name, method))
    rows = []
    try:
        for i in range(args.steps + 2):
            calls.clear()
            per_op.clear()
            start = time.perf_counter()
            step(x, y)
            wall = time.perf_counter() - start
            if i >= 2:                                   # two warm-up steps
                rows.append(summarize(wall, calls, dict(per_op), threads.workers()))
    finally:
        threads.run_parallel = real_run
        for cls, name, method in patched:
            setattr(cls, name, method)
    report(args, rows, threads.workers())


def summarize(wall, calls, per_op, cores):
    threaded = sum(c[0] for c in calls)
    row = {"step": wall, "threaded": threaded,
           "work / cores": sum(sum(c[1]) for c in calls) / cores,
           "imbalance": sum(c[2] for c in calls),
           "dispatch": sum(c[0] - max(c[1]) for c in calls),
           "one core": wall - threaded, "calls": len(calls)}
    row.update({f"  {name}": t for name, t in per_op.items()})
    row["  other"] = wall - threaded - sum(per_op.values())
    return row


def report(args, rows, cores):
    print(f"net {args.net}, {cores} cores: median ms per step over {len(rows)} steps "
          f"({rows[0]['calls']} threaded calls per step)")
    names = [k for k in rows[0] if k != "calls"]
    ordered = names[:6] + sorted(names[6:-1], key=lambda k: -rows[0][k]) + names[-1:]
    for name in ordered:
        values = [r.get(name, 0.0) * 1e3 for r in rows]
        print(f"  {name:28s} {statistics.median(values):8.1f}   (range {min(values):.1f}-{max(values):.1f})")


if __name__ == "__main__":
    main()
