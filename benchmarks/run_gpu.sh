#!/usr/bin/env bash
# Everything we check on a GPU machine, in one call of at most 10 minutes (CuPy and PyTorch
# preinstalled there). Usage: OUT=/some/dir bash benchmarks/run_gpu.sh
#
#  1. the CuPy cases of the test suite, fast paths on and off: off, the reference path runs
#     on array_api_compat's CuPy namespace (docs/gpu.md, "The array API")   (at most 150 s)
#  2. gpu_checks.py: parity, host copies, replay     (45 s)
#  3. bench_step.py on cuda: eager, CUDA graph, PyTorch (TF32 off)   (170 s)
#  4. bench_conv.py on cuda                          (30 s)
#  5. last, in the time left before DEADLINE (default 570 s after the start): the --full
#     GPU reproductions of issue 16 item 5, each with --resume in runs/gpu/ (ignored by git,
#     so a warm machine keeps it between calls: calling the script again continues them)
#     and its summary.txt copied to $OUT/<name>/ once written.
#
# MNIST: $MINIRECT_DATA, else shared/datasets (the checkout's), else $GPU_DATA or .gpu_data.
# SKIP_TESTS=1 / SKIP_BENCH=1 leave out steps 1 / 3-4 (to give the reproductions the time).
# PROFILE=1 adds the per-phase profile of the 22-layer step (about 45 s more).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
START=$SECONDS
DEADLINE=${DEADLINE:-570}
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
left() { echo $(( DEADLINE - (SECONDS - START) )); }
nvidia-smi -L; python -c "import cupy, torch, numpy; print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)"
if [ -z "$SKIP_TESTS" ]; then
  echo "== the CuPy cases of the test suite =="
  timeout 150 python -m pytest -q -m gpu -p no:cacheprovider tests > "$OUT/pytest.log" 2>&1; echo "pytest rc=$?"
  grep -E "^(FAILED|ERROR)" "$OUT/pytest.log" | head -20; tail -2 "$OUT/pytest.log"
fi
echo "== parity, host copies, graph replay =="
timeout 45 python benchmarks/gpu_checks.py 2>&1 | tee "$OUT/gpu_checks.log"
if [ -z "$SKIP_BENCH" ]; then
  echo "== training steps vs PyTorch CUDA (TF32 off), eager and replayed from a CUDA graph =="
  timeout 170 python benchmarks/bench_step.py --device cuda --graph --nets 22 30 cifar --steps 30 \
    --warmup 10 --rounds 2 --json "$OUT/bench_step_gpu.json" 2>&1 | tee "$OUT/bench_step_gpu.log"
  echo "== conv vs PyTorch CUDA =="
  timeout 30 python benchmarks/bench_conv.py --device cuda 2>&1 | tee "$OUT/bench_conv_gpu.log"
fi
if [ -n "$PROFILE" ]; then
  echo "== where the 22-layer step's time goes (TF32 off) =="
  timeout 60 python benchmarks/profile_step.py --device cuda 2>&1 | tee "$OUT/profile_22.log"
fi

# The reproductions: CUDA graphs are the default on cuda; --cuda-graph says so explicitly.
if [ -z "$MINIRECT_DATA" ]; then
  for d in shared/datasets ../shared/datasets "${GPU_DATA:-.gpu_data}"; do
    if [ -d "$d/mnist" ]; then export MINIRECT_DATA=$d; break; fi
  done
fi
if [ -z "$MINIRECT_DATA" ]; then
  echo "no MNIST found (shared/datasets/mnist, \$GPU_DATA/mnist): reproductions skipped"; exit 0
fi
reproduce() {   # name, then the arguments of `minirect reproduce`
  local name=$1; shift
  local limit; limit=$(left)
  if [ "$limit" -lt 20 ]; then echo "== $name: no time left (call the script again to continue) =="; return; fi
  echo "== reproduce $name ($* ), at most ${limit}s, resumable in runs/gpu/$name =="
  mkdir -p runs/gpu
  timeout "$limit" python -m minirect reproduce "$@" --device cuda --cuda-graph --seeds 0 1 2 \
    --resume --out "runs/gpu/$name" --quiet 2>&1 | tail -12
  echo "reproduce $name rc=${PIPESTATUS[0]} (124: stopped by the time limit; run again to resume)"
  if [ -f "runs/gpu/$name/summary.txt" ]; then
    mkdir -p "$OUT/$name"; cp "runs/gpu/$name/summary.txt" "$OUT/$name/"
  fi
}
reproduce fig2-full fig2 --full
reproduce fig3-full fig3 --full
reproduce fig3-full-xavier-3x fig3 --full --inits xavier --epochs 12
echo "run_gpu.sh: $(( SECONDS - START ))s"
