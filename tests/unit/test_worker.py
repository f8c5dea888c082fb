"""The real worker subprocess, driven through the real client, on CPU torch."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from flashtui.client.worker_client import WorkerClient
from flashtui.core import protocol as proto
from flashtui.core.spec import CellKey, SweepSpec

TINY = dict(device="cpu", seqs=(64, 128), dtypes=("fp32",), batch=1, heads=2, head_dim=32,
            reps=3, warmup_ms=0.0, backends=("standard", "sdpa-math", "sdpa-flash"))


@pytest.fixture(scope="module")
def client():
    c = WorkerClient()
    c.start()
    yield c
    c.close()


def _collect(events):
    out = {"cells": [], "types": []}
    for msg in events:
        out["types"].append(msg.type)
        if msg.type == "CellFinished":
            out["cells"].append(msg.to_cell())
        if msg.type == "SweepFinished":
            out["cancelled"] = msg.cancelled
    return out


def test_ready_reports_cpu_backends_and_provenance(client):
    ready = client.ready
    assert ready.ready_s > 0 and client.ready_wall_s > 0
    prov = ready.provenance
    assert prov["device_kind"] == "cpu" and prov["torch"].startswith("2.")
    assert ready.backends["standard"]["available"]
    assert not ready.backends["fa4"]["available"]
    assert "CUDA" in ready.backends["fa4"]["reason"]


def test_tiny_sweep_parity_and_ordering(client):
    got = _collect(client.run_sweep(SweepSpec(**TINY)))
    assert got["types"][0] == "SweepStarted" and got["types"][-1] == "SweepFinished"
    assert got["cancelled"] is False
    cells = got["cells"]
    assert [(c.backend, c.seq) for c in cells] == [
        ("standard", 64), ("sdpa-math", 64), ("sdpa-flash", 64),
        ("standard", 128), ("sdpa-math", 128), ("sdpa-flash", 128)]
    for cell in cells:
        assert cell.status == "ok", cell.reason
        # reps=3, or twice that when a wide first round was measured again (see engine.timing)
        assert cell.median_ms > 0 and cell.reps in (3, 6, 12) and cell.tflops > 0
        assert cell.parity.reference == "fp64"
        # standard vs sdpa-math in fp32: both within 1e-5 (relative L2) of the exact answer
        assert cell.parity.rel_l2 <= 1e-5
        assert cell.parity.passed
        assert cell.dispatch_ok is True and cell.kernels
        assert cell.extra["kernels_method"] == "profiler"  # CPU: no CUDA graph to read
        assert cell.theory_bytes > 0
        assert cell.peak_alloc_bytes is None  # CPU: no allocator peak, shown as NA


def test_warm_up_pays_the_profiler_start_before_any_sweep():
    """WarmUp (what the TUI sends while Setup is open) pays torch.profiler's start-up once:
    a second WarmUp is cheap, and the first sweep's first cell no longer carries it."""
    c = WorkerClient()
    try:
        c.start()
        first = c.request(proto.WarmUp(), proto.WarmedUp, timeout_s=120)
        again = c.request(proto.WarmUp(), proto.WarmedUp, timeout_s=120)
        got = _collect(c.run_sweep(SweepSpec(**{**TINY, "seqs": (64,), "backends": ("standard",)})))
    finally:
        c.close()
    assert first.seconds > 0 and again.seconds < first.seconds
    start_up_s = got["cells"][0].extra["start_up_s"]
    assert start_up_s < first.seconds  # only the (cheap) heap settle is left for the sweep


def test_unsupported_cell_is_a_result_not_an_error(client):
    spec = SweepSpec(**{**TINY, "seqs": (64,), "backends": ("standard", "fa2", "sdpa-cudnn")})
    cells = _collect(client.run_sweep(spec))["cells"]
    by_name = {c.backend: c for c in cells}
    assert by_name["standard"].status == "ok"
    assert by_name["fa2"].status == "unsupported" and "CUDA" in by_name["fa2"].reason


def test_backward_reports_grad_parity(client):
    spec = SweepSpec(**{**TINY, "seqs": (64,), "backward": True, "backends": ("standard", "sdpa-flash")})
    cells = _collect(client.run_sweep(spec))["cells"]
    for cell in cells:
        assert cell.status == "ok", cell.reason
        assert set(cell.parity.grads) == {"dq", "dk", "dv"}
        assert all(g["rel_l2"] < 1e-5 for g in cell.parity.grads.values())


def test_cancel_stops_after_cell_in_flight(client):
    spec = SweepSpec(**{**TINY, "seqs": (64, 128, 256, 512), "reps": 20, "warmup_ms": 50.0})
    events = client.run_sweep(spec)
    seen = []
    for msg in events:
        seen.append(msg)
        if msg.type == "CellFinished" and len([m for m in seen if m.type == "CellFinished"]) == 1:
            client.cancel()
    finished = [m for m in seen if m.type == "CellFinished"]
    assert seen[-1].type == "SweepFinished" and seen[-1].cancelled is True
    assert 1 <= len(finished) < 12
    # the worker is still usable afterwards
    again = _collect(client.run_sweep(SweepSpec(**{**TINY, "seqs": (64,), "backends": ("standard",)})))
    assert [c.status for c in again["cells"]] == ["ok"]


def test_killed_worker_is_restarted_and_sweep_continues():
    c = WorkerClient()
    c.start()
    first_pid = c.pid
    spec = SweepSpec(**{**TINY, "seqs": (64, 128, 256), "reps": 50, "warmup_ms": 300.0})
    msgs = []
    killed = threading.Event()
    try:
        for msg in c.run_sweep(spec):
            msgs.append(msg)
            if msg.type == "CellStarted" and msg.index == 1 and not killed.is_set():
                killed.set()
                time.sleep(0.1)
                os.kill(first_pid, signal.SIGKILL)
    finally:
        c.close()
    types = [m.type for m in msgs]
    assert "WorkerDied" in types and "WorkerRestarted" in types
    cells = [m.to_cell() for m in msgs if m.type == "CellFinished"]
    assert len(cells) == 9  # nothing lost: every planned cell has a result
    failed = [cell for cell in cells if cell.status == "failed"]
    assert len(failed) == 1 and "SIGKILL" in failed[0].reason
    assert sum(cell.status == "ok" for cell in cells) == 8
    assert c.restarts == 1


def test_segfault_in_a_cell_marks_it_and_continues(monkeypatch):
    monkeypatch.setenv("FLASHTUI_INJECT_FAULT", "segfault@sdpa-math@64")
    c = WorkerClient()
    try:
        got = _collect(c.run_sweep(SweepSpec(**{**TINY, "seqs": (64,)})))
    finally:
        c.close()
    by_name = {cell.backend: cell for cell in got["cells"]}
    assert by_name["sdpa-math"].status == "failed"
    assert "segmentation fault" in by_name["sdpa-math"].reason
    assert by_name["standard"].status == "ok" and by_name["sdpa-flash"].status == "ok"


def test_hung_cell_hits_the_watchdog(monkeypatch):
    monkeypatch.setenv("FLASHTUI_INJECT_FAULT", "hang@standard@64")
    # Generous enough that a healthy tiny cell never trips it on a loaded 2-core CI box.
    c = WorkerClient(cell_timeout_s=6.0)
    try:
        started = time.monotonic()
        got = _collect(c.run_sweep(SweepSpec(**{**TINY, "seqs": (64,)}),
                                   cells=[CellKey("standard", 64, "fp32"), CellKey("sdpa-math", 64, "fp32")]))
        elapsed = time.monotonic() - started
    finally:
        c.close()
    assert got["cells"][0].status == "failed" and "timed out" in got["cells"][0].reason
    assert got["cells"][1].status == "ok", got["cells"][1].reason
    assert elapsed < 45


def test_injected_oom_is_a_cell_result(monkeypatch):
    monkeypatch.setenv("FLASHTUI_INJECT_FAULT", "oom@standard@64")
    c = WorkerClient()
    try:
        got = _collect(c.run_sweep(SweepSpec(**{**TINY, "seqs": (64,), "backends": ("standard", "sdpa-flash")})))
    finally:
        c.close()
    assert got["cells"][0].status == "oom" and "out of memory" in got["cells"][0].reason
    assert got["cells"][1].status == "ok"
    assert c.restarts == 0  # OOM is a result, not a crash


def test_worker_exits_when_client_stdin_closes():
    c = WorkerClient()
    c.start()
    proc = c.proc
    proc.stdin.close()
    assert proc.wait(timeout=5) == 0


def test_a_fresh_workers_profiler_start_up_is_paid_before_its_first_cell_not_in_it():
    """torch.profiler's first use costs seconds; it must fall outside the watchdog's window
    (CellStarted -> CellFinished), once per worker, or a healthy first cell can time out."""
    spec = SweepSpec(**{**TINY, "seqs": (64,), "backends": ("standard",)})
    with WorkerClient(cell_timeout_s=120) as fresh:
        first = list(fresh.run_sweep(spec))
        second = list(fresh.run_sweep(spec))
    started = next(i for i, event in enumerate(first) if isinstance(event, proto.CellStarted))
    before = first[:started]
    assert any(isinstance(e, proto.Progress) and "torch.profiler" in e.text for e in before), first
    assert any(isinstance(e, proto.Log) and "torch.profiler start-up took" in e.text for e in before), first
    assert not any(isinstance(e, (proto.Progress, proto.Log)) and "torch.profiler" in e.text
                   for e in first[started:] + second), (first, second)
    cell = next(e for e in first if isinstance(e, proto.CellFinished)).to_cell()
    assert cell.status == "ok" and cell.kernels, cell.reason  # dispatch.observe still ran in the cell
