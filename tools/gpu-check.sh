#!/usr/bin/env bash
# Runs on a GPU machine, from the repository root: unpacks the archive that tools/gpu-bundle.sh
# made, runs the whole test suite, compute-sanitizer (memcheck over the CUDA tests, racecheck
# over the reduction kernels), a short training run of the demo model on the GPU and the
# benchmarks (with PyTorch's side where it is installed), and writes each log to LOG_DIR.
# Usage: tools/gpu-check.sh [BUNDLE_DIR] [LOG_DIR]
set -uo pipefail
bundle=${1:-gpu-bundle}
logs=${2:-gpu-logs}
mkdir -p "$logs" /tmp/basin-gpu
tar -C /tmp/basin-gpu -xzf "$bundle/bundle.tar.gz"
export LD_LIBRARY_PATH=/tmp/basin-gpu/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
bin=/tmp/basin-gpu/bin
status=0
shards=${BASIN_GPU_SHARDS:-8}

# Where this checkout or the tools sit elsewhere than in the build that made the bundle, link the
# compiled-in paths to them.
source_dir=$(sed -n 's/^source_dir=//p' /tmp/basin-gpu/paths.env)
tools_dir=$(sed -n 's/^tools_dir=//p' /tmp/basin-gpu/paths.env)
if [ -n "$source_dir" ] && [ ! -e "$source_dir" ]; then
  mkdir -p "$(dirname "$source_dir")" && ln -s "$PWD" "$source_dir"
fi
if [ -n "$tools_dir" ] && [ ! -e "$tools_dir" ]; then
  mkdir -p "$(dirname "$tools_dir")" && ln -s "$bin" "$tools_dir"
fi

# Runs the test binary split into $shards processes at once (gtest sharding), each command
# prefixed by "$@"; the shards' logs are joined into $log. Fails when any shard fails.
sharded() {
  local log=$1 filter=$2
  shift 2
  local pids=() rc=0
  for ((i = 0; i < shards; i++)); do
    GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE \
      "$@" "$bin/basin_tests" --gtest_brief=1 --gtest_filter="$filter" >"$log.$i" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  cat "$log".* >"$log" && rm -f "$log".*
  return $rc
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$logs/gpu.txt" 2>&1
echo "== tests"
sharded "$logs/tests.log" '*' || status=1
grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$logs/tests.log" | awk '{n[$2]+=$4} END {for (k in n) print k, n[k]}'
grep -E '^\[  FAILED  \] [A-Za-z]' "$logs/tests.log" | sort -u
if command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck (Cuda*)"
  sharded "$logs/memcheck.log" 'Cuda*' compute-sanitizer --tool memcheck --error-exitcode 1 || status=1
  grep -E 'ERROR SUMMARY|PASSED' "$logs/memcheck.log"
  echo "== compute-sanitizer racecheck (reductions, softmax, norm, energy kernels)"
  sharded "$logs/racecheck.log" 'CudaParityReduce*:CudaParitySoftmax*:CudaParityNorm*:CudaParityEnergyKernels*' \
    compute-sanitizer --tool racecheck --error-exitcode 1 || status=1
  grep -E 'HAZARD|ERROR SUMMARY|PASSED' "$logs/racecheck.log"
fi
if [ -x "$bin/basin-train" ]; then
  echo "== training the demo model on the GPU (100 steps)"
  rm -rf /tmp/basin-gpu/et_demo
  "$bin/basin-train" --config configs/et_demo.toml --device cuda --set train.steps=100 \
    --out /tmp/basin-gpu/et_demo >"$logs/train.log" 2>&1 || status=1
  tail -4 "$logs/train.log"
fi
if [ -x "$bin/basin-bench" ]; then
  echo "== benchmarks"
  "$bin/basin-bench" list | grep -i cuda | while read -r name; do "$bin/basin-bench" "$name"; done \
    | tee "$logs/bench.jsonl"
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    python3 tools/bench/torch_cuda.py | tee "$logs/bench_torch.json"
    python3 tools/bench/torch_et_cuda.py | tee "$logs/bench_torch_et.json"
  fi
fi
exit $status
