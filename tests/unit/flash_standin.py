"""A stand-in for flash-attn's Python interface, for CPU tests of flashtui's FlashAttention paths.

It implements FlashAttention's documented semantics (BSHD layout, causal and windows
aligned bottom-right, ``window_size=(left, right)`` with None unbounded, ``softcap``,
varlen over ``cu_seqlens``, a paged cache through ``page_table`` and ``seqused_k``) in
float64 torch, so the packing, unpadding and page tables flashtui builds can be checked
against the fp64 oracle where no GPU is.
"""

from __future__ import annotations

import math
import types

import torch


def _fa_one(q, k, v, causal, window_size, softcap, softmax_scale):
    """FlashAttention's documented semantics for one sequence: q (Sq, H, D), k/v (Sk, KV, D);
    causal and windows aligned bottom-right; window_size (left, right), None = unbounded."""
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    scale = softmax_scale or 1.0 / math.sqrt(q.shape[-1])
    scores = torch.einsum("qhd,khd->hqk", q.double(), k.double()) * scale
    if softcap:
        scores = softcap * torch.tanh(scores / softcap)
    rows = torch.arange(q.shape[0])[:, None] + k.shape[0] - q.shape[0]
    cols = torch.arange(k.shape[0])[None]
    keep = torch.ones(q.shape[0], k.shape[0], dtype=torch.bool)
    if causal:
        keep &= cols <= rows
    left, right = window_size
    if left is not None and left >= 0:
        keep &= cols >= rows - left
    if right is not None and right >= 0:
        keep &= cols <= rows + right
    probs = torch.softmax(scores.masked_fill(~keep, -math.inf), -1).nan_to_num(0.0)
    return torch.einsum("hqk,khd->qhd", probs, v.double()).to(q.dtype)


def fake_flash_attn(with_paging: bool = True) -> types.ModuleType:
    module = types.ModuleType("flash_attn.cute")

    def flash_attn_func(q, k, v, softmax_scale=None, causal=False, window_size=(None, None),
                        softcap=0.0, num_splits=1, return_lse=False):
        out = torch.stack([_fa_one(q[b], k[b], v[b], causal, window_size, softcap, softmax_scale)
                           for b in range(q.shape[0])])
        return out, None

    def flash_attn_varlen_func(q, k, v, cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=None,
                               max_seqlen_k=None, seqused_q=None, seqused_k=None, page_table=None,
                               softmax_scale=None, causal=False, window_size=(None, None), softcap=0.0,
                               num_splits=1, return_lse=False):
        if page_table is not None:
            outs = []
            for b in range(q.shape[0]):
                pages = page_table[b].long()
                kb = k[pages].reshape(-1, *k.shape[2:])[: int(seqused_k[b])]
                vb = v[pages].reshape(-1, *v.shape[2:])[: int(seqused_k[b])]
                outs.append(_fa_one(q[b], kb, vb, causal, window_size, softcap, softmax_scale))
            return torch.stack(outs), None
        outs = []
        for i in range(len(cu_seqlens_q) - 1):
            qs = q[int(cu_seqlens_q[i]):int(cu_seqlens_q[i + 1])]
            ks = k[int(cu_seqlens_k[i]):int(cu_seqlens_k[i + 1])]
            vs = v[int(cu_seqlens_k[i]):int(cu_seqlens_k[i + 1])]
            outs.append(_fa_one(qs, ks, vs, causal, window_size, softcap, softmax_scale))
        return torch.cat(outs), None

    if not with_paging:
        def flash_attn_varlen_func(q, k, v, cu_seqlens_q=None, cu_seqlens_k=None,  # noqa: F811
                                   max_seqlen_q=None, max_seqlen_k=None, softmax_scale=None,
                                   causal=False, window_size=(None, None), softcap=0.0):
            raise AssertionError("never called: the signature check refuses first")
    module.flash_attn_func = flash_attn_func
    module.flash_attn_varlen_func = flash_attn_varlen_func
    return module


