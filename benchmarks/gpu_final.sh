#!/usr/bin/env bash
# One device call for a short lease: the GPU tests of the engine, trust and memory guard,
# the fidelity table against triton's do_bench/do_bench_cudagraph, and the headline sweep.
# Each part has its own time cap so one slow part cannot take the others' results with it.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
part() { local name=$1 cap=$2; shift 2; echo "== $name (cap ${cap}s): $*" | tee -a "$OUT/final.log"
  local t0=$(date +%s); timeout "$cap" "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err"; local rc=$?
  echo "== $name rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$OUT/final.log"; tail -n 30 "$OUT/$name.txt"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.csv" 2>&1
part pytest_gpu 240 python -m pytest -m gpu -q -p no:cacheprovider -rs tests/gpu/test_trust_gpu.py \
  tests/gpu/test_memory_guard_gpu.py tests/gpu/test_engine_gpu.py
part fidelity 200 python benchmarks/fidelity.py --shapes 4x1024,2x4096,1x16384 --dtype bf16 --rounds 2 \
  --backends standard,sdpa,sdpa-flash,sdpa-efficient,sdpa-cudnn,flex,fa4 --out "$OUT/fidelity.md"
part bench_kernel 100 python -m flashtui bench --batch 1 --heads 16 --seq 512,2048,8192,16384 --dtype bf16 \
  --head-dim 128 --no-journal --out "$OUT/bench_kernel.json"
exit 0
