#!/usr/bin/env bash
# Issue 15's variant runs in one device call (run by `bash benchmarks/gpu_suite.sh variants`):
# sliding window, soft-capping, packed documents, padding, decode (contiguous and paged) and
# a Mistral-7B-shaped model with its own 4096-token window. Every table goes to
# $OUT/variants.txt (with the command and wall seconds), stderr to $OUT/variants.err, the
# session JSONs into one $OUT/variants-sessions.tar.gz (the device returns at most 8 files).
set -uo pipefail
OUT=${OUT:-gpu-out}
json="$OUT/variants_json"
mkdir -p "$json"
log="$OUT/variants.txt"
KERNEL="--batch 1 --heads 16 --head-dim 128 --dtype bf16 --reps 10 --no-journal --monitor-hz 0"
DECODE="--batch 8 --heads 32 --kv-heads 8 --head-dim 128 --dtype bf16 --q-len 1 --reps 20 --no-journal --monitor-hz 0"
# VARIANTS="decode mistral_window" runs only those (default: every run below).
bench() { local name=$1; shift; local t0=$(date +%s)
  case " ${VARIANTS:-$name} " in *" $name "*) ;; *) return 0 ;; esac
  echo "== $name: python -m flashtui bench $*" | tee -a "$log"
  # Each run has its own cap (BENCH_CAP_S, default 150 s), so one slow run cannot take the rest.
  timeout -k 5 "${BENCH_CAP_S:-150}" python -m flashtui bench "$@" --out "$json/$name.json" \
    >> "$log" 2>> "$OUT/variants.err"
  echo "== $name rc=$? $(( $(date +%s) - t0 ))s" | tee -a "$log"; tail -n 3 "$OUT/variants.err"; }
bench window $KERNEL --seq 32768 --window 4096 --backends standard,sdpa,sdpa-flash,sdpa-efficient,flex,fa4
bench softcap $KERNEL --seq 8192 --softcap 50 --backends standard,sdpa,flex,fa4
bench docs $KERNEL --seq 16384 --docs 8 --backends standard,sdpa,sdpa-efficient,flex,fa4
bench pad --batch 8 --heads 16 --head-dim 128 --dtype bf16 --reps 10 --no-journal --monitor-hz 0 \
  --seq 4096 --pad 0.3 --backends standard,sdpa,sdpa-efficient,flex,fa4
bench decode $DECODE --seq 4096,32768,131072 --backends standard,sdpa,sdpa-flash,sdpa-efficient,sdpa-cudnn,flex,fa4
bench decode_paged $DECODE --seq 4096,32768,131072 --page-size 256 --backends fa4
bench mistral_window --mode prefill --model mistral-7b-v0.1 --seq 8192 --batch 1 --dtype bf16 --reps 5 \
  --no-journal --monitor-hz 0 --backends standard,sdpa,flex,fa4
tar czf "$OUT/variants-sessions.tar.gz" -C "$OUT" variants_json
