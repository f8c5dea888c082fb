"""The memory guard on a real GPU (H200 acceptance rows; run on the device: -m gpu).

1. Standard attention at S=131072 bf16 (16 heads, head_dim 128) must materialize
   2 x 16 x 131072^2 bf16 scores = 1 TiB: the guard makes it an ``oom`` cell in under a
   second without asking CUDA (no allocation, no CUDA OOM), and the same worker then
   measures a fused backend at the same length.
2. A borderline cell: this test process holds GPU memory so that the free
   memory is just above what the guard predicts, the guard lets the cell through,
   CUDA refuses it, and the cell is still an ``oom`` result (CUDA's own message); the
   worker goes on. The free memory is stepped up from the prediction until the guard
   passes the cell, so the test does not depend on exact allocator details.
"""

from __future__ import annotations

import pytest

from flashtui.client.worker_client import WorkerClient
from flashtui.core.results import Cell
from flashtui.core.spec import CellKey, SweepSpec

pytestmark = pytest.mark.gpu

GIB = 1 << 30
MIB = 1 << 20


def _cells(client: WorkerClient, spec: SweepSpec, keys: list[CellKey]) -> list[Cell]:
    return [m.to_cell() for m in client.run_sweep(spec, keys) if m.type == "CellFinished"]


@pytest.fixture(scope="module")
def client():
    c = WorkerClient(cell_timeout_s=300)
    c.start()
    yield c
    c.close()


def test_standard_at_131072_bf16_is_oom_in_under_a_second_without_a_cuda_oom(client):
    spec = SweepSpec(device="cuda", seqs=(131072,), dtypes=("bf16",), batch=1, heads=16, head_dim=128,
                     reps=3, warmup_ms=0, parity=False)
    std, flash = _cells(client, spec, [CellKey("standard", 131072, "bf16"), CellKey("sdpa-flash", 131072, "bf16")])
    assert std.status == "oom", std
    assert std.reason.startswith("needs ") and "GiB free (free GPU memory)" in std.reason, std.reason
    assert "out of memory" not in std.reason.lower()  # the guard answered, not CUDA
    assert std.duration_s < 1.0, std.duration_s
    assert std.extra["predicted_bytes"] > 1000 * GIB and std.theory_bytes >= 1024 * GIB
    assert std.extra["memory_guard"] == "free GPU memory"
    # The worker's context is healthy: a fused kernel at the same length is measured.
    assert flash.status == "ok" and flash.median_ms > 0, (flash.status, flash.reason)


# Cells whose real peak should exceed the guard's lower-bound prediction: sdpa-math's
# causal mask is S x S in the dtype (the guard counts S x S booleans), flash backward
# keeps an fp32 dq accumulator. Any one showing the window proves the point.
BORDERLINE_CANDIDATES = [
    (CellKey("sdpa-math", 32768, "bf16"), dict(heads=4, backward=False)),
    (CellKey("sdpa-flash", 65536, "bf16"), dict(heads=16, backward=True)),
    (CellKey("standard", 32768, "bf16"), dict(heads=4, backward=False)),
]
STEP_MIB = 64
MAX_EXTRA_MIB = 2048


def test_a_borderline_cell_the_guard_lets_through_and_cuda_refuses_is_still_oom(client):
    import torch

    from flashtui.engine.backends import REGISTRY, DeviceInfo
    from flashtui.engine.kernel import KernelRunner

    tried = []
    for key, shape in BORDERLINE_CANDIDATES:
        spec = SweepSpec(device="cuda", seqs=(key.seq,), dtypes=(key.dtype,), batch=1, head_dim=128,
                         reps=3, warmup_ms=0, parity=False, **shape)
        runner = KernelRunner(spec, DeviceInfo("cuda", torch.cuda.get_device_name()))
        need = runner.predicted_bytes(REGISTRY[key.backend], runner.shape(key), key)
        for extra_mib in range(0, MAX_EXTRA_MIB + 1, STEP_MIB):
            torch.cuda.empty_cache()
            free, _total = torch.cuda.mem_get_info()
            hold = free - need - extra_mib * MIB
            assert hold > 0, "the GPU is too small for this test"
            blocker = torch.empty(hold, dtype=torch.uint8, device="cuda")  # another process's memory
            try:
                (cell,) = _cells(client, spec, [key])
            finally:
                del blocker
                torch.cuda.empty_cache()
            tried.append((key.label(), extra_mib, cell.status, (cell.reason or "")[:70]))
            if cell.status == "oom" and (cell.reason or "").startswith("needs "):
                continue  # still below the prediction as the worker sees it: step up
            if cell.status == "ok":
                break  # the prediction covers this cell's real peak: no window, next candidate
            assert cell.status == "oom", tried
            assert "out of memory" in cell.reason.lower(), cell.reason  # CUDA's own refusal, as a result
            # The same worker goes on: with the GPU free again the cell is measured.
            (again,) = _cells(client, spec, [key])
            assert again.status == "ok" and again.median_ms > 0, (again.status, again.reason)
            return
    raise AssertionError(f"no candidate showed a size between the guard's prediction and CUDA's "
                         f"limit: {tried}")
