"""GPU faults on the real device, through the real `flashtui bench` (run: -m gpu -s).

Each test prints one outcome table (cell, status, reason, worker restarts, journal)
for the record in benchmarks/RESULTS.md:

    python -m pytest tests/faults/test_gpu_faults.py -m gpu -s -q

* OOM: standard attention materializes B*H*S*S scores; at B=1, H=16, D=128, bf16,
  seq 65536 that is 16 * 65536^2 * 2 bytes = 137 GB (fp32 softmax doubles it): it cannot
  fit on an 80 GB H100. The cell must say OOM, and the next cell run on the same worker.
* Device-side assert: an out-of-bounds index in a CUDA kernel poisons the context; the
  worker must exit (75) and a fresh one take the next cell.
* SIGKILL during a real sweep: the worker is killed from outside while it measures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from flashtui.store.journal import read_journal

from .conftest import (REPO, finish, flashtui, flashtui_env, kill_quietly, only_journal, raw_records,
                       wait_until, worker_pids_of)

pytestmark = pytest.mark.gpu

SHAPE = ["--device", "cuda", "--batch", "1", "--heads", "16", "--head-dim", "128", "--dtype", "bf16",
         "--reps", "10", "--warmup-ms", "20"]


def _table(title: str, session, stderr: str) -> str:
    lines = [f"### {title}", "", "| cell | status | median ms | reason |", "| --- | --- | --- | --- |"]
    for c in session.cells:
        ms = f"{c.median_ms:.3f}" if c.median_ms is not None else "-"
        reason = (c.reason or "").replace("|", "/")[:120]
        lines.append(f"| {c.backend} seq={c.seq} {c.dtype} | {c.status} | {ms} | {reason} |")
    restarts = session.worker.get("restarts", 0)
    died = [line for line in stderr.splitlines() if line.startswith("worker died")]
    lines += ["", f"worker restarts: {restarts}; session status: {session.status}; "
                  f"cells journaled: {len(session.cells)}"]
    lines += [f"stderr: {line[:160]}" for line in died]
    return "\n".join(lines)


def test_oom_standard_attention_at_65536_is_a_cell_and_the_same_worker_goes_on(data_dir):
    run = flashtui(["bench", *SHAPE, "--seq", "65536", "--backends", "standard,sdpa-flash,sdpa-cudnn",
                    "--no-parity", "--reps", "3"], data_dir, timeout=600)
    contents = read_journal(only_journal(data_dir))
    print("\n" + _table("OOM: standard attention, B=1 H=16 D=128 bf16 seq=65536", contents.session, run.stderr))
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    cells = {c.backend: c for c in contents.session.cells}
    assert cells["standard"].status == "oom", (cells["standard"].status, cells["standard"].reason)
    assert "memory" in cells["standard"].reason.lower()
    assert cells["sdpa-flash"].status == "ok"  # O(S) memory: fits, on the same worker
    assert contents.session.worker.get("restarts", 0) == 0
    assert contents.has_footer and run.returncode == 0


def test_device_side_assert_poisons_the_worker_and_a_fresh_one_goes_on(data_dir):
    run = flashtui(["bench", *SHAPE, "--seq", "1024,2048", "--backends", "standard,sdpa-flash"], data_dir,
                   timeout=600, FLASHTUI_INJECT_FAULT="device-assert@standard@1024")
    contents = read_journal(only_journal(data_dir))
    print("\n" + _table("Device-side assert in standard@1024", contents.session, run.stderr))
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    cells = {(c.backend, c.seq): c for c in contents.session.cells}
    assert len(cells) == 4
    bad = cells[("standard", 1024)]
    assert bad.status == "failed"
    assert "device-side assert" in bad.reason or "CUDA error" in bad.reason or "worker" in bad.reason, bad.reason
    assert contents.session.worker["restarts"] == 1, contents.session.worker
    assert cells[("sdpa-flash", 1024)].status == "ok"  # a fresh worker, a fresh context
    assert all(cells[(b, 2048)].status == "ok" for b in ("standard", "sdpa-flash"))
    assert contents.has_footer and run.returncode == 1


def test_sigkill_of_the_worker_during_a_real_sweep(data_dir):
    args = ["bench", *SHAPE, "--seq", "4096,8192,16384", "--backends", "standard,sdpa-flash,sdpa-cudnn"]
    proc = subprocess.Popen([sys.executable, "-m", "flashtui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=flashtui_env(data_dir), cwd=REPO)
    killed = None
    try:
        def journal_cells() -> int:
            found = sorted((data_dir / "sessions").glob("*.jsonl")) if (data_dir / "sessions").is_dir() else []
            return sum(r["record"] == "cell" for r in raw_records(found[0])) if found else 0
        wait_until(lambda: journal_cells() >= 2, 300, "two finished cells", step_s=0.01)
        workers = worker_pids_of(proc.pid)
        assert len(workers) == 1, workers
        killed = workers[0]
        os.kill(killed, signal.SIGKILL)  # mid-sweep: the third cell is running or starting
        run = finish(proc, timeout=600)
    finally:
        kill_quietly([proc.pid])
    contents = read_journal(only_journal(data_dir))
    print("\n" + _table(f"SIGKILL of worker pid {killed} after 2 cells", contents.session, run.stderr))
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    cells = contents.session.cells
    assert len(cells) == 9 and contents.has_footer
    failed = [c for c in cells if c.status == "failed"]
    assert len(failed) <= 1  # the cell in flight (none if the kill fell between cells)
    assert all("SIGKILL" in c.reason for c in failed)
    assert contents.session.worker["restarts"] == 1
    assert sum(c.status == "ok" for c in cells) >= 7


def test_gpu_cells_a_kernel_cannot_run_are_unsupported_with_the_reason(data_dir):
    """fp32 on sdpa-cudnn and head_dim 320 on the flash kernels: results, not errors."""
    run = flashtui(["bench", "--device", "cuda", "--heads", "8", "--seq", "1024", "--reps", "3", "--json",
                    "--dtype", "fp32", "--head-dim", "320", "--backends", "standard,sdpa-cudnn,sdpa-flash,fa2,fa3"],
                   data_dir, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    cells = {c["backend"]: c for c in json.loads(run.stdout)["cells"]}
    print("\n### fp32 + head_dim 320 on the GPU\n" + "\n".join(
        f"| {name} | {c['status']} | {c['reason'] or ''} |" for name, c in cells.items()))
    assert cells["standard"]["status"] == "ok"
    for name in ("sdpa-cudnn", "sdpa-flash", "fa2", "fa3"):
        assert cells[name]["status"] == "unsupported" and cells[name]["reason"], cells[name]
