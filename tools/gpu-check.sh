#!/usr/bin/env bash
# Runs on a GPU machine, from the repository root: unpacks the archive that tools/gpu-bundle.sh
# made, runs the whole test suite, compute-sanitizer (memcheck over the CUDA tests, racecheck
# over the reduction kernels) and the benchmarks, and writes each log to LOG_DIR.
# Usage: tools/gpu-check.sh [BUNDLE_DIR] [LOG_DIR]
set -uo pipefail
bundle=${1:-gpu-bundle}
logs=${2:-gpu-logs}
mkdir -p "$logs" /tmp/basin-gpu
tar -C /tmp/basin-gpu -xzf "$bundle/bundle.tar.gz"
export LD_LIBRARY_PATH=/tmp/basin-gpu/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
bin=/tmp/basin-gpu/bin
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$logs/gpu.txt" 2>&1
echo "== tests"
"$bin/basin_tests" --gtest_brief=1 >"$logs/tests.log" 2>&1 || status=1
tail -4 "$logs/tests.log"
if command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck (Cuda*)"
  compute-sanitizer --tool memcheck --error-exitcode 1 "$bin/basin_tests" --gtest_brief=1 \
    --gtest_filter='Cuda*' >"$logs/memcheck.log" 2>&1 || status=1
  tail -2 "$logs/memcheck.log"
  echo "== compute-sanitizer racecheck (reductions, softmax, norm)"
  compute-sanitizer --tool racecheck --error-exitcode 1 "$bin/basin_tests" --gtest_brief=1 \
    --gtest_filter='CudaParityReduce*:CudaParitySoftmax*:CudaParityNorm*' >"$logs/racecheck.log" 2>&1 || status=1
  tail -2 "$logs/racecheck.log"
fi
if [ -x "$bin/basin-bench" ]; then
  echo "== benchmarks"
  "$bin/basin-bench" list | grep -i cuda | while read -r name; do "$bin/basin-bench" "$name"; done \
    | tee "$logs/bench.jsonl"
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    python3 tools/bench/torch_cuda.py | tee "$logs/bench_torch.json"
  fi
fi
exit $status
