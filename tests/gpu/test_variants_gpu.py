"""Attention variants on a real CUDA GPU, through the real worker (run on the device: -m gpu).

Every backend that runs a variant must pass parity against the fp64 oracle with the same
variant; the ones that cannot must say why (PyTorch's words for a forced SDPA kernel);
decode cells are judged on bandwidth against the GPU's HBM peak.
"""

from __future__ import annotations

import pytest

from flashtui.client.worker_client import WorkerClient
from flashtui.core import variants
from flashtui.core.results import Cell, attention_flops
from flashtui.core.spec import SweepSpec

pytestmark = pytest.mark.gpu

BASE = dict(device="cuda", dtypes=("bf16",), heads=16, head_dim=128, reps=10, warmup_ms=20.0)
RUNNING = ("native", "mask")


@pytest.fixture(scope="module")
def client():
    c = WorkerClient()
    c.start()
    yield c
    c.close()


def sweep(client, **fields) -> dict[str, Cell]:
    spec = SweepSpec(**{**BASE, **fields})
    available = client.ready.available(spec.device)
    cells = [m.to_cell() for m in client.run_sweep(spec, spec.cells(available))
             if m.type == "CellFinished"]
    return {c.backend: c for c in cells}


def assert_ran(cell: Cell) -> None:
    assert cell.status == "ok", (cell.backend, cell.reason)
    assert cell.parity is not None and cell.parity.passed, (cell.backend, cell.parity)
    assert cell.dispatch_ok is not False, (cell.backend, cell.kernels)
    assert cell.extra["variant"]["path"] in RUNNING


def test_window_runs_natively_on_fused_kernels_and_through_a_mask_elsewhere(client):
    cells = sweep(client, seqs=(4096,), window=512, backends=("standard", "sdpa", "sdpa-flash",
                                                               "sdpa-efficient", "flex", "fa4"))
    dense = attention_flops(1, 16, 4096, 128, True, False)
    for name in ("standard", "sdpa", "sdpa-efficient", "flex", "fa4"):
        if name in cells and cells[name].status != "unsupported":
            assert_ran(cells[name])
            assert cells[name].flops < dense / 4
    assert cells["flex"].extra["variant"]["path"] == "native"
    if "fa4" in cells and cells["fa4"].status == "ok":
        assert cells["fa4"].extra["variant"]["path"] == "native"
        # A native window skips the work it does not need: faster than the masked SDPA.
        assert cells["fa4"].median_ms < cells["sdpa-efficient"].median_ms
    # A forced flash kernel takes no mask: PyTorch's own words, never a silent fallback.
    flash = cells["sdpa-flash"]
    assert flash.status == "unsupported" and "PyTorch" in flash.reason
    # Plain sdpa names the kernel the mask sent it to.
    assert cells["sdpa"].extra["variant"].get("kernel") not in (None, "sdpa-flash")


def test_softcap_runs_on_flex_fa4_standard_and_sdpa_says_why_not(client):
    cells = sweep(client, seqs=(2048,), softcap=30.0, backends=("standard", "sdpa-efficient", "flex", "fa4"))
    for name in ("standard", "flex", "fa4"):
        if name in cells and cells[name].status != "unsupported":
            assert_ran(cells[name])
    assert cells["sdpa-efficient"].status == "unsupported"
    assert "soft-capping" in cells["sdpa-efficient"].reason


def test_documents_run_varlen_on_fa4_and_as_a_document_mask_on_flex(client):
    cells = sweep(client, seqs=(4096,), docs=6, backends=("standard", "sdpa-efficient", "flex", "fa4"))
    for name, cell in cells.items():
        if cell.status != "unsupported":
            assert_ran(cell)
            assert cell.flops < attention_flops(1, 16, 4096, 128, True, False)
    lengths = cells["flex"].extra["variant"]["doc_lengths"]
    assert len(lengths) == 1 and len(lengths[0]) == 6 and sum(lengths[0]) == 4096


def test_padded_batch_through_unpad_and_through_a_mask(client):
    cells = sweep(client, seqs=(2048,), batch=4, pad=0.3, backends=("standard", "sdpa", "sdpa-efficient",
                                                                   "flex", "fa4"))
    for cell in cells.values():
        if cell.status != "unsupported":
            assert_ran(cell)
    if "fa4" in cells and cells["fa4"].status == "ok":
        assert "unpad" in cells["fa4"].extra["variant"]["how"]


def test_decode_is_judged_on_bandwidth_paged_where_supported(client):
    contiguous = sweep(client, seqs=(8192,), batch=4, heads=32, kv_heads=8, q_len=1,
                       backends=("standard", "sdpa", "sdpa-flash", "sdpa-efficient", "flex", "fa4"))
    for cell in contiguous.values():
        if cell.status == "unsupported":
            continue
        assert_ran(cell)
        assert cell.bound == "memory"
        assert cell.gbps and cell.pct_bw_peak is not None and 0 < cell.pct_bw_peak < 100
    # The least traffic is the KV cache (plus one query row): 2 x B x S x KV x D x 2 bytes.
    # (PyTorch's memory-efficient kernel refuses GQA: its own words say so.)
    kv = 2 * 4 * 8192 * 8 * 128 * 2
    assert kv <= contiguous["sdpa-flash"].bytes < kv * 1.01
    if contiguous["sdpa-efficient"].status == "unsupported":
        assert "PyTorch" in contiguous["sdpa-efficient"].reason
    paged = sweep(client, seqs=(8192,), batch=4, heads=32, kv_heads=8, q_len=1, page_size=256,
                  backends=("sdpa-efficient", "fa4"))
    assert paged["sdpa-efficient"].status == "unsupported" and "fa4" in paged["sdpa-efficient"].reason
    if "fa4" in paged and paged["fa4"].status != "unsupported":
        assert_ran(paged["fa4"])
        assert paged["fa4"].extra["variant"]["page_size"] == 256


def test_forward_backward_with_a_window(client):
    cells = sweep(client, seqs=(2048,), window=256, backward=True, backends=("sdpa-efficient", "flex", "fa4"))
    for cell in cells.values():
        if cell.status != "unsupported":
            assert_ran(cell)
            assert set(cell.parity.grads) == {"dq", "dk", "dv"}


def test_memory_theory_per_variant(client):
    """A window removes no S x S from standard's theory; a fused kernel never needs it."""
    cells = sweep(client, seqs=(8192,), window=1024, backends=("standard", "flex"))
    standard, flex = cells["standard"], cells["flex"]
    assert standard.theory_bytes >= 2 * 16 * 8192 * 8192 * 2
    assert flex.theory_bytes < 64 << 20
    assert_ran(flex)
    assert flex.peak_alloc_bytes < standard.peak_alloc_bytes / 10


def test_model_mode_runs_the_models_own_window(client):
    spec = SweepSpec(mode="prefill", model="tiny-mistral", device="cuda", seqs=(256,), dtypes=("bf16",),
                     batch=2, reps=5, warmup_ms=10.0, backends=("standard", "sdpa", "flex", "fa4"))
    available = client.ready.available(spec.device)
    cells = [m.to_cell() for m in client.run_sweep(spec, spec.cells(available))
             if m.type == "CellFinished"]
    for cell in cells:
        assert cell.extra["variant"]["sliding_window"] == 32
        if cell.status != "unsupported":
            assert cell.status == "ok" and cell.parity.passed, (cell.backend, cell.reason, cell.parity)


def test_flops_and_bytes_match_the_core_counts(client):
    cells = sweep(client, seqs=(2048,), window=300, q_len=64, backends=("sdpa-efficient",))
    cell = cells["sdpa-efficient"]
    spec = SweepSpec(**{**BASE, "seqs": (2048,), "window": 300, "q_len": 64})
    layout = variants.layout_for(spec, 2048)
    assert cell.flops == variants.attention_flops(layout, 16, 128, False)
    assert cell.bytes == variants.min_hbm_bytes(layout, 16, 16, 128, 2, False)
