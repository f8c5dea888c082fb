"""flex's compiled forms on CPU, through real dynamo: how many graphs a sweep compiles.

The GPU compiles the same graphs with inductor (tests/gpu, benchmarks/flex_dynamic.py);
here dynamo traces them and a counting backend runs them eagerly, so a recompile shows as
one more frame.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

from flashtui.engine import flex_compile
from flashtui.engine.backends import REGISTRY, Shape

SEQS = (256, 384, 512, 1024)  # >= 2 blocks of 128: a size-1 dim is specialized (one more graph)


def _causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def _call(fn, seq: int, options: dict | None):
    from torch.nn.attention.flex_attention import create_block_mask

    q, k, v = (torch.randn(1, 2, seq, 16) for _ in range(3))
    mask = create_block_mask(_causal, None, None, seq, seq, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(q, k, v, block_mask=mask, kernel_options=options)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _counted(dynamic_seq: bool, monkeypatch) -> CompileCounterWithBackend:
    counter = CompileCounterWithBackend("eager")
    monkeypatch.setattr(flex_compile, "_COMPILED", {})
    fn = flex_compile.compiled(dynamic_seq, backend=counter)
    assert flex_compile.compiled(dynamic_seq, backend=counter) is fn  # built once per process
    return counter


def test_dynamic_form_compiles_once_for_every_length(monkeypatch):
    counter = _counted(True, monkeypatch)
    fn = flex_compile.compiled(True, backend=counter)
    for seq in SEQS:
        _call(fn, seq, flex_compile.divisible_options(seq, seq))
    assert counter.frame_count == 1


def test_static_form_compiles_once_per_length(monkeypatch):
    counter = _counted(False, monkeypatch)
    fn = flex_compile.compiled(False, backend=counter)
    for seq in SEQS:
        _call(fn, seq, None)
    assert counter.frame_count == len(SEQS)


def test_a_length_off_the_block_gets_its_own_graph_without_the_divisible_promise(monkeypatch):
    assert flex_compile.divisible_options(512, 512) == {"IS_DIVISIBLE": True}
    assert flex_compile.divisible_options(200, 512) == {"IS_DIVISIBLE": False}
    assert flex_compile.divisible_options(512, 1000) == {"IS_DIVISIBLE": False}
    counter = _counted(True, monkeypatch)
    fn = flex_compile.compiled(True, backend=counter)
    _call(fn, 256, flex_compile.divisible_options(256, 256))
    _call(fn, 200, flex_compile.divisible_options(200, 200))
    _call(fn, 320, flex_compile.divisible_options(320, 320))  # IS_DIVISIBLE False again: no new graph
    assert counter.frame_count == 2


def test_dense_flex_cells_share_one_graph_and_match_attention(monkeypatch):
    """The backend's own prepare (the path a sweep takes) at two lengths: one graph, right output."""
    counter = _counted(True, monkeypatch)
    monkeypatch.setitem(flex_compile._COMPILED, (True, "inductor"), flex_compile.compiled(True, backend=counter))
    for seq in (256, 384):
        shape = Shape(1, 2, 2, seq, 16, "fp32", True, False)
        q, k, v = (torch.randn(1, 2, seq, 16) for _ in range(3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = REGISTRY["flex"].prepare(q, k, v, shape).forward()
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        assert (out - expected).abs().max() < 1e-5
    assert counter.frame_count == 1
