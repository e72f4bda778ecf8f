#!/usr/bin/env bash
# Everything we check on a GPU machine, in one bounded run (CuPy and PyTorch preinstalled there).
# Usage: OUT=/some/dir bash benchmarks/run_gpu.sh   (MNIST files under $GPU_DATA/mnist for the last step)
# Each step has its own timeout; together they keep the run under 10 minutes.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
nvidia-smi -L; python -c "import cupy, torch, numpy; print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)"
echo "== test suite (CuPy cases included) =="
timeout 150 python -m pytest -q -m "not slow" -p no:cacheprovider tests > "$OUT/pytest.log" 2>&1; echo "pytest rc=$?"; tail -4 "$OUT/pytest.log"
echo "== parity, host copies, step time =="
timeout 50 python benchmarks/gpu_checks.py 2>&1 | tee "$OUT/gpu_checks.log"
echo "== training steps vs PyTorch CUDA =="
timeout 120 python benchmarks/bench_step.py --device cuda --steps 30 --warmup 10 --rounds 2 --json "$OUT/bench_step_gpu.json" 2>&1 | tee "$OUT/bench_step_gpu.log"
echo "== where the 22-layer step's time goes (TF32 off) =="
timeout 60 python benchmarks/profile_step.py --device cuda 2>&1 | tee "$OUT/profile_22.log"
echo "== conv vs PyTorch CUDA =="
timeout 30 python benchmarks/bench_conv.py --device cuda 2>&1 | tee "$OUT/bench_conv_gpu.log"
if [ -d "${GPU_DATA:-.gpu_data}/mnist" ]; then
  echo "== reproduce ${FIGURE:-fig3} --full on the GPU (seed 0, two runs at once) =="
  MINIRECT_DATA=${GPU_DATA:-.gpu_data} timeout "${REPRO_TIMEOUT:-180}" python -m minirect reproduce \
    "${FIGURE:-fig3}" --full --device cuda --seeds 0 --workers 2 --out "$OUT/${FIGURE:-fig3}_full" \
    --quiet 2>&1 | tail -8
  echo "reproduce rc=${PIPESTATUS[0]}"
  rm -f "$OUT"/*_full/runs/*/checkpoint.npz      # keep the histories, not the weights
fi
