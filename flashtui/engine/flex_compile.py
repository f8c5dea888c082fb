"""How flashtui compiles FlexAttention: ``torch.compile(flex_attention, dynamic=False)``.

Static shapes, one compile per (length, dtype), kept in flashtui's compile cache (a second
run of a shape loads it instead of compiling). A dynamic-length compile (one graph for
every length) was tried and measured on the H200 (``benchmarks/flex_dynamic.py``, 2026-12-02,
benchmarks/RESULTS.md): its kernels ran within 1.3% of the static ones forward (1.5-4.6%
slower fwd+bwd), but each call cost the host up to ~0.08 ms more (0.036 ms at S=512, 0.083 at 2048; most likely symbolic sizes and grids
worked out in Python at every launch), so flex at B=4 S=1024 read 0.140 ms a call against
0.080 ms static: launch-bound, by flashtui's choice rather than flex's. It saved ~4 s of
compiles in a cold default sweep; a benchmark must not buy that with its answer.
"""

from __future__ import annotations

from typing import Any, Callable

_COMPILED: dict[str, Callable[..., Any]] = {}


def compiled(backend: str = "inductor") -> Callable[..., Any]:
    """The compiled flex_attention (static shapes), built once per backend in this process."""
    if backend not in _COMPILED:
        import torch
        import torch._dynamo
        from torch.nn.attention.flex_attention import flex_attention

        # One graph per (seq, dtype): a sweep must not hit dynamo's default recompile
        # limit and fall back to eager (dispatch would flag it, but why fail).
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 256)
        _COMPILED[backend] = torch.compile(flex_attention, dynamic=False, backend=backend)
    return _COMPILED[backend]


__all__ = ["compiled"]
