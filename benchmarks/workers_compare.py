"""Compare a plain sweep with its --gpus all and --workers 2 runs (gpu_suite.sh part `workers`).

Usage: python benchmarks/workers_compare.py PLAIN.json GPUS.json WORKERS.json [BAD.err]
Prints, per run: the cells in order, the worker pids and device indices they name, how many
are marked shared_device / noisy; then whether each pool run has the plain run's cells in
the plain run's order. Exit 1 when a pool run lost, doubled or reordered a cell, a --gpus
cell is marked shared, or a --workers 2 cell is not, or (BAD.err: the stderr of
`--gpus 99`) that run did not say in one line that there is no such GPU.
"""

from __future__ import annotations

import json
import sys
from collections import Counter


def keys(session: dict) -> list[tuple]:
    return [(c["backend"], c["seq"], c["dtype"]) for c in session["cells"]]


def describe(name: str, session: dict) -> str:
    cells = session["cells"]
    pids = Counter(c.get("extra", {}).get("worker_pid") for c in cells)
    devices = Counter(c.get("extra", {}).get("device_index", "-") for c in cells)
    shared = sum(1 for c in cells if c.get("extra", {}).get("shared_device"))
    noisy = sum(1 for c in cells if c.get("noisy"))
    status = Counter(c["status"] for c in cells)
    ms = ", ".join(f"{c['backend']}@{c['seq']}={c['median_ms']:.3f}ms" for c in cells if c.get("median_ms"))
    return (f"{name:<8} cells={len(cells)} status={dict(status)} pids={dict(pids)} device_index={dict(devices)} "
            f"shared={shared} noisy={noisy} pool={session.get('worker', {}).get('pool')}\n         {ms}")


def main(argv: list[str]) -> int:
    plain, gpus, workers = (json.load(open(path)) for path in argv[1:4])
    print(describe("plain", plain))
    print(describe("gpus", gpus))
    print(describe("workers", workers))
    problems = []
    for name, session in (("--gpus all", gpus), ("--workers 2", workers)):
        if keys(session) != keys(plain):
            problems.append(f"{name}: cells differ from the plain run's: {keys(session)} vs {keys(plain)}")
        if any("worker_pid" not in c.get("extra", {}) or "device_index" not in c.get("extra", {})
               for c in session["cells"]):
            problems.append(f"{name}: a cell lacks extra.worker_pid/device_index")
    if any(c.get("extra", {}).get("shared_device") for c in gpus["cells"]):
        problems.append("--gpus all: a cell is marked shared (one worker per GPU)")
    if not all(c.get("extra", {}).get("shared_device") for c in workers["cells"]):
        problems.append("--workers 2: a cell is not marked shared")
    if len({c["extra"].get("worker_pid") for c in workers["cells"]}) < 2:
        problems.append("--workers 2: every cell ran on one worker")
    if len(argv) > 4:
        lines = [line for line in open(argv[4]).read().splitlines() if line.strip()]
        print(f"--gpus 99: {lines}")
        if len(lines) != 1 or "there is no GPU 99" not in lines[0]:
            problems.append(f"--gpus 99: expected one line naming the missing GPU, got {lines}")
    print("\n".join(problems) if problems else "same cells, same order; --gpus unshared, --workers 2 shared: OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
