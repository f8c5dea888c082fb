"""Where a bench's wall time goes: every measured cell carries extra["phases_s"], the session
the per-phase totals with the worker start, and --phases prints them (real CLI, CPU worker)."""

from __future__ import annotations

import json
import subprocess
import sys

BENCH = [sys.executable, "-m", "flashtui", "bench", "--device", "cpu", "--seq", "128,256", "--heads", "2",
         "--head-dim", "32", "--reps", "5", "--warmup-ms", "5", "--backends", "standard,sdpa-math",
         "--no-journal", "--monitor-hz", "0", "--quiet"]
CELL_PHASES = {"inputs", "first_call", "warmup", "timing", "memory", "dispatch", "parity"}


def test_each_cell_records_its_phases_and_the_session_their_totals():
    run = subprocess.run([*BENCH, "--json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    session = json.loads(run.stdout)
    cells = session["cells"]
    assert len(cells) == 4 and all(c["status"] == "ok" for c in cells)
    for cell in cells:
        phases = cell["extra"]["phases_s"]
        assert CELL_PHASES <= set(phases) and all(v >= 0 for v in phases.values())
        assert sum(phases.values()) <= cell["duration_s"] + 1e-3
        assert "compile_s" not in cell["extra"]  # nothing compiles on the CPU backends
    # The fp64 oracle is built once per (seq, dtype) group: by the group's first cell only.
    built = [(c["backend"], c["seq"]) for c in cells if "parity_oracle" in c["extra"]["phases_s"]]
    assert built == [("standard", 128), ("standard", 256)]
    totals = session["worker"]["phases_s"]
    assert totals["worker_start"] >= session["worker"]["ready_s"] * 0.5
    parts = sum(v for k, v in totals.items() if k not in ("wall", "compile_in_first_call"))
    assert abs(parts - totals["wall"]) < 0.05 * totals["wall"] + 0.01
    assert abs(totals["timing"] - sum(c["extra"]["phases_s"]["timing"] for c in cells)) < 0.01
    # The worker's once-per-process start-up rides on its first cell, outside the cell's phases.
    assert [c["extra"].get("start_up_s") is not None for c in cells] == [True, False, False, False]
    assert abs(totals["start_up"] - cells[0]["extra"]["start_up_s"]) < 1e-3


def test_phases_flag_prints_where_the_time_went():
    run = subprocess.run([*BENCH, "--phases", "--no-parity"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    tail = run.stdout[run.stdout.index("where the "):].splitlines()
    names = [line.split()[0] for line in tail[1:]]
    assert names[:3] == ["worker_start", "start_up", "inputs"] and "timing" in names
    assert "parity" not in names


def test_the_frozen_heap_lets_go_of_a_dead_cycle_at_the_next_group():
    """settle_heap freezes what is alive, so later per-cell collections skip it; a cycle
    that dies after that (one holding a tensor would hold its memory) is collected when the
    group changes (KernelRunner.release -> resettle_heap), not kept for the worker's life."""
    import gc
    import weakref

    import torch

    from flashtui.engine.phases import resettle_heap, settle_heap

    class Holder:
        pass

    try:
        holder = Holder()
        holder.me, holder.tensor = holder, torch.ones(4)  # a cycle, alive while frozen
        ref = weakref.ref(holder)
        settle_heap()
        del holder
        gc.collect()
        assert ref() is not None  # frozen: the cheap per-cell collection passes over it
        resettle_heap()
        assert ref() is None
    finally:
        gc.unfreeze()


def test_a_group_change_walks_the_heap_only_where_device_memory_stayed_behind(monkeypatch):
    """On CUDA the full walk at a group change is skipped when no more device memory is held
    than after the last change (no frozen cycle holds a tensor); any growth walks it. The
    CPU has no allocator count, so there every change walks; here the CUDA count is faked
    around real CPU cells."""
    import gc

    from flashtui.core.spec import CellKey, SweepSpec
    from flashtui.engine import kernel
    from flashtui.engine.backends import DeviceInfo

    held = {"bytes": 1000}
    walks: list[int] = []
    monkeypatch.setattr(kernel, "device_bytes_held", lambda kind: held["bytes"])
    monkeypatch.setattr(kernel, "resettle_heap", lambda: walks.append(held["bytes"]))
    monkeypatch.setattr(kernel, "_SETTLED", set())  # as in a fresh worker
    spec = SweepSpec(mode="kernel", device="cpu", seqs=(64, 96, 128, 160), dtypes=("fp32",), batch=1, heads=2,
                     head_dim=16, reps=3, warmup_ms=1.0, backends=("standard",), parity=False)
    runner = kernel.KernelRunner(spec, DeviceInfo("cpu", "cpu"))
    try:
        assert runner.run_cell(CellKey("standard", 64, "fp32")).status == "ok"  # first group: nothing settled yet
        assert runner.run_cell(CellKey("standard", 96, "fp32")).status == "ok"
        assert walks == []  # as much held as after the last change
        held["bytes"] = 5000  # something outlived the group
        assert runner.run_cell(CellKey("standard", 128, "fp32")).status == "ok"
        assert walks == [5000]
        assert runner.run_cell(CellKey("standard", 160, "fp32")).status == "ok"
        assert walks == [5000]  # the grown count is the new baseline
        monkeypatch.setattr(kernel, "device_bytes_held", lambda kind: None)  # the CPU: always walk
        runner.release()
        assert len(walks) == 2
    finally:
        gc.unfreeze()
