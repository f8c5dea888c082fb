"""flex's one dynamic-length compile on a real GPU, through the real worker (-m gpu).

A cold compile cache (an empty FLASHTUI_CACHE_DIR): the first length compiles, later
multiples of 128 reuse that graph, a length off the block gets a graph of its own with
bounds masks (IS_DIVISIBLE off), and every cell passes parity and dispatch.
"""

from __future__ import annotations

import pytest

from flashtui.client.worker_client import WorkerClient
from flashtui.core.spec import SweepSpec

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("backward", [False, True])
def test_flex_compiles_once_for_every_multiple_of_the_block(backward, tmp_path, monkeypatch):
    monkeypatch.setenv("FLASHTUI_CACHE_DIR", str(tmp_path))
    client = WorkerClient()
    client.start()
    try:
        spec = SweepSpec(device="cuda", batch=1, heads=16, head_dim=128, reps=10, warmup_ms=20.0,
                         seqs=(512, 1024, 2048, 4096, 1000), dtypes=("bf16",), backends=("flex",),
                         backward=backward)
        cells = [m.to_cell() for m in client.run_sweep(spec) if m.type == "CellFinished"]
    finally:
        client.close()
    by_seq = {c.seq: c for c in cells}
    assert set(by_seq) == {512, 1024, 2048, 4096, 1000}
    for cell in cells:
        assert cell.status == "ok", (cell.seq, cell.reason)
        assert cell.parity.passed, (cell.seq, cell.parity)
        assert cell.dispatch_ok is True, (cell.seq, cell.kernels)
    first = by_seq[512].extra["compile_s"]
    for seq in (1024, 2048, 4096):
        # The graph compiled at 512 serves them: what is left is dynamo's guard check.
        assert by_seq[seq].extra["compile_s"] < 0.3 * first, (seq, by_seq[seq].extra["compile_s"], first)
