"""The adaptive warm-up against the fixed one, on the same cells (issue 14's "same quality").

    python benchmarks/warmup_ab.py --out DIR [--rounds 3] [--seq 512,1024] [--backends ...]

Runs ``flashtui bench`` alternately with ``--warmup-ms 25`` (at least 25 ms, then on until
two bursts agree, at most 100 ms: the default) and ``--warmup-ms 100`` (a floor at the cap: a
fixed 100 ms, the old default), ``--rounds`` times each, one shared cache dir (a first,
discarded run warms bytecode and compile caches). Per arm: the warm-up each cell took,
noisy cells, and per cell the median over rounds of median_ms and of IQR/median; then the
ratio of the arms' medians. Writes DIR/warmup_ab.json and DIR/warmup_ab.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FLASHTUI = [sys.executable, "-m", "flashtui"]
ARMS = {"adaptive (>=25 ms)": "25", "fixed 100 ms": "100"}


def run(args: argparse.Namespace, warmup: str, out: Path, env: dict) -> list[dict]:
    cmd = [*FLASHTUI, "bench", "--seq", args.seq, "--dtype", "bf16", "--backends", args.backends,
           "--warmup-ms", warmup, "--no-journal", "--quiet", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or not out.exists():
        raise SystemExit(f"warmup_ab: {' '.join(cmd[2:])} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return json.loads(out.read_text())["cells"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-out"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seq", default="512,1024,4096")
    parser.add_argument("--backends", default="standard,sdpa,sdpa-flash,sdpa-efficient,sdpa-cudnn,flex,fa4")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FLASHTUI_CACHE_DIR": tempfile.mkdtemp(prefix="flashtui-warmup-ab-")}
    run(args, "25", args.out / "warmup_ab_discarded.json", env)  # caches warm; not counted
    by_arm: dict[str, list[list[dict]]] = {arm: [] for arm in ARMS}
    for i in range(args.rounds):
        for arm, warmup in ARMS.items():
            by_arm[arm].append(run(args, warmup, args.out / f"warmup_ab_{warmup}_{i}.json", env))
            print(f"round {i + 1}/{args.rounds}: {arm} done", flush=True)
    rows, summary = [], {}
    for arm, runs in by_arm.items():
        cells = [c for cells in runs for c in cells if c["status"] == "ok"]
        warm = [c["extra"].get("warmup_ms") for c in cells if c["extra"].get("warmup_ms") is not None]
        summary[arm] = {"cells": len(cells), "noisy": sum(bool(c["noisy"]) for c in cells),
                        "warmup_ms_median": statistics.median(warm) if warm else None,
                        "warmup_ms_total_per_run": round(sum(warm) / len(runs), 1) if warm else None,
                        "noisy_cells": sorted({f"{c['backend']}@{c['seq']}" for c in cells if c["noisy"]})}
    keys = sorted({(c["backend"], c["seq"]) for runs in by_arm.values() for cells in runs for c in cells})
    for backend, seq in keys:
        row = {"backend": backend, "seq": seq}
        for arm, runs in by_arm.items():
            got = [c for cells in runs for c in cells
                   if c["backend"] == backend and c["seq"] == seq and c["status"] == "ok"]
            row[arm] = {"median_ms": statistics.median(c["median_ms"] for c in got) if got else None,
                        "rel_iqr": statistics.median(c["iqr_ms"] / c["median_ms"] for c in got) if got else None,
                        "noisy": sum(bool(c["noisy"]) for c in got), "n": len(got)}
        a, b = (row[arm]["median_ms"] for arm in ARMS)
        row["adaptive_over_fixed"] = round(a / b, 4) if a and b else None
        rows.append(row)
    (args.out / "warmup_ab.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    (adaptive, fixed) = ARMS
    lines = [f"Warm-up A/B: `flashtui bench --seq {args.seq} --dtype bf16 --backends {args.backends}`, "
             f"{args.rounds} alternating rounds per arm", "",
             "| arm | cells | noisy | warm-up per cell (median) | warm-up per run |", "| --- | --- | --- | --- | --- |"]
    for arm, s in summary.items():
        lines.append(f"| {arm} | {s['cells']} | {s['noisy']} {', '.join(s['noisy_cells'])} | "
                     f"{s['warmup_ms_median']} ms | {s['warmup_ms_total_per_run']} ms |")
    lines += ["", f"| backend | seq | {adaptive} median_ms | fixed median_ms | adaptive/fixed | "
              "IQR/median adaptive | IQR/median fixed | noisy adaptive/fixed |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        a, f = r[adaptive], r[fixed]

        def fmt(x, p=4):
            return "NA" if x is None else f"{x:.{p}f}"
        lines.append(f"| {r['backend']} | {r['seq']} | {fmt(a['median_ms'])} | {fmt(f['median_ms'])} | "
                     f"{fmt(r['adaptive_over_fixed'])} | {fmt(a['rel_iqr'], 3)} | {fmt(f['rel_iqr'], 3)} | "
                     f"{a['noisy']}/{f['noisy']} |")
    (args.out / "warmup_ab.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
