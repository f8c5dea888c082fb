"""The memory guard: a cell that clearly cannot fit is an ``oom`` result, fast, unallocated.

Real CLI and real worker on the CPU, with real limits: the box's own RAM (24 GiB here:
``--seq 65536`` of standard attention needs 128 GiB), ``ulimit -v`` (RLIMIT_AS) set on
the bench process and inherited by its worker, and the CPU allocator's own refusal
for a cell the guard lets through. Every run that could allocate for real also runs
under an address-space cap, so a broken guard fails the test with an allocator error
instead of waking the kernel's OOM killer on a shared box.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import pytest

from flashtui.core.units import fmt_bytes
from flashtui.engine import memory
from flashtui.store import index as store

from .conftest import REPO, Run, flashtui_env, only_journal

GIB = 1 << 30


def _mem_total_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal")


def _bench(args: list[str], data_dir, *, as_limit_bytes: int, timeout: float = 180) -> tuple[Run, float]:
    """``python -m flashtui bench ARGS --json`` under RLIMIT_AS (inherited by the worker)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (as_limit_bytes, as_limit_bytes))

    started = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "flashtui", "bench", "--device", "cpu", "--monitor-hz", "0",
                        "--quiet", "--json", *args], capture_output=True, text=True, timeout=timeout,
                       env=flashtui_env(data_dir), cwd=REPO, preexec_fn=limit)
    return Run(r.returncode, r.stdout, r.stderr), time.monotonic() - started


def _cells(run: Run) -> dict[tuple[str, int], dict]:
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    data = json.loads(run.stdout)
    return {(c["backend"], c["seq"]): c for c in data["cells"]}


def test_seq_65536_on_cpu_is_a_quick_oom_cell_not_the_oom_killer(data_dir):
    """The issue's case: the guard answers from MemAvailable (24 GiB box, 128 GiB needed)."""
    safety_net = 2 * _mem_total_bytes()  # above RAM: MemAvailable, not the cap, is what binds
    run, wall_s = _bench(["--seq", "65536", "--backends", "standard,sdpa-math"], data_dir,
                         as_limit_bytes=safety_net)
    assert run.returncode == 0, run.stderr[-2000:]
    cells = _cells(run)
    for backend in ("standard", "sdpa-math"):
        cell = cells[(backend, 65536)]
        assert cell["status"] == "oom", cell
        assert "needs 1" in cell["reason"] and "GiB free (host MemAvailable" in cell["reason"], cell["reason"]
        assert cell["duration_s"] < 1.0, cell["duration_s"]
        assert cell["median_ms"] is None and cell["extra"]["predicted_bytes"] > 128 * GIB
        assert cell["theory_bytes"] >= 128 * GIB
    assert wall_s < 60, f"the whole run took {wall_s:.0f} s"
    session, _ = store.load_path(only_journal(data_dir))
    assert [c.status for c in session.cells] == ["oom", "oom"]  # a result, kept in the store


def test_ulimit_v_is_what_the_guard_compares_against_and_fused_cells_still_run(data_dir):
    run, _ = _bench(["--seq", "16384", "--heads", "2", "--head-dim", "32", "--backends", "standard,sdpa-flash",
                     "--reps", "2", "--warmup-ms", "0", "--no-parity"], data_dir, as_limit_bytes=4 * GIB)
    assert run.returncode == 0, run.stderr[-2000:]
    cells = _cells(run)
    standard = cells[("standard", 16384)]
    assert standard["status"] == "oom" and "RLIMIT_AS" in standard["reason"], standard
    assert standard["duration_s"] < 1.0
    # Fused attention holds O(S) memory: the guard lets it through and it is measured.
    flash = cells[("sdpa-flash", 16384)]
    assert flash["status"] == "ok" and flash["median_ms"] > 0, flash


def test_model_mode_eager_scores_that_cannot_fit_are_oom_before_the_forward(data_dir):
    run, _ = _bench(["--mode", "prefill", "--model", "tiny-gpt2", "--seq", "65536", "--batch", "1",
                     "--backends", "standard,sdpa-math", "--reps", "2", "--warmup-ms", "0"], data_dir,
                    as_limit_bytes=2 * _mem_total_bytes())
    assert run.returncode == 0, run.stderr[-2000:]
    for backend in ("standard", "sdpa-math"):
        cell = _cells(run)[(backend, 65536)]
        assert cell["status"] == "oom" and "needs" in cell["reason"] and "free" in cell["reason"], cell


BORDERLINE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from flashtui.core.spec import CellKey, SweepSpec
from flashtui.engine import kernel
from flashtui.engine.backends import DeviceInfo
kernel.refusal = lambda *args, **kwargs: None  # a guard that lets everything through
spec = SweepSpec(device="cpu", seqs=(16384,), dtypes=("fp32",), heads=2, head_dim=32, reps=2,
                 warmup_ms=0, parity=False)
cell = kernel.KernelRunner(spec, DeviceInfo("cpu", "cpu")).run_cell(CellKey("standard", 16384, "fp32"))
print(json.dumps({"status": cell.status, "reason": cell.reason}))
"""


def test_a_cell_the_guard_lets_through_and_the_allocator_refuses_is_still_oom():
    """The CPU allocator's "can't allocate memory" is an OOM result, not FAILED."""
    r = subprocess.run([sys.executable, "-c", BORDERLINE], capture_output=True, text=True, timeout=120,
                       env=flashtui_env(REPO / "unused-data-dir"), cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    cell = json.loads(r.stdout.strip().splitlines()[-1])
    assert cell["status"] == "oom", cell
    assert "allocate" in cell["reason"].lower(), cell


@pytest.mark.parametrize("device, need, free, refused", [
    ("cuda", 100 * GIB, 99 * GIB, True),
    ("cuda", 99 * GIB, 99 * GIB, False),  # exactly fits: let CUDA decide
    ("cpu", 7 * GIB, 10 * GIB, False),  # 7 * 1.25 + 0.5 <= 10
    ("cpu", 8 * GIB, 10 * GIB, True),  # 8 * 1.25 + 0.5 > 10: the OOM killer is not risked
])
def test_the_margins_are_the_documented_ones(device, need, free, refused):
    reason = memory.refusal(need, memory.Room(free, "test"), device)
    assert (reason is not None) == refused
    if refused:
        assert reason.startswith(f"needs {fmt_bytes(need)}, {fmt_bytes(free)} free (test")


def test_host_room_reads_the_real_limits():
    room = memory.host_room()
    assert 0 < room.free_bytes <= _mem_total_bytes() or room.source != "host MemAvailable"
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (64 * GIB, hard))
        capped = memory.host_room()
        assert capped.free_bytes <= 64 * GIB
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
