#!/usr/bin/env bash
# The GPU check for a short lease (~4 min), most needed first; each part has its own time
# cap and writes under $OUT as it goes, so a call cut short keeps what finished.
#   source .device/base/env.sh && bash benchmarks/gpu_short.sh [PART...]
# PARTS (default: fidelity_1024 workers distributed quick pytest_gpu):
#   fidelity_1024 workers distributed quick pytest_gpu dispatch_tests first_use profile_bench
#   variants_tests variants shots fidelity flex_dynamic flex_tests warmup_ab
# 1. fidelity at the launch-bound shape (B=4 S=1024) against do_bench/do_bench_cudagraph,
#    after the graph-sizing change (issue 13); 2. --gpus all / --workers 2 and torchrun on
#    the one GPU (issue 18); 3. quick answers (issue 14): doctor cold/repeat, first cell,
#    default bench cold/warm; 4. the doctor's GPU tests and NVML's clocks-event reasons.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
# The device tool brings back only a few files from $OUT: everything is written to WORK
# and packed into one $OUT/short.tar.gz after every part (a call cut short keeps the rest).
WORK=${WORK:-/tmp/flashtui-short}; mkdir -p "$WORK"
pack() { tar czf "$OUT/short.tar.gz" -C "$WORK" . 2>/dev/null; }
part() { local name=$1 cap=$2; shift 2; echo "== $name (cap ${cap}s): $*" | tee -a "$WORK/short.log"
  ( while sleep 15; do pack; done ) & local packer=$!  # a long part is packed as it goes
  local t0=$(date +%s); timeout "$cap" "$@" > "$WORK/$name.txt" 2> "$WORK/$name.err"; local rc=$?
  kill "$packer" 2>/dev/null; wait "$packer" 2>/dev/null
  echo "== $name rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$WORK/short.log"; tail -n 25 "$WORK/$name.txt"; pack; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,power.draw --format=csv > "$WORK/nvidia-smi.csv" 2>&1
# The TUI shots (issue 16): the acceptance sweep at 160x50, redrawn at 80x24 from the same app.
SHOT="--mode kernel --seq 1024,2048,4096,8192,16384,32768 --dtype bf16 --batch 1 --heads 16 --head-dim 128"
for p in ${*:-fidelity_1024 workers distributed quick pytest_gpu}; do case $p in
  fidelity_1024) part fidelity_1024 60 python benchmarks/fidelity.py --shapes 4x1024 --dtype bf16 --rounds 1 \
    --backends standard,sdpa-flash,sdpa-cudnn,fa4 --out "$WORK/fidelity_1024.md" ;;
  fidelity) part fidelity 240 python benchmarks/fidelity.py --shapes 4x1024,2x4096,1x16384 --dtype bf16 \
    --out "$WORK/fidelity.md" ;;
  workers) part workers 70 env OUT="$WORK" bash benchmarks/gpu_suite.sh workers ;;
  distributed) part distributed 40 env OUT="$WORK" bash benchmarks/gpu_suite.sh distributed ;;
  quick) part quick ${QUICK_CAP:-330} python benchmarks/quick.py --out "$WORK" --parts "${QUICK_PARTS:-doctor,first_cell,bench}" ${QUICK_FLAGS:-} ;;
  pytest_gpu) part pytest_gpu 90 python -m pytest -m gpu -q -p no:cacheprovider -rs tests/gpu/test_doctor_gpu.py \
    "tests/gpu/test_monitor_gpu.py::test_sampler_at_20hz_fills_memory_readings" ;;
  dispatch_tests) part dispatch_tests 150 python -m pytest -m gpu -q -p no:cacheprovider -rs \
    tests/gpu/test_dispatch_gpu.py "tests/gpu/test_engine_gpu.py::test_every_backend_names_its_kernels" \
    "tests/gpu/test_engine_gpu.py::test_planted_dispatch_mismatch_is_flagged" ;;
  first_use) part first_use 200 python benchmarks/first_use.py --out "$WORK" ;;
  profile_bench) part profile_bench 150 env FLASHTUI_CACHE_DIR=/tmp/flashtui-profile bash -c \
    "python -m flashtui bench --no-journal --quiet > /dev/null 2>&1; python -m flashtui bench --no-journal --phases \
     --profile $WORK/bench_warm.speedscope.json" ;;
  variants_tests) part variants_tests 150 python -m pytest -m gpu -q -p no:cacheprovider -rs \
    tests/gpu/test_variants_gpu.py ;;
  variants) part variants_run ${VARIANTS_CAP:-420} env OUT="$WORK" bash benchmarks/variants.sh ;;
  shots) part shots ${SHOTS_CAP:-300} python benchmarks/tui_screenshot.py $SHOT --no-pyspy --no-journal \
    --timeout-s $(( ${SHOTS_CAP:-300} - 40 )) --out "$WORK/shots" --size 160x50 --also-size 80x24 ;;
  flex_dynamic) part flex_dynamic 150 python benchmarks/flex_dynamic.py --out "$WORK"
    part flex_dynamic_bwd 120 python benchmarks/flex_dynamic.py --out "$WORK" --backward --seq 1024,4096,16384 ;;
  warmup_ab) part warmup_ab ${WARMUP_AB_CAP:-240} python benchmarks/warmup_ab.py --out "$WORK" --rounds ${WARMUP_AB_ROUNDS:-3} ;;
  flex_tests) part flex_tests 120 python -m pytest -m gpu -q -p no:cacheprovider -rs tests/gpu/test_flex_gpu.py ;;
  *) echo "unknown part $p" ;;
esac; done
exit 0
