"""Attention variants on CPU: the work counted, the oracle, every backend path that runs here.

The oracle is checked against an independent computation: a mask written out position
by position from the variant's definition, and a float64 softmax done by hand. The
FlashAttention paths (varlen, unpad, paged) cannot run on a CPU, so their packing and
page tables are driven through a stand-in module with FlashAttention's documented
interface (cu_seqlens, bottom-right causality, window_size, softcap, page_table).
"""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace

import pytest
import torch

from flashtui.core import variants
from flashtui.core.results import attention_flops as dense_flops
from flashtui.core.spec import CellKey, SpecError, SweepSpec
from flashtui.engine import variants as vp
from flashtui.engine.backends import REGISTRY, DeviceInfo, Shape
from flashtui.engine.kernel import KernelRunner
from flashtui.engine.parity import ParityOracle, error_metrics, real_rows
from tests.unit.flash_standin import fake_flash_attn

CPU = DeviceInfo("cpu", "cpu")
SEQ = 64


def layout(seq: int = SEQ, batch: int = 2, causal: bool = True, seed: int = 3, **fields) -> variants.Layout:
    base = dict(window=None, softcap=None, docs=None, pad=None, q_len=None, page_size=None)
    base.update(fields)
    return variants.layout_for(SimpleNamespace(batch=batch, causal=causal, seed=seed, **base), seq)


CASES = {
    "window": dict(window=9),
    "softcap": dict(softcap=0.7),
    "docs": dict(docs=4),
    "pad": dict(pad=0.3),
    "decode": dict(q_len=1),
    "q-block": dict(q_len=5),
    "window+decode": dict(window=7, q_len=1),
    "pad+decode": dict(pad=0.4, q_len=1),
    "window+docs+softcap": dict(window=6, docs=3, softcap=0.5),
    "window+pad": dict(window=5, pad=0.25),
}


# ----------------------------------------------------------- the definition, by hand
def sees(lay: variants.Layout, row: int, query: int, key: int) -> bool:
    """Whether query ``query`` (index among the q_len queries) of ``row`` sees key ``key``,
    written from the definitions in flashtui.core.variants (not from the engine's masks)."""
    pos = lay.seq - lay.q_len + query
    if lay.valid_lengths is not None:
        start = lay.seq - lay.valid_lengths[row]
        if pos < start:
            return key == pos  # a padding query sees only itself (never compared)
        if key < start:
            return False
    if lay.causal and key > pos:
        return False
    if lay.window is not None and pos - key >= lay.window:
        return False
    if lay.doc_lengths is not None:
        bounds, acc = [], 0
        for n in lay.doc_lengths[row]:
            bounds.append((acc, acc + n))
            acc += n
        doc = [i for i, (a, b) in enumerate(bounds) if a <= pos < b][0]
        if not bounds[doc][0] <= key < bounds[doc][1]:
            return False
    return True


def hand_mask(lay: variants.Layout) -> torch.Tensor:
    return torch.tensor([[[sees(lay, b, i, j) for j in range(lay.seq)] for i in range(lay.q_len)]
                         for b in range(lay.batch)])[:, None]


def hand_attention(q, k, v, lay: variants.Layout) -> torch.Tensor:
    """float64 attention with an explicit exp / sum softmax over the hand-written mask."""
    q, k, v = (t.double() for t in (q, k, v))
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if lay.softcap is not None:
        scores = lay.softcap * torch.tanh(scores / lay.softcap)
    keep = hand_mask(lay)
    weights = torch.where(keep, torch.exp(scores - scores.amax(-1, keepdim=True)), torch.zeros(()).double())
    return (weights / weights.sum(-1, keepdim=True)) @ v


def real(lay: variants.Layout) -> torch.Tensor:
    """(B, 1, Q, 1) True for real (non-padding) query rows, by hand."""
    rows = [[lay.seq - lay.q_len + i >= lay.seq - (lay.valid_lengths[b] if lay.valid_lengths else lay.seq)
             for i in range(lay.q_len)] for b in range(lay.batch)]
    return torch.tensor(rows)[:, None, :, None]


def inputs(lay: variants.Layout, heads: int = 4, kv_heads: int = 2, dim: int = 16, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(lay.batch, heads, lay.q_len, dim, generator=gen)
    k = torch.randn(lay.batch, kv_heads, lay.seq, dim, generator=gen)
    v = torch.randn(lay.batch, kv_heads, lay.seq, dim, generator=gen)
    return q, k, v


# ----------------------------------------------------------- counting the work
@pytest.mark.parametrize("name", list(CASES))
def test_visible_pairs_match_a_count_of_the_hand_mask(name):
    lay = layout(**CASES[name])
    mask = hand_mask(lay)[:, 0]
    valid = real(lay)[:, 0, :, 0]
    counted = float((mask & valid[:, :, None]).sum())
    if lay.causal:
        counted -= 0.5 * float(valid.sum())  # FlashAttention's convention: the diagonal counts half
    assert variants.visible_pairs(lay) == pytest.approx(counted)


def test_dense_layout_counts_exactly_what_flashtui_counted_before():
    for causal in (True, False):
        lay = layout(causal=causal)
        assert lay.is_dense
        assert variants.attention_flops(lay, 4, 16, False) == dense_flops(2, 4, SEQ, 16, causal, False)
        assert variants.attention_flops(lay, 4, 16, True) == dense_flops(2, 4, SEQ, 16, causal, True)


@pytest.mark.parametrize("name", ["window", "docs", "decode", "pad"])
def test_flops_are_below_the_dense_count_where_the_variant_skips_work(name):
    lay = layout(**CASES[name])
    dense = dense_flops(lay.batch, 4, lay.seq, 16, True, False)
    assert variants.attention_flops(lay, 4, 16, False) < dense


def test_softcap_does_the_dense_work_and_decode_reads_the_cache_once():
    assert variants.visible_pairs(layout(softcap=30.0)) == variants.dense_pairs(layout())
    lay = layout(q_len=1)
    q_tokens, k_tokens = variants.needed_tokens(lay)
    assert (q_tokens, k_tokens) == (2, 2 * SEQ)
    # fp16, H=8, KV=2, D=64: q and o are 2 rows, k and v the whole cache.
    assert variants.min_hbm_bytes(lay, 8, 2, 64, 2, False) == (2 * 2 * 8 * 64 + 2 * 2 * SEQ * 2 * 64) * 2
    # A window: a decode step reads only its last N keys.
    assert variants.needed_tokens(layout(q_len=1, window=10)) == (2, 20)


def test_memory_bound_is_judged_from_the_ridge_point():
    lay = layout(seq=4096, batch=8, q_len=1)
    flops = variants.attention_flops(lay, 32, 128, False)
    n_bytes = variants.min_hbm_bytes(lay, 32, 8, 128, 2, False)
    assert variants.judged_on(flops, n_bytes, 989.4, 4800.0, kv_cache=True) == "memory"
    prefill = layout(seq=4096, batch=1)
    flops = variants.attention_flops(prefill, 32, 128, False)
    n_bytes = variants.min_hbm_bytes(prefill, 32, 8, 128, 2, False)
    assert variants.judged_on(flops, n_bytes, 989.4, 4800.0, kv_cache=False) == "compute"
    assert variants.judged_on(flops, n_bytes, None, None, kv_cache=False) is None


def test_document_lengths_come_from_the_seed():
    a = variants.doc_lengths(1000, 8, seed=0, row=0)
    assert a == variants.doc_lengths(1000, 8, seed=0, row=0)
    assert a != variants.doc_lengths(1000, 8, seed=1, row=0)
    assert sum(a) == 1000 and len(a) == 8 and min(a) >= 1
    assert variants.doc_lengths(8, 8, 0, 0) == (1,) * 8


# ----------------------------------------------------------- the oracle
@pytest.mark.parametrize("name", list(CASES))
def test_oracle_matches_an_independent_dense_masked_computation(name):
    lay = layout(**CASES[name])
    q, k, v = inputs(lay)
    shape = Shape(lay.batch, 4, 2, lay.seq, 16, "fp32", lay.causal, False, layout=lay)
    # A tiny budget: the oracle works in chunks of a few rows, each with its own mask rows.
    oracle = ParityOracle(q, k, v, None, shape, budget_bytes=4096)
    expected = real_rows(hand_attention(q, k, v, lay), real(lay))
    assert torch.allclose(oracle.out64, expected, atol=1e-12, rtol=0)
    # And the variant matters: plain causal attention over the same queries is far from it
    # (q_len alone is that plain attention; softcap changes little at these scores).
    plain = hand_attention(q, k, v, layout(q_len=lay.q_len))
    if name not in ("softcap", "decode", "q-block"):
        assert error_metrics(real_rows(plain, real(lay)), expected)["max_abs"] > 1e-3


def test_oracle_gradients_follow_the_variant():
    lay = layout(window=6, pad=0.25)
    q, k, v = inputs(lay)
    dout = torch.randn(q.shape, generator=torch.Generator().manual_seed(5)) * real(lay)
    shape = Shape(lay.batch, 4, 2, lay.seq, 16, "fp32", True, True, layout=lay)
    oracle = ParityOracle(q, k, v, dout, shape, budget_bytes=4096)
    leaves = [t.double().requires_grad_(True) for t in (q, k, v)]
    out = hand_attention(*leaves, lay)
    grads = torch.autograd.grad(out, leaves, dout.double())
    for mine, theirs in zip(oracle.grads64, (real_rows(grads[0], real(lay)), *grads[1:])):
        assert torch.allclose(mine, theirs, atol=1e-10)


# ----------------------------------------------------------- kernel mode, real backends
def run_cells(backends, **fields):
    spec = SweepSpec(device="cpu", seqs=(128,), dtypes=("fp32",), batch=2, heads=4, kv_heads=2,
                     head_dim=32, reps=3, warmup_ms=0.0, **fields)
    runner = KernelRunner(spec, CPU)
    try:
        return {b: runner.run_cell(CellKey(b, 128, "fp32")) for b in backends}
    finally:
        runner.release()


CPU_BACKENDS = ("standard", "sdpa", "sdpa-math", "sdpa-flash")
RUN_CASES = {name: fields for name, fields in CASES.items() if "softcap" not in fields}


@pytest.mark.parametrize("name", list(RUN_CASES))
def test_every_variant_runs_on_cpu_and_passes_parity(name):
    cells = run_cells(CPU_BACKENDS, **RUN_CASES[name])
    dense = dense_flops(2, 4, 128, 32, True, False)
    for backend, cell in cells.items():
        assert cell.status == "ok", (backend, cell.reason)
        assert cell.parity.passed, (backend, cell.parity)
        info = cell.extra["variant"]
        assert info["path"] in ("native", "mask") and info["how"]
        assert cell.flops == variants.attention_flops(variants.layout_for(
            SweepSpec(device="cpu", seqs=(128,), batch=2, **RUN_CASES[name]), 128), 4, 32, False)
        assert cell.flops < dense
        assert cell.tflops == pytest.approx(cell.flops / (cell.median_ms * 1e-3) / 1e12)
        assert cell.bytes and cell.gbps == pytest.approx(cell.bytes / (cell.median_ms * 1e-3) / 1e9)
        assert cell.pct_bw_peak is None  # a CPU has no HBM peak in the table: NA


def test_softcap_runs_on_standard_and_sdpa_says_why_not():
    cells = run_cells(CPU_BACKENDS, softcap=0.5)
    assert cells["standard"].status == "ok" and cells["standard"].parity.passed
    assert cells["standard"].extra["variant"]["path"] == "native"
    for name in ("sdpa", "sdpa-math", "sdpa-flash"):
        assert cells[name].status == "unsupported"
        assert "no tanh soft-capping: use flex (score_mod), fa4 or standard" in cells[name].reason


def test_decode_cells_carry_gbps_and_are_judged_on_bandwidth():
    cells = run_cells(CPU_BACKENDS, q_len=1)
    for cell in cells.values():
        assert cell.gbps and cell.gbps > 0
        assert cell.bound == "memory"
        assert cell.extra["variant"]["path"] == "native"


def test_mask_paths_record_their_mask_and_theory_keeps_the_scores():
    cells = run_cells(("standard", "sdpa", "sdpa-flash"), window=16)
    standard, flash = cells["standard"], cells["sdpa-flash"]
    assert standard.extra["variant"]["path"] == "mask"
    assert standard.extra["variant"]["mask_bytes"] == 128 * 128  # one mask, broadcast over rows
    # standard still materializes Q x S scores with a window; a fused kernel does not.
    assert standard.theory_bytes > 2 * 2 * 4 * 128 * 128 * 4
    assert flash.theory_bytes < standard.theory_bytes / 4
    # Plain sdpa names the kernel the mask sent it to.
    assert cells["sdpa"].extra["variant"]["kernel"] == cells["sdpa"].extra["sdpa_kernel"].lower().replace(
        "flash_attention", "sdpa-flash").replace("math", "sdpa-math")


def test_paged_cache_is_refused_where_no_backend_has_one():
    cells = run_cells(CPU_BACKENDS, q_len=1, page_size=16)
    for cell in cells.values():
        assert cell.status == "unsupported" and "fa4" in cell.reason


def test_forward_backward_with_a_variant_passes_gradient_parity():
    spec = SweepSpec(device="cpu", seqs=(128,), dtypes=("fp32",), batch=2, heads=4, kv_heads=2,
                     head_dim=32, reps=2, warmup_ms=0.0, backward=True, window=24, pad=0.2)
    runner = KernelRunner(spec, CPU)
    for backend in ("standard", "sdpa-math", "sdpa-flash"):
        cell = runner.run_cell(CellKey(backend, 128, "fp32"))
        assert cell.status == "ok", cell.reason
        assert cell.parity.passed and set(cell.parity.grads) == {"dq", "dk", "dv"}, cell.parity


# ----------------------------------------------------------- flex, eager on CPU
@pytest.mark.parametrize("name", list(CASES))
def test_flex_mask_and_score_mods_match_the_oracle(name, monkeypatch):
    """flex's mask_mod / score_mod / block mask, run by flex's eager path on CPU (the GPU
    compiles the same functions)."""
    from torch.nn.attention.flex_attention import flex_attention

    from flashtui.engine import flex_compile

    monkeypatch.setitem(flex_compile._COMPILED, "inductor", flex_attention)
    lay = layout(seq=128, **CASES[name])
    q, k, v = inputs(lay, dim=16)
    shape = Shape(lay.batch, 4, 2, 128, 16, "fp32", True, False, layout=lay)
    prepared = REGISTRY["flex"].prepare(q, k, v, shape)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = prepared.forward()
    expected = real_rows(hand_attention(q, k, v, lay), real(lay))
    assert (real_rows(out.double(), real(lay)) - expected).abs().max() < 1e-5
    assert vp.plan("flex", lay).path == "native"


# ----------------------------------------------------------- FlashAttention paths
FA_CASES = dict(CASES, paged=dict(q_len=1, page_size=16), **{"paged+window": dict(q_len=3, page_size=24,
                                                                                  window=20)})


@pytest.mark.parametrize("name", list(FA_CASES))
def test_fa4_paths_pack_and_unpack_right(name, monkeypatch):
    """fa4's varlen (documents), unpad (padding), short-q and paged paths, through a stand-in
    with FlashAttention's interface: the output must be the oracle's."""
    monkeypatch.setitem(sys.modules, "flash_attn.cute", fake_flash_attn())
    lay = layout(seq=128, **FA_CASES[name])
    q, k, v = inputs(lay, dim=16)
    shape = Shape(lay.batch, 4, 2, 128, 16, "fp32", True, False, layout=lay)
    prepared = REGISTRY["fa4"].prepare(q, k, v, shape)
    out = prepared.to_bhsd(prepared.forward())
    expected = real_rows(hand_attention(q, k, v, lay), real(lay))
    assert (real_rows(out.double(), real(lay)) - expected).abs().max() < 1e-5
    used = vp.features(lay)
    kwargs = vp.flash_kwargs(lay, "fa4", False, capability=(10, 0))
    if "window" in used:
        assert kwargs["window_size"] == (lay.window - 1, 0)
    if lay.q_len < lay.seq:
        assert kwargs["num_splits"] == 0  # Blackwell: the library's split-KV heuristic for decode
        # Hopper: flash-attn-4 asserts "SplitKV not supported on SM 9.0" (seen on the H200),
        # so no num_splits is passed there (the library's default, one split).
        assert "num_splits" not in vp.flash_kwargs(lay, "fa4", False, capability=(9, 0))
        assert vp.flash_kwargs(lay, "fa3", False, capability=(9, 0))["num_splits"] == 0


def test_fa4_varlen_gradients_reach_the_padded_inputs(monkeypatch):
    monkeypatch.setitem(sys.modules, "flash_attn.cute", fake_flash_attn())
    lay = layout(seq=128, pad=0.3)
    q, k, v = inputs(lay, dim=16)
    shape = Shape(lay.batch, 4, 2, 128, 16, "fp32", True, True, layout=lay)
    prepared = REGISTRY["fa4"].prepare(q, k, v, shape)
    out = prepared.forward()
    grads = torch.autograd.grad(out.sum(), prepared.inputs)
    assert [prepared.to_bhsd(g).shape for g in grads] == [q.shape, k.shape, v.shape]
    # Padding keys get no gradient: nothing real attends to them.
    assert float(prepared.to_bhsd(grads[1])[:, :, :38].abs().max()) == 0.0


def test_a_flash_attn_build_without_the_keywords_is_unsupported_with_a_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "flash_attn.cute", fake_flash_attn(with_paging=False))
    lay = layout(seq=128, q_len=1, page_size=16)
    q, k, v = inputs(lay, dim=16)
    shape = Shape(lay.batch, 4, 2, 128, 16, "fp32", True, False, layout=lay)
    with pytest.raises(vp.SignatureMismatch, match="flash_attn_varlen_func takes no 'page_table', 'seqused_k'"):
        REGISTRY["fa4"].prepare(q, k, v, shape)


def test_the_runner_turns_a_signature_mismatch_into_an_unsupported_cell(monkeypatch):
    from flashtui.engine import backends

    monkeypatch.setitem(sys.modules, "flash_attn.cute", fake_flash_attn(with_paging=False))
    fa4 = REGISTRY["fa4"]
    monkeypatch.setitem(backends.REGISTRY, "fa4", backends.Backend(
        fa4.name, fa4.family, fa4.layout, fa4.description, lambda d: (True, None),
        lambda s, d: (True, None), fa4.prepare, kernel_patterns=(r".",)))
    cell = run_cells(("fa4",), q_len=1, page_size=16)["fa4"]
    assert cell.status == "unsupported"
    assert "flash_attn.cute.flash_attn_varlen_func takes no 'page_table'" in cell.reason
    assert "upgrade it" in cell.reason


# ----------------------------------------------------------- the spec
@pytest.mark.parametrize("fields, needle", [
    (dict(window=0), "--window must be a positive integer, got 0"),
    (dict(docs=200, seqs=(128,)), "--docs 200 is larger than seq 128"),
    (dict(pad=1.0), "--pad must be a fraction of each row in [0, 1)"),
    (dict(pad=-0.1), "--pad must be a fraction"),
    (dict(q_len=600, seqs=(512,)), "--q-len 600 is larger than seq 512"),
    (dict(softcap=-1), "--softcap must be a positive number (Gemma-2 uses 50), got -1"),
    (dict(softcap=float("nan")), "--softcap must be a positive number"),
    (dict(page_size=0), "--page-size must be a positive integer"),
    (dict(window=8, causal=False), "--window is causal sliding-window attention"),
    (dict(docs=2, q_len=1), "--docs and --q-len do not combine"),
    (dict(page_size=16, pad=0.1), "--page-size does not combine"),
    (dict(mode="prefill", model="tiny-gpt2", q_len=1), "--q-len: kernel mode only"),
])
def test_bad_variant_is_one_line(fields, needle):
    with pytest.raises(SpecError) as info:
        SweepSpec(**fields)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_variant_round_trips_and_is_described():
    spec = SweepSpec(seqs=(4096, 32768), window=4096, softcap="50", q_len="1", page_size=256)
    assert spec.softcap == 50.0 and spec.q_len == 1
    assert SweepSpec.from_dict(spec.to_dict()) == spec
    assert spec.variant == "window 4096, softcap 50, q-len 1, page-size 256"
    assert spec.notes() == ["--window 4096 is at least seq 4096: a query already sees every earlier key "
                            "there, so those cells are plain causal attention"]
    assert SweepSpec().variant == "dense" and SweepSpec().notes() == []
    # Model mode keeps --pad (through the model's attention mask).
    assert SweepSpec(mode="prefill", model="tiny-gpt2", pad=0.3).pad == 0.3
