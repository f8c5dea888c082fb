"""Model mode and variants: the model's own config decides (sliding window, soft-capping),
and --pad runs through the model's attention mask. Real tiny models on CPU."""

from __future__ import annotations

import pytest
import torch

from flashtui.core.spec import CellKey, SweepSpec
from flashtui.engine.backends import DeviceInfo
from flashtui.engine.models import ModelRunner, register_bshd_attention

from tests.unit.flash_standin import _fa_one

CPU = DeviceInfo("cpu", "cpu")
BACKENDS = ("standard", "sdpa", "sdpa-math", "sdpa-flash")


def run(model: str, mode: str = "prefill", seq: int = 64, **fields):
    spec = SweepSpec(mode=mode, model=model, device="cpu", seqs=(seq,), dtypes=("fp32",), batch=2,
                     reps=2, warmup_ms=0.0, new_tokens=3, **fields)
    runner = ModelRunner(spec, CPU)
    try:
        return {b: runner.run_cell(CellKey(b, seq, "fp32")) for b in BACKENDS}
    finally:
        runner.release()


def test_a_sliding_window_model_runs_its_window_on_every_backend():
    cells = run("tiny-mistral", seq=80)  # longer than its 32-token window
    for name, cell in cells.items():
        assert cell.status == "ok", (name, cell.reason)
        assert cell.parity.passed, (name, cell.parity)
        assert cell.extra["variant"] == {"sliding_window": 32}


def test_a_soft_capped_model_says_which_backends_cannot_cap():
    cells = run("tiny-gemma2")
    assert cells["standard"].status == "ok" and cells["standard"].parity.passed
    assert cells["standard"].extra["variant"] == {"sliding_window": 32, "sliding_layers": 1, "softcap": 50.0}
    for name in ("sdpa", "sdpa-math", "sdpa-flash"):
        assert cells[name].status == "unsupported" and "has no sdpa support" in cells[name].reason


@pytest.mark.parametrize("model, mode", [("tiny-llama", "prefill"), ("tiny-llama", "decode"),
                                         ("tiny-mistral", "prefill"), ("tiny-gpt2", "decode")])
def test_pad_runs_through_the_models_attention_mask(model, mode):
    cells = run(model, mode, pad=0.25)
    for name, cell in cells.items():
        assert cell.status == "ok", (name, cell.reason)
        assert cell.parity.passed and cell.parity.rel_l2 < 1e-5, (name, cell.parity)
        assert cell.extra["variant"]["pad"] == 0.25


def test_padding_changes_what_the_real_tokens_see():
    """The mask is not ignored: the same ids with and without left padding differ."""
    spec = SweepSpec(mode="prefill", model="tiny-llama", device="cpu", seqs=(32,), dtypes=("fp32",),
                     batch=2, pad=0.5)
    runner = ModelRunner(spec, CPU)
    built = runner._model("fp32")
    ids = runner._inputs(CellKey("standard", 32, "fp32"), built)
    with torch.inference_mode():
        padded = runner._hidden(built.model, ids)
        runner._attention_mask = None
        plain = runner._hidden(built.model, ids)
    assert not torch.allclose(padded[:, 16:], plain[:, 16:], atol=1e-3)


def fa_like(q, k, v, softmax_scale=None, causal=False, window_size=(None, None), softcap=0.0):
    return torch.stack([_fa_one(q[b], k[b], v[b], causal, window_size, softcap, softmax_scale)
                        for b in range(q.shape[0])])


def fa_like_varlen(q, k, v, cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=None, max_seqlen_k=None,
                   softmax_scale=None, causal=False, window_size=(None, None), softcap=0.0):
    outs = [_fa_one(q[int(cu_seqlens_q[i]):int(cu_seqlens_q[i + 1])], k[int(cu_seqlens_k[i]):int(cu_seqlens_k[i + 1])],
                    v[int(cu_seqlens_k[i]):int(cu_seqlens_k[i + 1])], causal, window_size, softcap, softmax_scale)
            for i in range(len(cu_seqlens_q) - 1)]
    return torch.cat(outs), None


@pytest.mark.parametrize("model, pad", [("tiny-mistral", None), ("tiny-mistral", 0.25), ("tiny-gemma2", None),
                                        ("tiny-llama", 0.4)])
def test_the_flash_adapter_passes_the_models_window_softcap_and_padding(model, pad):
    """FA3/FA4's adapter, driven by a stand-in with FlashAttention's interface: the model's
    window goes in as window_size, its soft-cap as softcap, a padded batch through varlen."""
    name = register_bshd_attention(f"ftui_test_fa_{model}_{pad}", fa_like, fa_like_varlen)
    spec = SweepSpec(mode="decode", model=model, dtypes=("fp32",), seqs=(48,), device="cpu", batch=2, pad=pad)
    runner = ModelRunner(spec, CPU)
    built = runner._model("fp32").model
    ids = runner._inputs(CellKey("standard", 48, "fp32"), runner._built)
    outs = {}
    with torch.inference_mode():
        for impl in ("eager", name):
            built.set_attn_implementation(impl)
            outs[impl] = runner._hidden(built, ids)
            runner.spec = spec.replace(mode="prefill")
            outs[impl + "-prefill"] = runner._hidden(built, ids)
            runner.spec = spec
    assert torch.allclose(outs["eager"], outs[name], atol=1e-5)
    assert torch.allclose(outs["eager-prefill"], outs[name + "-prefill"], atol=1e-5)
