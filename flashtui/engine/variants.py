"""Variant paths in the engine: how each backend runs a window, soft-cap, documents,
padding, a short query block or a paged cache -- natively, through a mask, or not at all.

:func:`plan` is the one table: the runner follows it, the doctor's matrix shows it, and
a cell records it (``extra["variant"]``: ``path`` and ``how``). "Through a mask" is
said with what the mask costs; where a forced SDPA kernel will not take a mask,
PyTorch's own refusal is the cell's reason (see backends.py), and where plain ``sdpa``
picks a slower kernel because of one, the cell names the kernel that ran.

Masks here are boolean, True = attend, shaped (rows or 1, 1, queries, keys) so they
broadcast over heads. :func:`mask_rows` builds any block of query rows, so the fp64
oracle never holds a whole S x S mask.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch

from flashtui.core.variants import Layout

NATIVE, MASK, NO = "native", "mask", "no"
SDPA_BACKENDS = ("sdpa", "sdpa-math", "sdpa-flash", "sdpa-efficient", "sdpa-cudnn")
FLASH_ATTN_BACKENDS = ("fa2", "fa3", "fa4")


@dataclass(frozen=True)
class Plan:
    """How one backend runs one layout: ``path`` native | mask | no, and one sentence."""

    path: str
    how: str

    @property
    def runs(self) -> bool:
        return self.path != NO


def features(layout: Layout) -> list[str]:
    """The variant features a layout uses, in spec order (empty: dense)."""
    out = []
    if layout.effective_window is not None:
        out.append("window")
    if layout.softcap is not None:
        out.append("softcap")
    if layout.doc_lengths is not None and any(len(row) > 1 for row in layout.doc_lengths):
        out.append("docs")
    if layout.valid_lengths is not None and any(v < layout.seq for v in layout.valid_lengths):
        out.append("pad")
    if layout.q_len < layout.seq:
        out.append("q_len")
    if layout.page_size is not None:
        out.append("page_size")
    return out


_MASK_WORDS = {"window": "sliding-window", "docs": "block-diagonal document", "pad": "key-padding",
               "q_len": "bottom-right causal"}


def _feature_plan(backend: str, feature: str, layout: Layout, backward: bool) -> Plan:
    """One feature on one backend (combined by :func:`plan`)."""
    if backend == "standard":
        if feature == "page_size":
            return Plan(NO, "standard reads one contiguous K/V, no paged cache: drop --page-size "
                            "(fa4 has one)")
        if feature == "softcap":
            return Plan(NATIVE, "tanh soft-capping of the S x S scores in the textbook code")
        if feature == "q_len":
            return Plan(NATIVE, "bottom-right causal over a KV cache")
        return Plan(MASK, f"a {_MASK_WORDS[feature]} mask over the full S x S scores")
    if backend in SDPA_BACKENDS:
        if feature == "softcap":
            return Plan(NO, "PyTorch SDPA has no score modification, so no tanh soft-capping: "
                            "use flex (score_mod), fa4 or standard")
        if feature == "page_size":
            return Plan(NO, "PyTorch SDPA reads one contiguous K/V, no paged cache: drop --page-size "
                            "or use fa4 (page_table)")
        if feature == "q_len":
            if layout.q_len == 1 or not layout.causal:
                return Plan(NATIVE, "a short query block against the whole KV cache, no mask")
            return Plan(MASK, "an attn_mask for bottom-right causality (is_causal aligns top-left "
                              "when q_len < seq)")
        if feature == "docs":
            return Plan(MASK, "a block-diagonal attn_mask (SDPA's jagged tensors refuse is_causal)")
        return Plan(MASK, f"a {_MASK_WORDS[feature]} attn_mask")
    if backend == "flex":
        if feature == "page_size":
            return Plan(NO, "PyTorch's flex_attention has no paged KV cache: drop --page-size or "
                            "use fa4")
        words = {"window": "a sliding-window mask_mod (block-sparse: skipped blocks cost nothing)",
                 "softcap": "a tanh score_mod", "docs": "a document mask_mod (block-sparse)",
                 "pad": "a per-row key-padding mask_mod", "q_len": "Q_LEN = q_len, bottom-right mask_mod"}
        return Plan(NATIVE, words[feature])
    if backend in FLASH_ATTN_BACKENDS:
        if feature == "page_size":
            if backend != "fa4":
                return Plan(NO, f"flashtui drives a paged cache through fa4's page_table only: "
                                f"use --backends fa4 (or drop --page-size for {backend})")
            if backward:
                return Plan(NO, "a paged KV cache is a decode (forward) layout: drop --backward")
            return Plan(NATIVE, "flash_attn_varlen_func with page_table and seqused_k")
        words = {"window": "window_size=(N-1, 0)", "softcap": "softcap=",
                 "docs": "flash_attn_varlen_func over cu_seqlens",
                 "pad": "unpad, flash_attn_varlen_func, pad back (as transformers does)",
                 "q_len": "a short query block, causal aligned bottom-right"}
        return Plan(NATIVE, words[feature])
    return Plan(NO, f"{backend} has no variant support in flashtui")


def plan(backend: str, layout: Layout | None, backward: bool = False) -> Plan:
    """How ``backend`` runs ``layout``: the worst of its features (no > mask > native)."""
    used = features(layout) if layout is not None else []
    if not used:
        return Plan(NATIVE, "dense")
    plans = [_feature_plan(backend, f, layout, backward) for f in used]
    refused = [p for p in plans if p.path == NO]
    if refused:
        return refused[0]
    path = MASK if any(p.path == MASK for p in plans) else NATIVE
    return Plan(path, "; ".join(dict.fromkeys(p.how for p in plans)))


# ------------------------------------------------------------------ masks
def mask_batch(layout: Layout) -> int:
    """Rows a mask needs: the batch when rows differ, else 1 (broadcast)."""
    return layout.batch if layout.rows_differ else 1


def doc_ids(layout: Layout, device: Any) -> torch.Tensor | None:
    """(mask rows, seq) int32 document index of every position, or None without documents."""
    if layout.doc_lengths is None:
        return None
    rows = []
    for row in range(mask_batch(layout)):
        lengths = torch.tensor(layout.doc_lengths[row], dtype=torch.int64)
        rows.append(torch.repeat_interleave(torch.arange(len(lengths), dtype=torch.int32), lengths))
    return torch.stack(rows).to(device)


def pad_starts(layout: Layout, device: Any) -> torch.Tensor | None:
    """(mask rows,) int32 first real position of each row, or None without padding."""
    if layout.valid_lengths is None:
        return None
    return torch.tensor([layout.pad_start(r) for r in range(mask_batch(layout))],
                        dtype=torch.int32, device=device)


def mask_rows(layout: Layout, start: int, end: int, device: Any) -> torch.Tensor:
    """Boolean mask (mask rows, 1, end - start, seq) for queries ``start:end`` of q_len."""
    q_pos = torch.arange(layout.q_offset + start, layout.q_offset + end, device=device)[:, None]
    k_pos = torch.arange(layout.seq, device=device)[None, :]
    allowed = torch.ones(end - start, layout.seq, dtype=torch.bool, device=device)
    if layout.causal:
        allowed &= k_pos <= q_pos
    window = layout.effective_window
    if window is not None:
        allowed &= (q_pos - k_pos) < window
    allowed = allowed[None]  # (1, queries, keys)
    ids = doc_ids(layout, device)
    if ids is not None:
        q_ids = ids[:, layout.q_offset + start: layout.q_offset + end]
        allowed = allowed & (q_ids[:, :, None] == ids[:, None, :])
    starts = pad_starts(layout, device)
    if starts is not None:
        begin = starts[:, None, None]
        real = allowed & (k_pos[None] >= begin) & (q_pos[None] >= begin)
        # A padding query sees only itself (its output is never compared): no row is
        # fully masked, so no kernel's softmax turns it NaN (transformers does the same).
        allowed = real | ((q_pos[None] < begin) & (k_pos[None] == q_pos[None]))
    return allowed[:, None]


def full_mask(layout: Layout, device: Any) -> torch.Tensor:
    return mask_rows(layout, 0, layout.q_len, device)


def query_valid(layout: Layout, device: Any) -> torch.Tensor | None:
    """(batch, 1, q_len, 1) True for real query rows; None when every row is real."""
    if layout.valid_lengths is None or all(layout.query_rows(r) == layout.q_len for r in range(layout.batch)):
        return None
    q_pos = torch.arange(layout.q_offset, layout.seq, device=device)
    starts = torch.tensor([layout.pad_start(r) for r in range(layout.batch)], device=device)
    return (q_pos[None, :] >= starts[:, None])[:, None, :, None]


def mask_bytes(layout: Layout) -> int:
    """Bytes of the boolean mask a mask path materializes."""
    return mask_batch(layout) * layout.q_len * layout.seq


# ------------------------------------------------------------------ flex
def flex_mods(layout: Layout, device: Any) -> tuple[Callable | None, Callable | None, int | None]:
    """(mask_mod or None, score_mod or None, block-mask batch or None) for flex_attention."""
    offset, window, causal = layout.q_offset, layout.effective_window, layout.causal
    ids = doc_ids(layout, device)
    starts = pad_starts(layout, device)
    rows = mask_batch(layout)
    per_row = rows > 1
    # One causal query at the end of the cache sees every key: no mask at all.
    restricted = ((causal and layout.q_len > 1) or window is not None or ids is not None
                  or starts is not None)
    mask_mod = None
    if restricted:
        def mask_mod(b, h, q_idx, kv_idx):
            q_pos = q_idx + offset
            keep = (kv_idx <= q_pos) if causal else (kv_idx >= 0)
            if window is not None:
                keep = keep & (q_pos - kv_idx < window)
            if ids is not None:
                row = ids[b] if per_row else ids[0]
                keep = keep & (row[q_pos] == row[kv_idx])
            if starts is not None:
                begin = starts[b] if per_row else starts[0]
                keep = (keep & (kv_idx >= begin) & (q_pos >= begin)) | ((q_pos < begin) & (kv_idx == q_pos))
            return keep
    score_mod = None
    if layout.softcap is not None:
        cap = float(layout.softcap)

        def score_mod(score, b, h, q_idx, kv_idx):
            return cap * torch.tanh(score / cap)
    return mask_mod, score_mod, (rows if per_row else None)


# ------------------------------------------------------------------ FlashAttention
class SignatureMismatch(RuntimeError):
    """The installed flash-attn function lacks a keyword flashtui passes."""


def check_keywords(fn: Callable, names: list[str], what: str) -> None:
    """Raise SignatureMismatch (a readable reason) unless ``fn`` takes every keyword in ``names``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return  # a C function without a signature: let the call itself answer
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    missing = [n for n in names if n not in params]
    if missing:
        raise SignatureMismatch(
            f"{what} takes no {', '.join(repr(m) for m in missing)}: this flash-attn build's "
            "interface differs from the one flashtui drives (flash-attn-4 4.0.0b36's); upgrade it")


def splits_kv(backend: str, capability: tuple[int, int] | None) -> bool:
    """Whether ``backend`` splits the KV cache over CTAs in decode on this GPU: FA3 does on
    Hopper; FA4 only on Blackwell (SM 10.x/11.x) - on SM 8.x/9.x its forward asserts
    "SplitKV not supported" (flash-attn-4 4.0.0b36), so a decode step there is one split."""
    if backend == "fa3":
        return True
    return backend == "fa4" and capability is not None and capability[0] in (10, 11)


def flash_kwargs(layout: Layout, backend: str, backward: bool,
                 capability: tuple[int, int] | None = None) -> dict[str, Any]:
    """window_size / softcap / num_splits keywords of a FlashAttention call for ``layout``
    (``capability``: the GPU's compute capability, which decides split-KV for fa4)."""
    kwargs: dict[str, Any] = {}
    window = layout.effective_window
    if window is not None:
        kwargs["window_size"] = (window - 1, 0)
    if layout.softcap is not None:
        kwargs["softcap"] = float(layout.softcap)
    if layout.q_len < layout.seq and not backward and splits_kv(backend, capability):
        kwargs["num_splits"] = 0  # <= 0: the library's own split-KV heuristic (decode)
    return kwargs


def cu_seqlens(lengths: list[int], device: Any) -> torch.Tensor:
    out = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    out[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0).to(torch.int32)
    return out.to(device)


def token_index(starts: list[int], length: int, device: Any) -> torch.Tensor:
    """Flat indices of positions ``start..length-1`` of each row, rows of ``length`` each."""
    parts = [torch.arange(row * length + s, (row + 1) * length) for row, s in enumerate(starts)]
    return torch.cat(parts).to(device)


def paged_cache(k_bshd: torch.Tensor, v_bshd: torch.Tensor, page_size: int,
                seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """K/V (B, S, KV, D) as a page pool (pages, P, KV, D), a shuffled page table (B, pages/row)
    int32 and seqused_k (B,) int32: a vLLM-style cache whose pages are not in order."""
    batch, seq, kv_heads, dim = k_bshd.shape
    per_row = -(-seq // page_size)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(batch * per_row, generator=gen)
    pools = []
    for t in (k_bshd, v_bshd):
        padded = t.new_zeros(batch, per_row * page_size, kv_heads, dim)
        padded[:, :seq] = t
        pool = torch.empty_like(padded).view(batch * per_row, page_size, kv_heads, dim)
        pool[order.to(t.device)] = padded.view(batch * per_row, page_size, kv_heads, dim)
        pools.append(pool)
    table = order.view(batch, per_row).to(torch.int32).to(k_bshd.device)
    used = torch.full((batch,), seq, dtype=torch.int32, device=k_bshd.device)
    return pools[0], pools[1], table.contiguous(), used


__all__ = [
    "FLASH_ATTN_BACKENDS", "MASK", "NATIVE", "NO", "Plan", "SDPA_BACKENDS", "SignatureMismatch",
    "check_keywords", "cu_seqlens", "doc_ids", "features", "flash_kwargs", "flex_mods", "full_mask",
    "mask_bytes", "mask_rows", "pad_starts", "paged_cache", "plan", "query_valid", "splits_kv", "token_index",
]
