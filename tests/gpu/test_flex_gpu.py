"""flex's compiles on a real GPU, through the real worker (-m gpu): each length compiles once
into flashtui's compile cache, and a second worker on the same cache compiles nothing again.

A cold cache (an empty FLASHTUI_CACHE_DIR), lengths on and off the 128 block; every cell
passes parity and dispatch. The second worker's first call per length is a cache load
(FX graph + Triton caches under the cache dir), a fraction of the cold compile.
"""

from __future__ import annotations

import pytest

from flashtui.client.worker_client import WorkerClient
from flashtui.core.spec import SweepSpec

pytestmark = pytest.mark.gpu

SEQS = (512, 1024, 2048, 1000)


def _run(backward: bool) -> dict:
    client = WorkerClient()
    client.start()
    try:
        spec = SweepSpec(device="cuda", batch=1, heads=16, head_dim=128, reps=10, warmup_ms=20.0,
                         seqs=SEQS, dtypes=("bf16",), backends=("flex",), backward=backward)
        cells = [m.to_cell() for m in client.run_sweep(spec) if m.type == "CellFinished"]
    finally:
        client.close()
    for cell in cells:
        assert cell.status == "ok", (cell.seq, cell.reason)
        assert cell.parity.passed, (cell.seq, cell.parity)
        assert cell.dispatch_ok is True, (cell.seq, cell.kernels)
    return {c.seq: c.extra["compile_s"] for c in cells}


@pytest.mark.parametrize("backward", [False, True])
def test_a_second_run_loads_every_length_from_the_compile_cache(backward, tmp_path, monkeypatch):
    monkeypatch.setenv("FLASHTUI_CACHE_DIR", str(tmp_path))
    cold = _run(backward)
    warm = _run(backward)
    assert set(cold) == set(warm) == set(SEQS)
    for seq in SEQS[1:]:  # the first length also pays dynamo's and inductor's start-up, both runs
        assert warm[seq] < 0.5 * cold[seq], (seq, warm[seq], cold[seq])
