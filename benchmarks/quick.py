"""Quick answers, measured (issue 14): how long the doctor and the default sweep take.

    python benchmarks/quick.py --out DIR      (gpu_suite.sh part `quick`; ~4-6 min on an H200)

Every figure is a whole command, launch to exit, timed from here:

* doctor cold: an empty cache dir (FLASHTUI_CACHE_DIR), so no cached answer and empty
  compile caches; the time to its first line on stdout; the wall.
* doctor repeat: the same cache dir, ``--json``: must say ``cached: true``.
* first bench cell: ``bench --seq 1024,4096 --dtype bf16`` on an empty cache dir, the time
  from launch to its first finished-cell line (stderr, one line per cell off a terminal).
* default ``flashtui bench``: cold compile cache (empty dir), then warm (same dir), each
  with its session's phase totals (worker.phases_s).

Writes DIR/quick.json (everything) and DIR/quick.md (the table for RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

FLASHTUI = [sys.executable, "-m", "flashtui"]


# Where this Python has no cached bytecode for torch, flashtui's worker keeps it under the
# cache dir (client.environment.bytecode_cache_env), so an empty cache dir would also mean
# recompiling torch from source. A pip-installed torch has its bytecode: to measure that
# case, every run's cache dir links its bytecode folder to one shared folder, warmed once
# first; the compile caches stay empty. The first cold doctor (--no-bytecode-doctor) runs
# without the link, to show the other case too.
SHARED_BYTECODE: list[Path] = []


def timed(cmd: list[str], cache_dir: Path, log: Path, first_line_of: str = "stdout",
          first_match: str = r"\S", bytecode: bool = True) -> dict:
    """Run ``cmd``; wall seconds, seconds to its first line on ``first_line_of`` matching
    ``first_match`` (a regex), rc, stdout."""
    if bytecode and SHARED_BYTECODE and not (cache_dir / "compile" / "pycache").exists():
        (cache_dir / "compile").mkdir(parents=True, exist_ok=True)
        (cache_dir / "compile" / "pycache").symlink_to(SHARED_BYTECODE[0], target_is_directory=True)
    env = {**os.environ, "FLASHTUI_CACHE_DIR": str(cache_dir)}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watched, other = (proc.stdout, proc.stderr) if first_line_of == "stdout" else (proc.stderr, proc.stdout)
    first_s = None
    lines = []
    for line in watched:  # type: ignore[union-attr]
        if first_s is None and re.search(first_match, line):
            first_s = time.perf_counter() - started
        lines.append(line)
    rest = other.read()  # type: ignore[union-attr]
    rc = proc.wait()
    wall_s = time.perf_counter() - started
    out, err = ("".join(lines), rest) if first_line_of == "stdout" else (rest, "".join(lines))
    log.write_text(f"$ {' '.join(cmd)}\nrc={rc} wall_s={wall_s:.2f}\n--- stdout\n{out}\n--- stderr\n{err}\n")
    return {"cmd": " ".join(cmd[2:]), "rc": rc, "wall_s": round(wall_s, 2),
            "first_line_s": round(first_s, 2) if first_s is not None else None, "stdout": out}


def session_phases(path: Path) -> dict:
    try:
        session = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    worker = session.get("worker") or {}
    cells = session.get("cells") or []
    compile_s = {f"{c['backend']} {c['seq']} {c['dtype']}": c["extra"]["compile_s"]
                 for c in cells if (c.get("extra") or {}).get("compile_s") is not None}
    return {"ready_s": worker.get("ready_s"), "phases_s": worker.get("phases_s"), "compile_s": compile_s,
            "n_cells": len(cells), "statuses": sorted({c["status"] for c in cells})}


WARM_BYTECODE = ("import importlib, torch, torch._dynamo, torch._inductor.compile_fx, transformers\n"
                 "import flashtui.engine.server, flashtui.engine.capability, flashtui.engine.kernel\n"
                 "try: importlib.import_module('flash_attn.cute')\nexcept ImportError: pass\n")


def doctor_lines(cold: dict) -> list[str]:
    """Where the cold doctor's time went, from its (cached) report."""
    probe = cold.get("probe")
    if not probe:
        return []
    workers = ", ".join(f"{'+'.join(w['backends'] or ['rest'])} ready {w['ready_s']} s" for w in probe["workers"])
    rows = ", ".join(f"{r['backend']} {r['seconds']} s (first call {r['first_call_s']} s)"
                     for r in probe["fastest_rows"] if r["status"] == "ok")
    return [f"doctor cold: worker ready {probe['worker_ready_s']} s, probe {probe['probe_seconds']} s; "
            f"workers: {workers or 'one'}", f"doctor cold, fastest-here rows: {rows or 'NA'}"]


def keep(out: Path, results: dict) -> None:
    """Write what is measured so far (a device call cut short keeps its finished parts)."""
    kept = {name: {k: v for k, v in value.items() if k != "stdout"} for name, value in results.items()}
    (out / "quick.partial.json").write_text(json.dumps(kept, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-out"))
    parser.add_argument("--parts", default="doctor,first_cell,bench",
                        help="comma list of doctor, doctor_again, first_cell, bench (default: doctor,first_cell,bench)")
    parser.add_argument("--no-bytecode-doctor", action="store_true",
                        help="first, a cold doctor with no shared bytecode either")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="flashtui-quick-"))
    results: dict = {}

    parts = set(args.parts.split(","))
    doctor_dir = scratch / "doctor-cache"
    # The live lines (preview, then each matrix row) go to stderr off a terminal; stdout
    # carries the report at the end. Time to first line = the first live line.
    if "doctor" in parts and args.no_bytecode_doctor:
        results["doctor_cold_no_bytecode"] = timed([*FLASHTUI, "doctor", "--json", "--quiet"],
                                                   scratch / "doctor-no-bytecode", out / "quick_doctor_nobc.log",
                                                   bytecode=False)
        keep(out, results)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from flashtui.client.environment import bytecode_cache_env

    if bytecode_cache_env({**os.environ, "FLASHTUI_CACHE_DIR": str(scratch / "probe")}):
        shared = scratch / "pycache"
        shared.mkdir()
        started = time.perf_counter()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        run = subprocess.run([sys.executable, "-c", WARM_BYTECODE], capture_output=True, text=True,
                             env={**env, "PYTHONPYCACHEPREFIX": str(shared)})
        results["bytecode_warm_up"] = {"cmd": "python -c 'import torch, torch._dynamo, inductor, ...'",
                                       "rc": run.returncode, "wall_s": round(time.perf_counter() - started, 2)}
        SHARED_BYTECODE.append(shared)
    if "doctor" in parts:
        results["doctor_cold"] = timed([*FLASHTUI, "doctor"], doctor_dir, out / "quick_doctor_cold.log",
                                       first_line_of="stderr")
        keep(out, results)
        repeat = timed([*FLASHTUI, "doctor", "--json", "--quiet"], doctor_dir, out / "quick_doctor_repeat.log")
        try:
            report = json.loads(repeat["stdout"])
        except ValueError:
            report = {}
        repeat["cached"] = report.get("cached")
        # The cached answer is the cold run's: where its probe time went.
        results["doctor_cold"]["probe"] = {
            "worker_ready_s": report.get("worker_ready_s"), "probe_seconds": report.get("probe_seconds"),
            "workers": [{"backends": w.get("backends"), "ready_s": w.get("ready_s")}
                        for w in report.get("probe_workers") or []],
            "fastest_rows": [{k: r.get(k) for k in ("backend", "status", "seconds", "first_call_s", "median_ms")}
                             for r in (report.get("fastest") or {}).get("rows") or []]}
        results["doctor_repeat"] = repeat
        keep(out, results)

    if "doctor_again" in parts:
        # A second cold doctor (a new empty cache dir) on the same box: what the first one
        # read from disk for the first time (cuDNN's engine libraries, torch's) is in the OS
        # page cache now, as on any box that ran torch recently.
        results["doctor_cold_again"] = timed([*FLASHTUI, "doctor"], scratch / "doctor-cache-again",
                                             out / "quick_doctor_cold_again.log", first_line_of="stderr")
        keep(out, results)

    if "first_cell" in parts:
        first = scratch / "first-cell-cache"
        results["first_cell"] = timed([*FLASHTUI, "bench", "--seq", "1024,4096", "--dtype", "bf16", "--no-journal",
                                       "--out", str(out / "quick_first_cell.json")],
                                      first, out / "quick_first_cell.log", first_line_of="stderr",
                                      first_match=r"\] [1-9]\d*/\d+ ")  # the progress line of a finished cell
        results["first_cell"].update(session_phases(out / "quick_first_cell.json"))
        keep(out, results)

    if "bench" in parts:
        bench_dir = scratch / "bench-cache"
        for run in ("cold", "warm"):
            session = out / f"quick_bench_default_{run}.json"
            results[f"bench_default_{run}"] = timed([*FLASHTUI, "bench", "--no-journal", "--out", str(session)],
                                                    bench_dir, out / f"quick_bench_default_{run}.log")
            results[f"bench_default_{run}"].update(session_phases(session))
            keep(out, results)
    for value in results.values():
        value.pop("stdout", None)
    (out / "quick.json").write_text(json.dumps(results, indent=1) + "\n")

    def row(name: str, key: str, figure: Callable[[dict], str], bar: str) -> list[str]:
        r = results.get(key)
        return [] if r is None else [f"| {name} | `{r['cmd']}` | {figure(r)} | {bar} | rc {r['rc']} |"]

    phase_names = ("worker_start", "start_up", "profiler_start", "inputs", "first_call", "heap", "warmup", "timing",
                   "memory", "dispatch", "parity_oracle", "parity", "shutdown", "other")  # shutdown: older runs

    def phases(key: str) -> list[str]:
        if key not in results:
            return []
        p = results[key].get("phases_s") or {}
        return [f"phases, {key} (s): "
                + (", ".join(f"{n} {p[n]:.1f}" for n in phase_names if n in p) or "NA"),
                f"compile_s, {key}: {results[key].get('compile_s')}"]

    lines = [
        "| what | command | measured | bar | |", "|---|---|---|---|---|",
        *row("doctor cold, no bytecode either", "doctor_cold_no_bytecode", lambda r: f"{r['wall_s']} s", "-"),
        *row("bytecode warm-up (once, shared below)", "bytecode_warm_up", lambda r: f"{r['wall_s']} s", "-"),
        *row("doctor cold (empty cache)", "doctor_cold", lambda r: f"{r['wall_s']} s", "<= 15 s"),
        *row("doctor cold again (new empty cache dir, page cache warm)", "doctor_cold_again",
             lambda r: f"{r['wall_s']} s", "<= 15 s"),
        *row("doctor: first line on screen", "doctor_cold", lambda r: f"{r['first_line_s']} s", "<= 3 s"),
        *row("doctor repeat", "doctor_repeat", lambda r: f"{r['wall_s']} s (cached: {r['cached']})", "<= 2 s"),
        *row("first bench cell after launch", "first_cell", lambda r: f"{r['first_line_s']} s", "<= 6 s"),
        *row("default bench, cold compile cache", "bench_default_cold", lambda r: f"{r['wall_s']} s", "<= 25 s"),
        *row("default bench, warm compile cache", "bench_default_warm", lambda r: f"{r['wall_s']} s", "<= 25 s"),
        "",
        *phases("first_cell"), *phases("bench_default_cold"), *phases("bench_default_warm"),
        *doctor_lines(results.get("doctor_cold") or {}),
    ]
    (out / "quick.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
