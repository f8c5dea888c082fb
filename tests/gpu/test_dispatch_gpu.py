"""Kernels named from a CUDA-graph capture agree with torch.profiler's (run on the device: -m gpu)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from flashtui.engine import dispatch, graph_kernels
from flashtui.engine.backends import REGISTRY, Shape
from flashtui.engine.provenance import detect_device

pytestmark = pytest.mark.gpu

# Non-kernel device work the profiler lists and a capture's kernel nodes do not.
_NOT_KERNELS = re.compile(r"^(Memcpy|Memset)")


def _call(name: str):
    device, _ = detect_device()
    backend = REGISTRY[name]
    shape = Shape(1, 8, 8, 1024, 64, "bf16", True, False)
    ok, why = backend.supports(shape, device)
    if not ok:
        pytest.skip(f"{name}: {why}")
    q, k, v = (torch.randn(1, 8, 1024, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    prepared = backend.prepare(q, k, v, shape)
    context = prepared.context()
    context.__enter__()
    prepared.forward()  # warm: compiles and lazy allocations happen before the capture
    torch.cuda.synchronize()
    return backend, prepared.forward, context


@pytest.mark.parametrize("name", ["standard", "sdpa-math", "sdpa-flash", "sdpa-efficient", "sdpa-cudnn",
                                  "flex", "fa4"])
def test_a_capture_names_the_kernels_the_profiler_sees(name):
    assert graph_kernels.available()
    backend, forward, context = _call(name)
    try:
        captured = dispatch.observe_kernels(forward, "cuda")
        profiled = dispatch.observe(forward, "cuda")
    finally:
        context.__exit__(None, None, None)
    assert captured.method == "cuda-graph" and captured.names, captured
    assert profiled, name
    kernels = {n for n in profiled if not _NOT_KERNELS.match(n)}
    # The same kernels, named the same way (demangled like CUPTI's names): the capture
    # keeps every kernel, the profiler its MAX_NAMES longest.
    assert kernels <= set(captured.names), (captured.names, profiled)
    if len(profiled) < dispatch.MAX_NAMES:
        assert set(captured.names) == kernels, (captured.names, profiled)
    # What a cell keeps leads with the backend's own kernels.
    kept = dispatch.shown(backend, captured.names)
    assert len(kept) <= dispatch.MAX_NAMES and dispatch.check(backend, kept, "cuda").ok is True
    assert dispatch.check(backend, captured.names, "cuda") == dispatch.check(backend, profiled, "cuda")
    assert dispatch.check(backend, captured.names, "cuda").ok is True


def test_a_call_that_cannot_be_captured_falls_back_to_the_profiler():
    q = torch.randn(256, 256, device="cuda")
    assert graph_kernels.captured_kernel_names(lambda: (q @ q).sum().item()) is None
    observed = dispatch.observe_kernels(lambda: (q @ q).sum().item(), "cuda")
    assert observed.method == "profiler" and observed.names
    assert torch.cuda.is_current_stream_capturing() is False
    (q @ q).sum().item()  # the failed capture left nothing broken behind


def test_a_fresh_bench_worker_pays_no_profiler_start_up():
    """The first cell's start-up is the heap settle only: no CUPTI start (4.9-5.8 s on the H200)."""
    run = subprocess.run([sys.executable, "-m", "flashtui", "bench", "--seq", "1024", "--dtype", "bf16",
                          "--backends", "sdpa-flash,standard", "--json", "--no-journal"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    import json

    session = json.loads(run.stdout)
    cells = session["cells"]
    assert all(c["extra"].get("kernels_method") == "cuda-graph" for c in cells), cells
    assert cells[0]["extra"]["start_up_s"] < 2.0, cells[0]["extra"]
    assert all("profiler_start" not in c["extra"]["phases_s"] for c in cells)
    assert all(c["dispatch_ok"] is True for c in cells)
