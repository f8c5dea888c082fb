#!/usr/bin/env bash
# The TUI screenshots for docs/ on the GPU: a kernel sweep, a GPT-2 prefill sweep and a
# short-sequence sweep (launch-bound: the py-spy tab's view). Usage on the device:
#   OUT=/tmp/g bash benchmarks/tui_gpu_shots.sh [kernel] [prefill] [short]
# WATCH_S=N (default 0: off) also py-spy dumps the worker and the UI process and writes
# the app's stall report every N s, to find where a run stops updating; the dumps pause
# the worker, so leave it off for screenshots whose numbers are shown.
set -uo pipefail
OUT=${OUT:-gpu-out}; WATCH_S=${WATCH_S:-0}; LIMIT_S=${LIMIT_S:-240}
mkdir -p "$OUT/watch"
shot() {  # name, then tui_screenshot.py flags
  local name=$1; shift
  timeout -k 5 "$((LIMIT_S + 90))" python benchmarks/tui_screenshot.py --out "$OUT/$name" --timeout-s "$LIMIT_S" \
    --stall-report-s "$WATCH_S" "$@" > "$OUT/watch/$name.out" 2> "$OUT/watch/$name.err" &
  local ui=$! t=0
  while [ "$WATCH_S" != 0 ] && kill -0 "$ui" 2>/dev/null; do
    sleep "$WATCH_S"; t=$((t + WATCH_S))
    local w py; w=$(pgrep -f "flashtui.worker" | head -1); py=$(pgrep -P "$ui" | head -1)
    { echo "=== +${t}s ui=${py:-none} worker=${w:-none}"
      nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader
      [ -n "$w" ] && py-spy dump --pid "$w" 2>&1 | head -60
      echo "--- ui"; [ -n "$py" ] && py-spy dump --pid "$py" 2>&1 | head -80; } >> "$OUT/watch/$name.dump" 2>&1
  done
  wait "$ui"; echo "$name rc=$?" | tee -a "$OUT/watch/summary.txt"
  grep "tui_screenshot" "$OUT/watch/$name.err" | tail -4
}
for part in ${*:-kernel prefill short}; do case $part in
  kernel) shot kernel --mode kernel --seq 512,2048,8192 --dtype bf16 --heads 16 --head-dim 128 --batch 1 ;;
  prefill) shot prefill --mode prefill --model gpt2 --seq 512,1024 --batch 4 --dtype bf16 --no-pyspy ;;
  short) shot short --mode kernel --seq 128,256,512 --dtype bf16 --heads 16 --head-dim 64 --batch 1 \
           --backends standard,sdpa-flash,sdpa-cudnn,fa4 ;;
esac; done
