#!/usr/bin/env bash
# Issue 17's faults, tried as a user would, on the CPU: one block per fault, printing what
# the user saw (exit code, stderr's flashtui lines, seconds) and what reached the disk.
# Usage (root, for the tmpfs mounts):  bash benchmarks/nothing_lost.sh [WORKDIR]
# Every run uses its own data dir under WORKDIR (default: a fresh mktemp -d).
set -u
W=${1:-$(mktemp -d)}
mkdir -p "$W"
export FLASHTUI_FALLBACK_DIRS="$W/fallback"
T=(--device cpu --heads 2 --head-dim 32 --reps 3 --warmup-ms 0 --monitor-hz 0 --seq 64,128 --backends standard,sdpa-math)
ft() { python -m flashtui "$@"; }
try() {  # try NAME DATA_DIR ARGS...: run, report rc, seconds, the flashtui: lines of stderr
  local name=$1 data=$2; shift 2
  local t0=$(date +%s.%N)
  FLASHTUI_DATA_DIR="$data" ft "$@" > "$W/$name.out" 2> "$W/$name.err"; local rc=$?
  local t1=$(date +%s.%N)
  printf '== %s: rc=%s %.1fs\n' "$name" "$rc" "$(echo "$t1 - $t0" | bc)"
  grep -h '^flashtui: ' "$W/$name.err" | cut -c1-240
  grep -c . "$W/$name.out" | sed 's/^/   stdout lines: /'
}
sessions() { FLASHTUI_DATA_DIR="$1" ft sessions --all | cut -c1-150; }

echo "# output paths (checked before the worker starts)"
echo old > "$W/real.json"; ln -sf real.json "$W/link.json"; mkfifo "$W/fifo" 2>/dev/null; mkdir -p "$W/dir"
try out-link "$W/d1" bench "${T[@]}" --quiet --out "$W/link.json"
echo "   link still a link: $(test -L "$W/link.json" && echo yes || echo NO); target holds cells: $(python -c "import json;print(len(json.load(open('$W/real.json'))['cells']))")"
for target in "$W/fifo" /dev/full "$W/dir" /sys/x.json /proc/version; do
  try "out-$(basename "$target")" "$W/d2" bench "${T[@]}" --quiet --out "$target"
done
echo "   fifo still a fifo: $(test -p "$W/fifo" && echo yes || echo NO); /dev/full still a device: $(test -c /dev/full && echo yes || echo NO)"

echo "# --out on a disk that is full when the sweep ends"
mkdir -p "$W/full" && mount -t tmpfs -o size=16k tmpfs "$W/full" && { head -c 16k /dev/zero > "$W/full/filler" 2>/dev/null; true; }
try out-full "$W/d3" bench "${T[@]}" --quiet --out "$W/full/s.json"
echo "   table rows printed: $(grep -c -E '^(standard|sdpa-math) ' "$W/out-full.out")"; sessions "$W/d3"
umount -l "$W/full"

echo "# numeric flags"
try timeout-0 "$W/d4" bench "${T[@]}" --cell-timeout 0
try timeout-low "$W/d4" bench "${T[@]}" --cell-timeout 1 --warmup-ms 500
try seed-x "$W/d4" bench "${T[@]}" --seed x

echo "# memory guard: --seq 65536 on this box, then under ulimit -v 4 GiB"
try seq65536 "$W/d5" bench --device cpu --seq 65536 --backends standard,sdpa-math --monitor-hz 0 --json
python - "$W/seq65536.out" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["cells"]:
    print(f"   {c['backend']}: {c['status']} in {c['duration_s']:.3f} s: {c['reason']}")
PY
( ulimit -v 4194304; try ulimit "$W/d5" bench --device cpu --seq 16384 --heads 2 --head-dim 32 --reps 2 --warmup-ms 0 \
    --no-parity --monitor-hz 0 --backends standard,sdpa-flash --json )
python - "$W/ulimit.out" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["cells"]:
    print(f"   {c['backend']}: {c['status']} in {c['duration_s']:.3f} s: {c['reason'] or ('%.1f ms' % c['median_ms'])}")
PY

echo "# a model that fails to load"
mkdir -p "$W/broken" && echo '{ not json' > "$W/broken/config.json"
try model-broken "$W/d6" bench --device cpu --mode prefill --model "$W/broken" --seq 64 --quiet
echo "   sessions: $(FLASHTUI_DATA_DIR="$W/d6" ft sessions | head -1 | cut -c1-80)"

echo "# the data dir's disk fills up mid-sweep (tmpfs filled after the first cell)"
mkdir -p "$W/d7" && mount -t tmpfs -o size=256k tmpfs "$W/d7"
( FLASHTUI_DATA_DIR="$W/d7" ft bench "${T[@]}" --seq 64,128,256 --warmup-ms 300 --quiet > "$W/midfull.out" 2> "$W/midfull.err"; echo "   rc=$?" ) &
until ls "$W"/d7/sessions/*.jsonl >/dev/null 2>&1; do sleep 0.05; done
head -c 300k /dev/zero > "$W/d7/filler" 2>/dev/null; wait
grep -h '^flashtui: ' "$W/midfull.err" | cut -c1-260
echo "   table rows printed: $(grep -c -E '^(standard|sdpa-math) ' "$W/midfull.out")"
echo "   fallback: $(sessions_in() { python -c "
import sys; from flashtui.store.journal import read_journal
for p in sys.argv[1:]:
    c = read_journal(p); print(p.rsplit('/',1)[-1], c.session.status, len(c.session.cells), 'cells')" "$@"; }; sessions_in "$W"/fallback/*.jsonl)"
umount -l "$W/d7"; rm -f "$W"/fallback/*.jsonl

echo "# a read-only data dir"
mkdir -p "$W/d8" && mount -t tmpfs -o ro tmpfs "$W/d8"
try ro-data "$W/d8" bench "${T[@]}" --quiet
echo "   table rows printed: $(grep -c -E '^(standard|sdpa-math) ' "$W/ro-data.out")"
umount -l "$W/d8"

echo "# two benches at once on one store"
( FLASHTUI_DATA_DIR="$W/d9" ft bench "${T[@]}" --warmup-ms 300 --quiet > "$W/a.out" 2> "$W/a.err"; echo "   a rc=$?" ) &
until ls "$W"/d9/sessions/.live/*.json >/dev/null 2>&1; do sleep 0.05; done
FLASHTUI_DATA_DIR="$W/d9" ft bench "${T[@]}" --warmup-ms 300 --quiet > "$W/b.out" 2> "$W/b.err"; echo "   b rc=$?"; wait
grep -h '^flashtui: ' "$W/a.err" "$W/b.err" | cut -c1-220; sessions "$W/d9"
echo "   files left in the store besides journals: $(find "$W/d9/sessions" -type f ! -name '*.jsonl' | wc -l)"
