"""The engine on a real CUDA GPU, through the real worker (run on the device: -m gpu)."""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest

from flashtui.client.worker_client import WorkerClient
from flashtui.core.spec import CellKey, SweepSpec

pytestmark = pytest.mark.gpu

SHAPE = dict(device="cuda", batch=1, heads=16, head_dim=128, reps=10, warmup_ms=20.0)


def _cells(events):
    return [m.to_cell() for m in events if m.type == "CellFinished"]


@pytest.fixture(scope="module")
def client():
    c = WorkerClient()
    c.start()
    yield c
    c.close()


def test_worker_ready_flashtui_share_within_1s(client):
    """Ready = torch import + CUDA context + flashtui's own start-up, each measured.

    On the team's H100 a bare `python -c "import torch"` takes 4-7 s (cold-ish
    site-packages), which flashtui cannot shorten; what it owns must stay under 1 s.
    """
    ready = client.ready
    assert ready.provenance["device_kind"] == "cuda"
    steps = ready.ready_breakdown_s
    own_s = ready.ready_s - steps["import_torch"]
    assert own_s <= 1.0, steps
    assert steps["cuda_init"] <= 1.0


def test_every_backend_names_its_kernels(client):
    cells = _cells(client.run_sweep(SweepSpec(**SHAPE, seqs=(1024,), dtypes=("bf16",))))
    ok = [c for c in cells if c.status == "ok"]
    assert {"standard", "sdpa-flash", "sdpa-efficient", "sdpa-cudnn"} <= {c.backend for c in ok}
    for cell in ok:
        assert cell.kernels, cell.backend
        assert cell.dispatch_ok is True, (cell.backend, cell.kernels)
        assert cell.parity.passed, (cell.backend, cell.parity)
        assert cell.peak_alloc_bytes is not None and cell.pct_peak is not None
        assert cell.host_ms is not None
    std = next(c for c in ok if c.backend == "standard")
    flash = next(c for c in ok if c.backend == "sdpa-flash")
    assert std.peak_alloc_bytes > 10 * flash.peak_alloc_bytes


def test_forced_kernel_that_cannot_run_is_flagged_not_a_result(client):
    cells = _cells(client.run_sweep(SweepSpec(**SHAPE, seqs=(512,), dtypes=("fp32",),
                                              backends=("standard", "sdpa-flash", "sdpa-cudnn"))))
    by = {c.backend: c for c in cells}
    assert by["standard"].status == "ok"
    assert by["sdpa-flash"].status == "unsupported" and by["sdpa-flash"].median_ms is None


def test_planted_dispatch_mismatch_is_flagged():
    """A backend that claims flash but runs the math path is caught by its kernels."""
    import flashtui.engine.kernel as kernel_mod
    from flashtui.engine import backends
    from flashtui.engine.provenance import detect_device

    device, _ = detect_device()
    fake = dataclasses.replace(backends.REGISTRY["sdpa-flash"], prepare=backends.REGISTRY["sdpa-math"].prepare)
    original = dict(kernel_mod.REGISTRY)
    kernel_mod.REGISTRY["sdpa-flash"] = fake
    try:
        runner = kernel_mod.KernelRunner(SweepSpec(**SHAPE, seqs=(512,), dtypes=("bf16",)), device)
        cell = runner.run_cell(CellKey("sdpa-flash", 512, "bf16"))
        runner.release()
    finally:
        kernel_mod.REGISTRY.clear()
        kernel_mod.REGISTRY.update(original)
    assert cell.dispatch_ok is False
    assert cell.status == "failed" and "requested sdpa-flash" in cell.reason


def test_oom_is_a_cell_and_the_next_cell_runs(client):
    spec = SweepSpec(**{**SHAPE, "reps": 3}, seqs=(65536,), dtypes=("bf16",),
                     backends=("standard", "sdpa-cudnn"), parity=False)
    cells = _cells(client.run_sweep(spec))
    assert cells[0].status == "oom"
    assert cells[1].status == "ok"


def test_device_side_assert_restarts_worker(monkeypatch):
    monkeypatch.setenv("FLASHTUI_INJECT_FAULT", "device-assert@standard@512")
    c = WorkerClient()
    try:
        events = list(c.run_sweep(SweepSpec(**SHAPE, seqs=(512, 1024), dtypes=("bf16",),
                                            backends=("standard", "sdpa-flash"))))
    finally:
        c.close()
    cells = _cells(events)
    assert len(cells) == 4
    first = cells[0]
    assert first.status == "failed"
    # a poisoned context: either the cell reports the CUDA error, or the process died
    assert "CUDA" in (first.reason or "") or "worker" in (first.reason or "")
    assert all(c.status == "ok" for c in cells[2:]), [(c.backend, c.status, c.reason) for c in cells]


def test_sigkill_during_real_sweep():
    c = WorkerClient()
    c.start()
    pid = c.pid
    events = []
    try:
        for msg in c.run_sweep(SweepSpec(**SHAPE, seqs=(2048, 4096), dtypes=("bf16",),
                                         backends=("standard", "sdpa-flash"))):
            events.append(msg)
            if msg.type == "CellStarted" and msg.index == 1:
                os.kill(pid, signal.SIGKILL)
    finally:
        c.close()
    cells = _cells(events)
    assert len(cells) == 4
    assert sum(c.status == "failed" for c in cells) == 1
    assert any(m.type == "WorkerRestarted" for m in events)
