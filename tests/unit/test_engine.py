"""Engine parts in-process, on real torch (CPU)."""


import pytest
import torch
import torch.nn.functional as F

from flashtui.engine import dispatch
from flashtui.engine.backends import REGISTRY, DeviceInfo, Shape, standard_attention, theory_bytes
from flashtui.engine.parity import ParityOracle, chunked_attention
from flashtui.engine.timing import summarize, time_calls
from flashtui.core.results import attention_flops

CPU = DeviceInfo("cpu", "test cpu")


def _qkv(b=1, h=4, kvh=4, s=64, d=32, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, s, d, generator=g, dtype=dtype),
            torch.randn(b, kvh, s, d, generator=g, dtype=dtype),
            torch.randn(b, kvh, s, d, generator=g, dtype=dtype))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_standard_matches_sdpa_math_with_gqa(causal, kv_heads):
    q, k, v = _qkv(kvh=kv_heads)
    ours = standard_attention(q, k, v, causal)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=kv_heads != 4)
    rel = (torch.linalg.vector_norm(ours - ref) / torch.linalg.vector_norm(ref)).item()
    assert rel < 1e-6


def test_chunked_oracle_equals_unchunked_and_grads():
    q, k, v = (t.double() for t in _qkv(s=50))
    dout = torch.randn_like(q)
    full, full_grads = chunked_attention(q, k, v, True, 50, dout)
    chunked, chunked_grads = chunked_attention(q, k, v, True, 7, dout)
    assert torch.allclose(full, chunked, atol=1e-12)
    for a, b in zip(full_grads, chunked_grads):
        assert torch.allclose(a, b, atol=1e-10)


def test_fp16_error_ratio_is_judged_against_the_dtype_not_fp32():
    """The seed's mistake: fp16 output vs fp32 looks 'wrong'; vs the dtype's own error it passes."""
    q, k, v = _qkv(s=128, d=64)
    shape = Shape(1, 4, 4, 128, 64, "bf16", True, False)
    qb, kb, vb = (t.to(torch.bfloat16) for t in (q, k, v))
    oracle = ParityOracle(qb, kb, vb, None, shape, 1 << 24)
    out = F.scaled_dot_product_attention(qb, kb, vb, is_causal=True)
    parity = oracle.evaluate(out, None)
    assert parity.rel_l2 > 1e-3  # bf16 rounding is large in absolute terms...
    assert parity.ratio_vs_standard < 2 and parity.passed  # ...and exactly what bf16 costs
    noisy = out + 0.05 * torch.randn_like(out)
    assert oracle.evaluate(noisy, None).passed is False  # a wrong kernel does fail


def test_abs_diff_distribution_bins_counts_and_quantiles():
    from flashtui.engine.parity import abs_diff_distribution

    values = torch.tensor([0.0, 1e-13, 1e-9, 2e-9, 1e-3, 0.5, 1e3], dtype=torch.float64)
    d = abs_diff_distribution(values)
    assert d["n"] == 7 and d["below"] == 2 and d["above"] == 1 and sum(d["counts"]) == 4
    assert len(d["edges_log10"]) == len(d["counts"]) + 1 == 29
    hits = {d["edges_log10"][i]: c for i, c in enumerate(d["counts"]) if c}
    assert hits == {-9.0: 2, -3.0: 1, -0.5: 1}  # [1e-9, 10**-8.5) holds 1e-9 and 2e-9
    assert d["quantiles"]["p50"] == pytest.approx(2e-9) and d["quantiles"]["p99"] == 1e3
    empty = abs_diff_distribution(torch.zeros(0))
    assert empty["n"] == 0 and sum(empty["counts"]) == 0 and empty["quantiles"]["p50"] is None


def test_parity_carries_the_abs_diff_distribution_of_the_backend_and_of_standard():
    q, k, v = _qkv(s=128, d=64)
    shape = Shape(1, 4, 4, 128, 64, "bf16", True, False)
    qb, kb, vb = (t.to(torch.bfloat16) for t in (q, k, v))
    oracle = ParityOracle(qb, kb, vb, None, shape, 1 << 24)
    parity = oracle.evaluate(F.scaled_dot_product_attention(qb, kb, vb, is_causal=True), None)
    dist, standard = parity.abs_diff, parity.standard_abs_diff
    assert dist["n"] == standard["n"] == 4 * 128 * 64
    assert dist["below"] + dist["above"] + sum(dist["counts"]) == dist["n"]
    assert dist["quantiles"]["p50"] <= dist["quantiles"]["p99"] <= parity.max_abs
    # bf16 rounding: the bulk of the errors sits between 1e-5 and 1e-2, for both.
    bulk = [c for e, c in zip(dist["edges_log10"], dist["counts"]) if -5 <= e < -2]
    assert sum(bulk) > 0.9 * dist["n"]
    noisy = oracle.evaluate(F.scaled_dot_product_attention(qb, kb, vb, is_causal=True) + 0.05, None)
    assert noisy.abs_diff["quantiles"]["p50"] > 10 * standard["quantiles"]["p50"]


def test_backward_parity_has_grads():
    q, k, v = _qkv(s=64)
    shape = Shape(1, 4, 4, 64, 32, "fp32", True, True)
    dout = torch.randn_like(q)
    oracle = ParityOracle(q, k, v, dout, shape, 1 << 24)
    qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
    out = F.scaled_dot_product_attention(qq, kk, vv, is_causal=True)
    grads = torch.autograd.grad(out, (qq, kk, vv), dout)
    parity = oracle.evaluate(out, grads)
    assert set(parity.grads) == {"dq", "dk", "dv"}
    assert all(g["rel_l2"] < 1e-5 and g["passed"] for g in parity.grads.values())


def test_theory_bytes_scores_vs_fused():
    shape = Shape(1, 16, 16, 16384, 128, "bf16", True, False)
    scores = theory_bytes(REGISTRY["standard"], shape)
    fused = theory_bytes(REGISTRY["sdpa-flash"], shape)
    assert scores == 2 * 16 * 16384 * 16384 * 2 + 16 * 16384 * 128 * 2
    assert fused == 16 * 16384 * 128 * 2 + 16 * 16384 * 4
    assert scores / fused > 200


def test_flops_convention():
    fwd = attention_flops(1, 16, 1024, 128, causal=False, backward=False)
    assert fwd == 4 * 16 * 1024 * 1024 * 128
    assert attention_flops(1, 16, 1024, 128, True, False) == fwd / 2
    assert attention_flops(1, 16, 1024, 128, False, True) == fwd * 3.5


def test_summarize_median_and_iqr():
    t = summarize([1.0, 2.0, 3.0, 4.0, 100.0], warmup_calls=2, host_ms=None)
    assert t.median_ms == 3.0 and t.min_ms == 1.0 and t.iqr_ms == 2.0 and t.reps == 5


def test_time_calls_cpu_counts_reps_and_warms_up():
    calls = []
    t = time_calls(lambda: calls.append(1), "cpu", reps=7, warmup_ms=0, remeasure=False)
    assert t.reps == 7 and t.warmup_calls >= 2 and len(calls) == 7 + t.warmup_calls
    assert t.wall_window_s[1] >= t.wall_window_s[0] > 0


@pytest.mark.parametrize("name, dtype, ok", [
    ("fa2", "bf16", False), ("sdpa-cudnn", "fp16", False), ("sdpa-flash", "fp32", True),
    ("standard", "fp32", True),
])
def test_supports_reasons_on_cpu(name, dtype, ok):
    shape = Shape(1, 4, 4, 128, 64, dtype, True, False)
    got, reason = REGISTRY[name].supports(shape, CPU)
    assert got is ok
    assert (reason is None) == ok
    if not ok:
        assert "CUDA" in reason


def test_flash_dtype_and_head_dim_reasons_on_gpu_info():
    h100 = DeviceInfo("cuda", "NVIDIA H100", (9, 0))
    t4 = DeviceInfo("cuda", "Tesla T4", (7, 5))
    check = REGISTRY["fa4"].supports_shape
    assert check(Shape(1, 4, 4, 128, 64, "fp32", True, False), h100) == (False, "fa4 needs fp16 or bf16, got fp32")
    assert "head_dim <= 256" in check(Shape(1, 4, 4, 128, 320, "bf16", True, False), h100)[1]
    assert "compute capability >= 8" in REGISTRY["sdpa-flash"].availability(t4)[1]
    # SDPA kernels keep no hand-kept table: the static check defers, PyTorch decides on the inputs.
    for name in ("sdpa-flash", "sdpa-efficient", "sdpa-cudnn"):
        assert REGISTRY[name].supports_shape(Shape(1, 4, 4, 128, 320, "fp32", True, False), h100) == (True, None)


def test_dispatch_observe_keeps_torch_profiler_cycle_warning_out_of_the_worker_log(monkeypatch, recwarn):
    # On CUDA torch warns once that "Profiler clears events at the end of each cycle";
    # observe profiles exactly one call per cycle, so the line is noise in every log.
    import warnings

    import torch.profiler as torch_profiler

    class NoisyProfile(torch_profiler.profile):
        def __init__(self, *args, **kwargs):
            warnings.warn("Warning: Profiler clears events at the end of each cycle.Only events "
                          "from the current cycle will be reported.", UserWarning)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(torch_profiler, "profile", NoisyProfile)
    x = torch.randn(32, 32)
    names = dispatch.observe(lambda: x @ x, "cpu")
    assert names and any("mm" in name for name in names)
    assert not [w for w in recwarn if "Profiler clears events" in str(w.message)]


def test_dispatch_flags_math_kernel_for_fused_backend():
    verdict = dispatch.check(REGISTRY["sdpa-flash"], ["ampere_sgemm_128x64_tn", "softmax_warp_forward"], "cuda")
    assert verdict.ok is False and "ran a math kernel" in verdict.reason
    good = dispatch.check(REGISTRY["sdpa-flash"], ["void pytorch_flash::flash_fwd_kernel<...>"], "cuda")
    assert good.ok is True
    assert dispatch.check(REGISTRY["fa4"], None, "cuda").ok is None


def test_dispatch_observes_real_cpu_ops():
    q, k, v = _qkv()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        names = dispatch.observe(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), "cpu")
    assert any("flash_attention_for_cpu" in n for n in names)
    assert dispatch.check(REGISTRY["sdpa-flash"], names, "cpu").ok is True
