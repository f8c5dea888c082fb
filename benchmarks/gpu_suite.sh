#!/usr/bin/env bash
# The whole GPU check in one device call: acceptance sweeps, fidelity, pytest -m gpu.
# Usage on the device (after `source .device/base/env.sh`):  bash benchmarks/gpu_suite.sh [PART...]
# Writes tables and logs under $OUT (default ./gpu-out).
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
parts=${*:-"kernel fidelity tests"}
run() { local name=$1; shift; echo "== $name: $*" | tee -a "$OUT/suite.log"; local t0=$(date +%s)
  "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err"; local rc=$?
  echo "== $name rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$OUT/suite.log"; tail -n 40 "$OUT/$name.txt"; }
# timed NAME CMD...: wall seconds of a whole command (launch to exit) into $OUT/walls.txt.
timed() { local name=$1; shift; local t0=$(date +%s.%N)
  "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err"; local rc=$?
  local wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
  echo "$name rc=$rc wall_s=$wall: $*" | tee -a "$OUT/walls.txt" "$OUT/suite.log"; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,power.draw --format=csv > "$OUT/nvidia-smi.csv" 2>&1
for part in $parts; do case $part in
  kernel) run bench_kernel python -m flashtui bench --batch 1 --heads 16 --seq 512,2048,8192,16384 --dtype bf16 \
            --head-dim 128 --out "$OUT/bench_kernel.json" ;;
  kernel-fp16) run bench_kernel_fp16 python -m flashtui bench --batch 32 --heads 12 --seq 512 --dtype fp16 --head-dim 64 \
            --out "$OUT/bench_kernel_fp16.json" ;;
  backward) run bench_backward python -m flashtui bench --batch 1 --heads 16 --seq 1024,4096 --dtype bf16 --head-dim 128 \
            --backward --backends standard,sdpa-flash,sdpa-efficient,sdpa-cudnn,fa4 --out "$OUT/bench_backward.json" ;;
  fidelity) run fidelity python benchmarks/fidelity.py --shapes 4x1024,2x4096,1x16384 --dtype bf16 --out "$OUT/fidelity.md" ;;
  profile) run bench_profile python -m flashtui bench --batch 1 --heads 16 --seq 128,256,512 --dtype bf16 --head-dim 64 \
            --backends standard,sdpa-flash,sdpa-cudnn,fa4 --profile "$OUT/short_seq.speedscope.json" --out "$OUT/bench_profile.json" ;;
  ready) run ready python -c "import json,time; from flashtui.client.worker_client import WorkerClient; t=time.monotonic(); c=WorkerClient(); r=c.start(); w=time.monotonic()-t; c.close(); print(json.dumps({'ready_wall_s': w, 'ready_s': r.ready_s, 'breakdown_s': r.ready_breakdown_s}, indent=1))" ;;
  walls) timed doctor_1 python -m flashtui doctor --json --quiet; timed doctor_2 python -m flashtui doctor --json --quiet
         timed bench_default_1 python -m flashtui bench --out "$OUT/bench_default_1.json"
         timed bench_default_2 python -m flashtui bench --out "$OUT/bench_default_2.json" ;;
  quick) run quick python benchmarks/quick.py --out "$OUT" ;;  # issue 14: doctor cold/repeat, first cell, default bench cold/warm
  tests) run pytest_gpu python -m pytest -m gpu -q -p no:cacheprovider -rs tests/gpu tests/faults/test_gpu_faults.py ;;
  tests-engine) run pytest_gpu_engine python -m pytest -m gpu -q -p no:cacheprovider -rs tests/gpu/test_engine_gpu.py tests/gpu/test_monitor_gpu.py ;;
  tests-models) run pytest_gpu_models python -m pytest -m gpu -q -s -p no:cacheprovider -rs tests/gpu/test_models_gpu.py ;;
  tests-doctor) run pytest_gpu_doctor python -m pytest -m gpu -q -s -p no:cacheprovider -rs tests/gpu/test_doctor_gpu.py ;;
  tests-faults) run pytest_gpu_faults python -m pytest -m gpu -q -s -p no:cacheprovider -rs tests/faults/test_gpu_faults.py ;;
  gpt2) run bench_gpt2 python -m flashtui bench --mode prefill --model gpt2 --seq 512,1024,2048 --batch 4 \
            --dtype fp16,bf16 --out "$OUT/bench_gpt2.json" ;;
  gpt2-decode) run bench_gpt2_decode python -m flashtui bench --mode decode --model gpt2 --seq 512 --batch 4 \
            --dtype bf16 --new-tokens 32 --backends standard,sdpa-math,sdpa-flash,sdpa-efficient,sdpa-cudnn,fa4 \
            --out "$OUT/bench_gpt2_decode.json" ;;
  seed) run bench_seed python -m flashtui bench --mode prefill --model gpt2 --seq 512 --batch 4 --dtype fp32,fp16 \
            --backends standard,sdpa-math,sdpa-flash,sdpa-efficient --out "$OUT/bench_seed.json" ;;
  llama8b) run bench_llama8b python -m flashtui bench --mode prefill --model llama-3-8b --seq 4096 --batch 1 \
            --dtype bf16 --reps 10 --out "$OUT/bench_llama8b.json" ;;
  doctor) run doctor python -m flashtui doctor --json --quiet ; run doctor_text python -m flashtui doctor --quiet ;;
  variants) bash benchmarks/variants.sh ;;  # issue 15: tables in variants.txt, sessions in one tar.gz
  tests-variants) run pytest_gpu_variants python -m pytest -m gpu -q -p no:cacheprovider -rs tests/gpu/test_variants_gpu.py ;;
  capacity) run capacity python -m flashtui doctor --capacity --backends standard,sdpa-flash,sdpa-cudnn,fa4 \
            --batch 1 --heads 16 --head-dim 128 --dtype bf16 --max-seq 1048576 ;;
  # issue 18: the NCCL path under torchrun (DIST_NPROC GPUs, default 1); dist_check fails unless
  # every cell is ok, recorded once, by a rank on cpu:gloo,cuda:nccl with its CUDA device index.
  distributed) run bench_distributed python -m torch.distributed.run --standalone --nproc-per-node "${DIST_NPROC:-1}" \
            -m flashtui bench --distributed --batch 1 --heads 16 --head-dim 128 --seq 1024,4096 --dtype bf16 \
            --backends standard,sdpa-flash,sdpa-cudnn --out "$OUT/bench_distributed.json"
         run dist_check python -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cells']; \
bad=[x['backend'] for x in c if x['status']!='ok' or x['extra'].get('dist_backend')!='cpu:gloo,cuda:nccl' or x['extra'].get('device_index') is None]; \
keys=[(x['backend'],x['seq'],x['dtype']) for x in c]; print(json.dumps([(x['backend'],x['seq'],x['extra'].get('rank'),x['extra'].get('device_index')) for x in c])); \
sys.exit('not ok or not on NCCL/cuda:N: %s' % bad if bad else 'a cell twice' if len(set(keys))!=len(keys) else 0)" "$OUT/bench_distributed.json" ;;
  workers) W="--batch 1 --heads 16 --head-dim 128 --seq 1024,2048 --backends standard,sdpa-flash --dtype bf16 --no-journal"
         timed workers_plain python -m flashtui bench $W --out "$OUT/workers_plain.json"
         timed workers_gpus python -m flashtui bench $W --gpus all --out "$OUT/workers_gpus.json"
         timed workers_2 python -m flashtui bench $W --workers 2 --out "$OUT/workers_2.json"
         timed workers_bad python -m flashtui bench $W --gpus 99 --quiet
         run workers_compare python benchmarks/workers_compare.py "$OUT/workers_plain.json" \
           "$OUT/workers_gpus.json" "$OUT/workers_2.json" "$OUT/workers_bad.err" ;;  # issue 18
  *) [ -f "benchmarks/$part" ] && run "${part%.*}" python "benchmarks/$part" ;;
esac; done
exit 0
