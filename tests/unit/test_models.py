"""Model mode on CPU: tiny GPT-2 / Llama / BERT through the real worker process.

One worker serves the whole module (its start-up and the transformers import are paid
once); tests that need a different environment start their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flashtui.client.worker_client import WorkerClient
from flashtui.core.results import Cell
from flashtui.core.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(device="cpu", reps=3, warmup_ms=10.0)


def run(client: WorkerClient, spec: SweepSpec) -> tuple[list[Cell], list[str]]:
    """Run ``spec`` to the end; returns (cells, RequestFailed reasons)."""
    cells: list[Cell] = []
    failures: list[str] = []
    for msg in client.run_sweep(spec, spec.cells()):
        if msg.type == "CellFinished":
            cells.append(msg.to_cell())
        elif msg.type == "RequestFailed":
            failures.append(msg.reason)
            break  # the worker refused the whole request: no SweepFinished follows
    return cells, failures


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with WorkerClient(log_path=log, cell_timeout_s=120) as c:
        yield c


def by_backend(cells: list[Cell]) -> dict[str, Cell]:
    return {c.backend: c for c in cells}


@pytest.mark.parametrize("model", ["tiny-gpt2", "tiny-llama", "tiny-bert"])
def test_prefill_eager_and_sdpa_agree_in_fp32(client, model):
    spec = SweepSpec(mode="prefill", model=model, dtypes=("fp32",), seqs=(32,),
                     backends=("standard", "sdpa-math", "sdpa-flash"), batch=2, **FAST)
    cells, failures = run(client, spec)
    assert not failures
    cells_by = by_backend(cells)
    assert set(cells_by) == {"standard", "sdpa-math", "sdpa-flash"}
    for cell in cells:
        assert cell.status == "ok", (cell.backend, cell.reason)
        assert cell.extra["weights"] == "random"
        assert cell.extra["build_s"] > 0
        assert cell.extra["tokens_per_s"] == pytest.approx(2 * 32 / (cell.median_ms * 1e-3))
        assert cell.parity is not None and cell.parity.reference == "fp64"
        assert cell.parity.rel_l2 <= 1e-5, (cell.backend, cell.parity)
        assert cell.parity.passed
    # Attention really was switched (transformers' name) and the forced kernel really ran.
    assert cells_by["standard"].extra["attn_implementation"] == "eager"
    assert cells_by["sdpa-flash"].extra["attn_implementation"] == "sdpa"
    assert any("flash" in k for k in cells_by["sdpa-flash"].kernels)
    assert any("math" in k for k in cells_by["sdpa-math"].kernels)
    assert not any("softmax" in k for k in cells_by["sdpa-flash"].kernels)
    # Standard is its own dtype baseline: its error *is* standard_rel_l2.
    std = cells_by["standard"].parity
    assert std.rel_l2 == pytest.approx(std.standard_rel_l2)
    # One model per dtype: built once, shared by the three backends.
    assert len({c.extra["build_s"] for c in cells}) == 1


def test_decode_reports_ms_per_token(client):
    spec = SweepSpec(mode="decode", model="tiny-llama", dtypes=("fp32",), seqs=(16,), new_tokens=4,
                     backends=("standard", "sdpa-flash"), **FAST)
    cells, failures = run(client, spec)
    assert not failures and len(cells) == 2
    for cell in cells:
        assert cell.status == "ok", cell.reason
        assert cell.extra["ms_per_token"] > 0
        assert cell.median_ms == cell.extra["ms_per_token"]
        assert cell.reps == 4 * cell.extra["generations"]
        # Parity of one cached decode step (the q_len=1 path) against fp64.
        assert cell.parity.rel_l2 <= 1e-5


def test_bidirectional_model_has_no_decode(client):
    spec = SweepSpec(mode="decode", model="tiny-bert", dtypes=("fp32",), seqs=(16,),
                     backends=("standard",), **FAST)
    cells, failures = run(client, spec)
    assert not failures
    assert cells[0].status == "unsupported"
    assert "bidirectional" in cells[0].reason and "--mode prefill" in cells[0].reason


def test_flash_kernels_unsupported_on_cpu_with_reason(client):
    spec = SweepSpec(mode="prefill", model="tiny-gpt2", dtypes=("fp32",), seqs=(32,),
                     backends=("fa2", "fa4", "sdpa-cudnn"), **FAST)
    cells, _ = run(client, spec)
    assert [c.status for c in cells] == ["unsupported"] * 3
    assert all("CUDA" in c.reason for c in cells)


def test_seed_scenario_fp16_error_is_dtype_rounding(client):
    """The seed compared fp32 standard with fp16 flash and called it a parity failure.

    Decomposed against fp64: fp16 *standard* has the same error as fp16 flash, so the
    difference the seed saw is fp16 itself, and flash passes (ratio <= 2).
    """
    spec = SweepSpec(mode="prefill", model="tiny-gpt2", dtypes=("fp32", "fp16"), seqs=(64,),
                     backends=("standard", "sdpa-flash"), batch=4, **FAST)
    cells, failures = run(client, spec)
    assert not failures and all(c.status == "ok" for c in cells), [c.reason for c in cells]
    cell = {(c.backend, c.dtype): c for c in cells}
    fp16_flash, fp16_std = cell[("sdpa-flash", "fp16")].parity, cell[("standard", "fp16")].parity
    assert fp16_flash.passed and fp16_flash.ratio_vs_standard <= 2
    assert fp16_std.rel_l2 > 100 * cell[("standard", "fp32")].parity.rel_l2
    assert fp16_flash.rel_l2 > 1e-4  # what a tight fp32-vs-fp16 tolerance flags as "failed"


def test_local_save_pretrained_round_trip(client, tmp_path):
    from transformers import AutoModelForCausalLM

    from flashtui.engine.model_table import builtin_config

    config, _ = builtin_config("tiny-llama")
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "tiny")
    spec = SweepSpec(mode="prefill", model=str(tmp_path / "tiny"), dtypes=("fp32",), seqs=(16,),
                     backends=("standard", "sdpa-math"), **FAST)
    cells, failures = run(client, spec)
    assert not failures
    for cell in cells:
        assert cell.status == "ok", cell.reason
        assert cell.extra["weights"] == f"pretrained: {tmp_path / 'tiny'}"
        assert cell.parity.rel_l2 <= 1e-5


def test_unknown_model_lists_builtins(client):
    spec = SweepSpec(mode="prefill", model="gpt5-turbo", dtypes=("fp32",), seqs=(16,),
                     backends=("standard",), **FAST)
    cells, failures = run(client, spec)
    assert not cells and len(failures) == 1
    assert "unknown model 'gpt5-turbo'" in failures[0]
    assert "tiny-gpt2" in failures[0] and "llama-3-8b" in failures[0]
    assert "\n" not in failures[0]


def test_missing_local_path_is_one_line(client, tmp_path):
    spec = SweepSpec(mode="prefill", model=str(tmp_path / "nope"), dtypes=("fp32",), seqs=(16,),
                     backends=("standard",), **FAST)
    _, failures = run(client, spec)
    assert len(failures) == 1 and "does not exist" in failures[0] and "\n" not in failures[0]


def test_offline_hub_id_fails_with_one_clear_line(tmp_path):
    # A closed local port stands in for "no network"; an empty HF_HOME means nothing cached.
    env = {**__import__("os").environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path)}
    spec = SweepSpec(mode="prefill", model="some-org/some-model", dtypes=("fp32",), seqs=(16,),
                     backends=("standard",), **FAST)
    with WorkerClient(env=env, log_path=tmp_path / "w.log") as offline:
        cells, failures = run(offline, spec)
    assert not cells and len(failures) == 1
    reason = failures[0]
    assert "\n" not in reason and len(reason) < 400
    assert "cannot load 'some-org/some-model' from the Hugging Face Hub" in reason
    assert "local save_pretrained directory" in reason and "tiny-gpt2" in reason


def _python(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_transformers_is_imported_only_in_model_mode():
    result = _python("""
        import json, sys
        import flashtui.core.model_catalog
        catalog_pulls_torch = "torch" in sys.modules
        from flashtui.engine import server
        from flashtui.engine.kernel import KernelRunner
        from flashtui.engine.backends import DeviceInfo
        from flashtui.core.spec import SweepSpec
        spec = SweepSpec(device="cpu", seqs=(16,), dtypes=("fp32",), backends=("standard",),
                         heads=2, head_dim=16, reps=2, warmup_ms=0)
        cell = KernelRunner(spec, DeviceInfo("cpu", "cpu")).run_cell(spec.cells()[0])
        kernel_mode = "transformers" in sys.modules
        import flashtui.engine.models
        print(json.dumps({"catalog_torch": catalog_pulls_torch, "kernel_mode": kernel_mode,
                          "status": cell.status, "model_mode": "transformers" in sys.modules}))
    """)
    assert result == {"catalog_torch": False, "kernel_mode": False, "status": "ok", "model_mode": True}


def test_seeded_init_gives_the_same_weights_in_every_dtype():
    torch = pytest.importorskip("torch")
    from flashtui.engine.backends import DeviceInfo
    from flashtui.engine.models import ModelRunner

    spec = SweepSpec(mode="prefill", model="tiny-llama", dtypes=("fp32", "fp16"), seqs=(8,), device="cpu")
    runner = ModelRunner(spec, DeviceInfo("cpu", "cpu"))
    fp32 = {k: v.clone() for k, v in runner._model("fp32").model.state_dict().items()}
    fp16 = runner._model("fp16").model.state_dict()
    assert fp16.keys() == fp32.keys()
    for name, tensor in fp16.items():
        assert tensor.dtype == torch.float16
        assert torch.equal(tensor, fp32[name].to(torch.float16)), name


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-bert"])
def test_registered_bshd_adapter_keeps_causality(model):
    """The AttentionInterface adapter used for FA3/FA4 when transformers lacks them.

    Driven here by an SDPA stand-in in BSHD layout: it must match eager attention, so a
    causal model stays causal (Llama, with GQA) and a bidirectional one stays so (BERT).
    """
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from flashtui.engine.backends import DeviceInfo
    from flashtui.engine.models import ModelRunner, register_bshd_attention

    def bshd_sdpa(q, k, v, softmax_scale=None, causal=False):
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             scale=softmax_scale, is_causal=causal,
                                             enable_gqa=k.shape[2] != q.shape[2])
        return out.transpose(1, 2)

    name = register_bshd_attention("ftui_test_bshd", bshd_sdpa)
    spec = SweepSpec(mode="decode", model=model, dtypes=("fp32",), seqs=(24,), device="cpu")
    runner = ModelRunner(spec, DeviceInfo("cpu", "cpu"))
    built = runner._model("fp32").model
    ids = torch.randint(0, 1000, (2, 24))
    outs = {}
    with torch.inference_mode():
        for impl in ("eager", name):
            built.set_attn_implementation(impl)
            full_pass = built.base_model(input_ids=ids).last_hidden_state
            # Causal models also run one cached decode step (a single query token).
            step = runner._hidden(built, ids) if runner.source.causal else full_pass
            outs[impl] = (full_pass, step)
    for eager, adapted in zip(outs["eager"], outs[name]):
        assert torch.allclose(eager, adapted, atol=1e-5, rtol=1e-5)
    # And the adapter is not a no-op stand-in for eager: dropping causality changes the output.
    if runner.source.causal:
        full = register_bshd_attention("ftui_test_full", lambda q, k, v, softmax_scale=None, causal=False:
                                       bshd_sdpa(q, k, v, softmax_scale, False))
        built.set_attn_implementation(full)
        with torch.inference_mode():
            assert not torch.allclose(built.base_model(input_ids=ids).last_hidden_state,
                                      outs["eager"][0], atol=1e-3)
