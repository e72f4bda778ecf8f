#!/usr/bin/env bash
# Everything we check on a GPU machine, in one bounded run (CuPy and PyTorch preinstalled there).
# Usage: OUT=/some/dir bash benchmarks/run_gpu.sh   (MNIST files under $GPU_DATA/mnist for the last step)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
nvidia-smi -L; python -c "import cupy, torch, numpy; print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)"
echo "== test suite (CuPy cases included) =="
timeout 140 python -m pytest -q -m "not slow" -p no:cacheprovider tests > "$OUT/pytest.log" 2>&1; echo "pytest rc=$?"; tail -4 "$OUT/pytest.log"
echo "== parity, host copies, step time =="
timeout 50 python benchmarks/gpu_checks.py 2>&1 | tee "$OUT/gpu_checks.log"
echo "== training steps vs PyTorch CUDA =="
timeout 80 python benchmarks/bench_step.py --device cuda --steps 10 --warmup 3 --json "$OUT/bench_step_gpu.json" 2>&1 | tee "$OUT/bench_step_gpu.log"
echo "== conv vs PyTorch CUDA =="
timeout 30 python benchmarks/bench_conv.py --device cuda 2>&1 | tee "$OUT/bench_conv_gpu.log"
if [ -d "${GPU_DATA:-.gpu_data}/mnist" ]; then
  echo "== reproduce fig3 --full on the GPU (1 seed, 1 epoch) =="
  MINIRECT_DATA=${GPU_DATA:-.gpu_data} timeout 60 python -m minirect reproduce fig3 --full --device cuda \
    --seeds 0 --epochs 1 --out "$OUT/fig3_full" --quiet 2>&1 | tail -6
fi
