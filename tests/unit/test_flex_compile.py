"""flex's compiled form on CPU, through real dynamo: how many graphs a sweep compiles.

The GPU compiles the same graphs with inductor (tests/gpu/test_flex_gpu.py); here dynamo
traces them and a counting backend runs them eagerly, so a recompile shows as one more frame.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

from flashtui.engine import flex_compile
from flashtui.engine.backends import REGISTRY, Shape

SEQS = (256, 384, 512, 1024)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _counted(monkeypatch) -> CompileCounterWithBackend:
    counter = CompileCounterWithBackend("eager")
    monkeypatch.setattr(flex_compile, "_COMPILED", {})
    fn = flex_compile.compiled(backend=counter)
    assert flex_compile.compiled(backend=counter) is fn  # built once per process
    monkeypatch.setitem(flex_compile._COMPILED, "inductor", fn)  # what the backend's prepare takes
    return counter


def _flex_cell(seq: int) -> torch.Tensor:
    """One dense causal flex cell through the backend's own prepare (the path a sweep takes)."""
    shape = Shape(1, 2, 2, seq, 16, "fp32", True, False)
    q, k, v = (torch.randn(1, 2, seq, 16) for _ in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = REGISTRY["flex"].prepare(q, k, v, shape).forward()
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (out - expected).abs().max() < 1e-5, seq
    return out


def test_each_length_compiles_once_and_a_repeat_compiles_nothing(monkeypatch):
    counter = _counted(monkeypatch)
    for seq in SEQS:
        _flex_cell(seq)
    assert counter.frame_count == len(SEQS)  # static shapes: one graph per length
    for seq in SEQS:
        _flex_cell(seq)
    assert counter.frame_count == len(SEQS)  # the same lengths again: dynamo's guards pass, no graph
