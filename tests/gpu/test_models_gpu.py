"""Model mode on a real CUDA GPU (run on the device: pytest -m gpu tests/gpu/test_models_gpu.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from flashtui.client.worker_client import WorkerClient
from flashtui.core.spec import SweepSpec

pytestmark = pytest.mark.gpu
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():  # pragma: no cover - the gpu marker is deselected off-device
    pytest.skip("needs a CUDA GPU", allow_module_level=True)

# The benchmark script itself, loaded by path (benchmarks/ is scripts, not a package).
_spec = importlib.util.spec_from_file_location(
    "model_build", Path(__file__).resolve().parents[2] / "benchmarks" / "model_build.py")
model_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(model_build)


@pytest.mark.parametrize("name", ["gpt2", "llama-3-8b"])
def test_builds_directly_on_device_within_target(name, capsys):
    times, params = model_build.build_seconds(name, "bf16", repeats=3)
    with capsys.disabled():
        print(f"\n| {name} | {params / 1e9:.2f}B | bf16 | first {times[0]:.3f} s | best {min(times):.3f} s |")
    assert min(times) <= model_build.TARGETS_S[name], times


@pytest.fixture(scope="module")
def client():
    with WorkerClient(cell_timeout_s=300) as c:
        yield c


def _cells(client, spec):
    cells, failures = [], []
    for msg in client.run_sweep(spec, spec.cells()):
        if msg.type == "CellFinished":
            cells.append(msg.to_cell())
        elif msg.type == "RequestFailed":
            failures.append(msg.reason)
            break
    assert not failures, failures
    return {c.backend: c for c in cells}


def test_gpt2_prefill_smoke(client):
    spec = SweepSpec(mode="prefill", model="gpt2", device="cuda", dtypes=("bf16",), seqs=(1024,), batch=4,
                     backends=("standard", "sdpa-flash", "sdpa-cudnn", "fa4"), reps=10, warmup_ms=50)
    cells = _cells(client, spec)
    std = cells["standard"]
    assert std.status == "ok", std.reason
    assert std.extra["weights"] == "random" and std.extra["build_s"] > 0
    for name in ("sdpa-flash", "sdpa-cudnn", "fa4"):
        cell = cells[name]
        if cell.status == "unsupported":
            assert cell.reason  # e.g. flash-attn-4 not installed: say so, do not fail
            continue
        assert cell.status == "ok", (name, cell.reason)
        assert cell.dispatch_ok is not False, cell.kernels
        assert cell.parity.passed, (name, cell.parity)
        assert cell.peak_alloc_bytes is not None
        # Fused attention never materializes the S x S scores eager does.
        assert cell.peak_alloc_bytes < std.peak_alloc_bytes, (name, cell.peak_alloc_bytes, std.peak_alloc_bytes)
    assert cells["sdpa-flash"].status == "ok"


def test_llama_decode_smoke(client):
    spec = SweepSpec(mode="decode", model="llama-3.2-1b", device="cuda", dtypes=("bf16",), seqs=(512,),
                     new_tokens=16, backends=("standard", "sdpa-flash"), reps=16, warmup_ms=50)
    cells = _cells(client, spec)
    for cell in cells.values():
        assert cell.status == "ok", cell.reason
        assert cell.extra["ms_per_token"] > 0
        assert cell.parity.passed, cell.parity
