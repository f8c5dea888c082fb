"""How flashtui compiles FlexAttention, so that a sweep compiles it once, not once per length.

Dense attention (causal or not, no variant) goes through ``torch.compile(flex_attention,
dynamic=True)``: the sequence length is a symbol, so one graph serves every length of at
least two blocks (one block is a size-1 dimension, which dynamo specializes; counted on CPU
in tests/unit/test_flex_compile.py, on a GPU by tests/gpu/test_flex_gpu.py). With static shapes (``dynamic=False``) every new length was a compile of
its own: 2.5, 1.7, 1.6 and 1.7 s at 512-4096 on the H200 (cold caches), most of a cold
default sweep's compile time.

The one thing static shapes bought is ``IS_DIVISIBLE``: inductor drops the kernel's bounds
masks when it can prove both lengths are multiples of 128, which a symbolic length never
is. Here the length is known when the call is made, so ``kernel_options`` says it
(``divisible_options``); dynamo guards on that constant, so a length that is not a multiple
of 128 gets a graph of its own with the masks on. ``benchmarks/flex_dynamic.py`` compares
the two compiled forms' kernel times on a GPU.

Variants (score_mod / mask_mod capturing per-sequence tensors, decode's q-len 1) keep
static shapes: their sweeps are usually one length, and their kernels were verified in that
form on the H200.
"""

from __future__ import annotations

from typing import Any, Callable

# The block size inductor's flex kernels are specialized on (see IS_DIVISIBLE in
# torch/_inductor/kernel/flex/flex_attention.py): both lengths must be multiples of it.
DIVISIBLE_BLOCK = 128

_COMPILED: dict[tuple[bool, str], Callable[..., Any]] = {}


def compiled(dynamic_seq: bool, backend: str = "inductor") -> Callable[..., Any]:
    """The compiled flex_attention, built once per (form, backend) in this process."""
    key = (dynamic_seq, backend)
    if key not in _COMPILED:
        import torch
        import torch._dynamo
        from torch.nn.attention.flex_attention import flex_attention

        # The static form compiles one graph per (seq, dtype): a sweep must not hit dynamo's default
        # recompile limit and fall back to eager (dispatch would flag it, but why fail).
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 256)
        if dynamic_seq:
            # No duck sizing: otherwise a block count that happens to equal the head count
            # (256 // 128 == 2 heads) becomes the same symbol, and the next length recompiles.
            import torch.fx.experimental._config as fx_config

            fx_config.use_duck_shape = False
        _COMPILED[key] = torch.compile(flex_attention, dynamic=True if dynamic_seq else False,
                                       backend=backend)
    return _COMPILED[key]


def divisible_options(q_len: int, kv_len: int) -> dict[str, bool]:
    """kernel_options that give a dynamic-length kernel what a static one proves itself."""
    return {"IS_DIVISIBLE": q_len % DIVISIBLE_BLOCK == 0 and kv_len % DIVISIBLE_BLOCK == 0}


__all__ = ["DIVISIBLE_BLOCK", "compiled", "divisible_options"]
