#!/usr/bin/env bash
# Everything we check on a GPU machine, in one bounded run (CuPy and PyTorch preinstalled there).
# Usage: OUT=/some/dir bash benchmarks/run_gpu.sh   (MNIST files under $GPU_DATA/mnist for the last step)
# Each step has its own timeout; together they keep the run under 8 minutes.
# PROFILE=1 adds the per-phase profile of the 22-layer step (about 45 s more).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
nvidia-smi -L; python -c "import cupy, torch, numpy; print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)"
echo "== the CuPy cases of the test suite =="
timeout 150 python -m pytest -q -m gpu -p no:cacheprovider tests > "$OUT/pytest.log" 2>&1; echo "pytest rc=$?"
grep -E "^(FAILED|ERROR)" "$OUT/pytest.log" | head -20; tail -2 "$OUT/pytest.log"
echo "== parity, host copies, graph replay =="
timeout 45 python benchmarks/gpu_checks.py 2>&1 | tee "$OUT/gpu_checks.log"
echo "== training steps vs PyTorch CUDA (TF32 off), eager and replayed from a CUDA graph =="
timeout 170 python benchmarks/bench_step.py --device cuda --graph --nets 22 30 cifar --steps 30 \
  --warmup 10 --rounds 2 --json "$OUT/bench_step_gpu.json" 2>&1 | tee "$OUT/bench_step_gpu.log"
if [ -n "$PROFILE" ]; then
  echo "== where the 22-layer step's time goes (TF32 off) =="
  timeout 60 python benchmarks/profile_step.py --device cuda 2>&1 | tee "$OUT/profile_22.log"
fi
if [ -d "${GPU_DATA:-.gpu_data}/mnist" ]; then
  echo "== reproduce ${FIGURE:-fig3} --full --cuda-graph on the GPU (seed 0, ${REPRO_EPOCHS:-2} epochs) =="
  MINIRECT_DATA=${GPU_DATA:-.gpu_data} timeout "${REPRO_TIMEOUT:-90}" python -m minirect reproduce \
    "${FIGURE:-fig3}" --full --device cuda --cuda-graph --seeds 0 --epochs "${REPRO_EPOCHS:-2}" \
    --workers 2 --out "$OUT/${FIGURE:-fig3}_full" --quiet 2>&1 | tail -8
  echo "reproduce rc=${PIPESTATUS[0]}"
  find "$OUT"/*_full -type f ! -name summary.txt -delete   # the device tool returns 8 files at most
fi
echo "== conv vs PyTorch CUDA =="
timeout 30 python benchmarks/bench_conv.py --device cuda 2>&1 | tee "$OUT/bench_conv_gpu.log"
