"""Attention backends registry: one entry per implementation, each able to say why not.

Every backend takes q, k, v in (batch, heads, seq, head_dim) layout ("BHSD"), with k
and v possibly carrying fewer heads (GQA). ``prepare`` does everything that must stay
outside the timed region (layout transposes, block masks, imports, leaf tensors for
autograd) and returns a :class:`Prepared` whose ``forward()`` is exactly the timed call.

Availability is probed cheaply at worker start (packages present, device arch); a
backend that passes ``supports`` and still fails at run time is reported with the
exception text, and forcing an SDPA backend never silently falls back: the context
manager allows exactly one kernel, so PyTorch raises instead.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import math
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import torch
import torch.nn.functional as F

from flashtui.core.variants import Layout
from flashtui.engine import variants as vp

FLASH_DTYPES = ("fp16", "bf16")
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda" | "cpu"
    name: str
    capability: tuple[int, int] | None = None

    @property
    def cc(self) -> float:
        return self.capability[0] + self.capability[1] / 10 if self.capability else 0.0


@dataclass(frozen=True)
class Shape:
    """The attention problem of one cell."""

    batch: int
    heads: int
    kv_heads: int
    seq: int
    head_dim: int
    dtype: str
    causal: bool
    backward: bool
    # The variant (window, documents, padding, q_len, ...); None: dense, as before.
    # ``seq`` is always the key count (the KV cache for decode), ``q_len`` the queries.
    layout: Layout | None = None

    @property
    def q_len(self) -> int:
        return self.layout.q_len if self.layout is not None else self.seq


@dataclass
class Prepared:
    """What the timed loop calls. ``inputs`` are the leaf tensors gradients flow to."""

    forward: Callable[[], torch.Tensor]
    inputs: tuple[torch.Tensor, ...]
    # Backend layout -> BHSD, for outputs and gradients.
    to_bhsd: Callable[[torch.Tensor], torch.Tensor] = lambda t: t
    # Held for the duration of warm-up + timing (e.g. SDPA's kernel selection).
    context: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    # SDPA's attn_mask and is_causal as the call passes them (PyTorch's checks need both).
    sdpa_mask: torch.Tensor | None = None
    sdpa_causal: bool = False


@dataclass(frozen=True)
class Backend:
    name: str
    family: str
    layout: str  # "bhsd" | "bshd"
    description: str
    availability: Callable[[DeviceInfo], tuple[bool, str | None]]
    supports_shape: Callable[[Shape, DeviceInfo], tuple[bool, str | None]]
    prepare: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Shape], Prepared]
    # Regexes of kernel/op names that prove this backend ran (see engine.dispatch).
    kernel_patterns: tuple[str, ...] = ()
    version: Callable[[], str | None] = lambda: None
    # Materialized by construction: "scores" (S x S per head) or "fused" (O(S)).
    memory_model: str = "fused"
    # Asked of the real inputs right before the first call: None, or why this backend will
    # not run them (for SDPA kernels, PyTorch's own can_use_* checks: its words, not ours).
    refusal: Callable[[Prepared, Shape], str | None] = lambda prepared, shape: None

    def supports(self, shape: Shape, device: DeviceInfo) -> tuple[bool, str | None]:
        ok, reason = self.availability(device)
        if not ok:
            return ok, reason
        ok, reason = self.supports_shape(shape, device)
        if not ok:
            return ok, reason
        plan = vp.plan(self.name, shape.layout, shape.backward)
        if not plan.runs:
            return False, plan.how
        return True, None


# ----------------------------------------------------------------- helpers
def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _is_regular_package(module: str) -> bool:
    """True for a package with an __init__ (flash-attn-4 leaves a bare namespace `flash_attn`)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


def _has_subpackage(package: str, sub: str) -> bool:
    """Look for ``package/sub/`` on disk without importing ``package``.

    Importing ``flash_attn`` loads FA2's CUDA extension when flash-attn is installed,
    which would cost worker start-up seconds just to learn whether FA4 is there.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(os.path.isfile(os.path.join(loc, sub, "__init__.py")) for loc in spec.submodule_search_locations)


def _always(_: DeviceInfo) -> tuple[bool, str | None]:
    return True, None


def _cuda_only(what: str) -> Callable[[DeviceInfo], tuple[bool, str | None]]:
    def check(device: DeviceInfo) -> tuple[bool, str | None]:
        if device.kind != "cuda":
            return False, f"{what} runs on CUDA GPUs only (this run is on {device.kind})"
        return True, None
    return check


def _any_shape(_: Shape, __: DeviceInfo) -> tuple[bool, str | None]:
    return True, None


def _half_only(name: str, max_head_dim: int, min_cc: float = 8.0,
               head_dims: tuple[int, ...] | None = None) -> Callable[[Shape, DeviceInfo], tuple[bool, str | None]]:
    def check(shape: Shape, device: DeviceInfo) -> tuple[bool, str | None]:
        if shape.dtype not in FLASH_DTYPES:
            return False, f"{name} needs fp16 or bf16, got {shape.dtype}"
        if device.kind == "cuda" and device.cc and device.cc < min_cc:
            return False, f"{name} needs compute capability >= {min_cc:g}, this GPU is {device.cc:g}"
        if shape.dtype == "bf16" and device.kind == "cuda" and device.cc and device.cc < 8.0:
            return False, f"bf16 needs compute capability >= 8.0, this GPU is {device.cc:g}"
        if head_dims is not None and shape.head_dim not in head_dims:
            return False, f"{name} supports head_dim {', '.join(map(str, head_dims))}, got {shape.head_dim}"
        if shape.head_dim > max_head_dim:
            return False, f"{name} supports head_dim <= {max_head_dim}, got {shape.head_dim}"
        if shape.head_dim % 8 != 0:
            return False, f"{name} needs head_dim divisible by 8, got {shape.head_dim}"
        return True, None
    return check


def _leaf(t: torch.Tensor, shape: Shape) -> torch.Tensor:
    return t.detach().requires_grad_(shape.backward)


def _bhsd_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shape: Shape):
    return _leaf(q, shape), _leaf(k, shape), _leaf(v, shape)


def _bshd_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shape: Shape):
    return tuple(_leaf(t.transpose(1, 2).contiguous(), shape) for t in (q, k, v))


def _bshd_to_bhsd(t: torch.Tensor) -> torch.Tensor:
    return t.transpose(1, 2)


def _first(result: Any) -> torch.Tensor:
    """flash-attn variants return out or (out, lse, ...)."""
    return result[0] if isinstance(result, (tuple, list)) else result


# ----------------------------------------------------------------- standard
def standard_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
                       row_offset: int | None = None, mask: torch.Tensor | None = None,
                       softcap: float | None = None) -> torch.Tensor:
    """The textbook matmul -> softmax -> matmul of the seed notebooks, in the input dtype.

    Materializes the full S x S score and probability matrices: that is the point.
    ``row_offset`` is the position of q's first row among the keys (default: the last
    rows, bottom-right aligned), so the parity oracle can run it on chunks of rows.
    ``softcap``: scores become softcap * tanh(scores / softcap). ``mask`` (boolean, True =
    attend, broadcast over heads) replaces the causal rule: it carries causality itself;
    masked scores get the dtype's lowest value, so a fully masked row cannot turn NaN.
    """
    group = q.shape[1] // k.shape[1]
    if group > 1:
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    elif causal:
        seq_q, seq_k = scores.shape[-2], scores.shape[-1]
        offset = seq_k - seq_q if row_offset is None else row_offset
        mask = torch.ones(seq_q, seq_k, dtype=torch.bool, device=q.device).triu(offset + 1)
        scores = scores.masked_fill(mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v)


def _prepare_standard(q, k, v, shape: Shape) -> Prepared:
    q, k, v = _bhsd_inputs(q, k, v, shape)
    layout = shape.layout
    if layout is None or not vp.features(layout):
        return Prepared(forward=lambda: standard_attention(q, k, v, shape.causal), inputs=(q, k, v))
    # The mask is built once here, outside the timed call (as a model builds it once per step).
    mask = vp.full_mask(layout, q.device) if vp.plan("standard", layout).path == vp.MASK else None
    return Prepared(forward=lambda: standard_attention(q, k, v, shape.causal, mask=mask, softcap=layout.softcap),
                    inputs=(q, k, v))


# ----------------------------------------------------------------- SDPA
def _sdpa_mask_args(shape: Shape, device: Any, name: str) -> tuple[torch.Tensor | None, bool]:
    """(attn_mask, is_causal) for SDPA: a mask where the variant needs one (engine.variants)."""
    layout = shape.layout
    if layout is None or not vp.features(layout):
        return None, shape.causal
    if vp.plan(name, layout).path == vp.MASK:
        return vp.full_mask(layout, device), False
    # Native: one query (decode) sees the whole cache; q_len == seq is plain causal.
    return None, shape.causal and layout.q_len == layout.seq


def _sdpa_forward(q, k, v, shape: Shape, mask: torch.Tensor | None, causal: bool) -> Callable[[], torch.Tensor]:
    kwargs: dict[str, Any] = {"is_causal": causal}
    if mask is not None:
        kwargs["attn_mask"] = mask
    if shape.kv_heads != shape.heads:
        kwargs["enable_gqa"] = True
    return lambda: F.scaled_dot_product_attention(q, k, v, **kwargs)


def _sdpa_prepare(kernel_name: str, name: str) -> Callable[..., Prepared]:
    def prepare(q, k, v, shape: Shape) -> Prepared:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = getattr(SDPBackend, kernel_name)
        q, k, v = _bhsd_inputs(q, k, v, shape)
        mask, causal = _sdpa_mask_args(shape, q.device, name)
        # Exactly one kernel allowed: PyTorch raises rather than fall back.
        return Prepared(forward=_sdpa_forward(q, k, v, shape, mask, causal), inputs=(q, k, v),
                        context=lambda: sdpa_kernel([backend]), sdpa_mask=mask, sdpa_causal=causal)
    return prepare


def _sdpa_flash_availability(device: DeviceInfo) -> tuple[bool, str | None]:
    if device.kind == "cuda" and device.cc and device.cc < 8.0:
        return False, f"sdpa-flash needs compute capability >= 8.0 (Ampere), this GPU is {device.cc:g}"
    return True, None


def _sdpa_cudnn_availability(device: DeviceInfo) -> tuple[bool, str | None]:
    ok, reason = _cuda_only("sdpa-cudnn")(device)
    if ok and not torch.backends.cudnn.is_available():
        return False, "sdpa-cudnn needs cuDNN, which this torch build lacks"
    return ok, reason


# PyTorch's own per-kernel checks (torch.backends.cuda.can_use_*), by SDPBackend name.
_SDPA_CHECKS = {"FLASH_ATTENTION": ("can_use_flash_attention", "flash attention kernel"),
                "EFFICIENT_ATTENTION": ("can_use_efficient_attention", "memory-efficient kernel"),
                "CUDNN_ATTENTION": ("can_use_cudnn_attention", "cuDNN attention kernel")}
_TRIGGERED = re.compile(r"\s*\(Triggered internally at [^)]*\)\s*")


def clean_warning(text: str) -> str:
    """A PyTorch warning as one sentence: no "(Triggered internally at file:line.)", one space."""
    return " ".join(_TRIGGERED.sub(" ", text).split()).strip().rstrip(":")


def sdpa_reasons(messages: list[str]) -> str:
    """PyTorch's warnings as one line, noise and repeats dropped, empty lead-ins
    ("Flash attention kernel not used because") left out when details follow."""
    lines = [clean_warning(m) for m in messages]
    lines = [line for line in dict.fromkeys(lines) if line]
    details = [line for line in lines if not line.lower().endswith("not used because")]
    return "; ".join(details or lines)


def _sdpa_refusal(kernel_name: str, backend_name: str) -> Callable[[Prepared, Shape], str | None]:
    """Ask PyTorch whether ``kernel_name`` takes these exact inputs (CUDA; None elsewhere)."""
    def refusal(prepared: Prepared, shape: Shape) -> str | None:
        check_name, what = _SDPA_CHECKS.get(kernel_name, (None, None))
        q, k, v = prepared.inputs[:3]
        check = getattr(torch.backends.cuda, check_name or "", None)
        params_cls = getattr(torch.backends.cuda, "SDPAParams", None)
        if check is None or params_cls is None or q.device.type != "cuda":
            return None
        gqa = shape.kv_heads != shape.heads
        mask, causal = prepared.sdpa_mask, prepared.sdpa_causal
        try:
            params = params_cls(q, k, v, mask, 0.0, causal, gqa)
        except TypeError:  # torch < 2.5: no enable_gqa argument
            params = params_cls(q, k, v, mask, 0.0, causal)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ok = check(params, True)
        if ok:
            return None
        why = sdpa_reasons([str(w.message) for w in caught]) or documented_refusal(
            kernel_name, gqa=gqa, masked=mask is not None, shape=shape)
        masked = " with an attn_mask" if mask is not None else ""
        gqa_words = f" with GQA ({shape.kv_heads} KV heads for {shape.heads})" if gqa else ""
        return f"PyTorch's {what} refuses {shape.dtype} head_dim {shape.head_dim}{masked}{gqa_words}: {why}"
    return refusal


def documented_refusal(kernel_name: str, gqa: bool, masked: bool, shape: Shape) -> str:
    """Why a kernel refused when PyTorch's check printed its reason to the C++ log instead
    of Python's warnings (seen on the H200, torch 2.11): the documented rule that applies
    (torch.nn.functional.scaled_dot_product_attention: enable_gqa runs in the flash and
    math kernels on CUDA only; the flash kernel takes no attn_mask), said as such."""
    rules = []
    if gqa and kernel_name == "EFFICIENT_ATTENTION":
        rules.append("PyTorch documents GQA (enable_gqa) for the flash and math kernels only; "
                     "repeat K/V to full heads or use sdpa-flash")
    if masked and kernel_name == "FLASH_ATTENTION":
        rules.append("the flash kernel takes no attn_mask (use flex or fa4 for this variant)")
    if not rules:
        return "PyTorch gave no reason (its check logs to the worker's stderr)"
    return "no reason printed; " + "; ".join(rules)


def sdpa_choice(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shape: Shape,
                mask: torch.Tensor | None = None, causal: bool | None = None) -> str | None:
    """The kernel PyTorch's own dispatcher picks for these inputs ("FLASH_ATTENTION", ...)."""
    from torch.nn.attention import SDPBackend

    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None:
        return None
    kwargs: dict[str, Any] = {"is_causal": shape.causal if causal is None else causal}
    if mask is not None:
        kwargs["attn_mask"] = mask
    if shape.kv_heads != shape.heads:
        kwargs["enable_gqa"] = True
    try:
        index = int(choose(q, k, v, **kwargs))
    except Exception:  # noqa: BLE001 - an old torch or an unusual input: say NA, not a guess
        return None
    names = {int(member.value): name for name, member in SDPBackend.__members__.items()}
    return names.get(index)


def _prepare_sdpa_auto(q, k, v, shape: Shape) -> Prepared:
    """Plain F.scaled_dot_product_attention: PyTorch picks the kernel, as in user code."""
    q, k, v = _bhsd_inputs(q, k, v, shape)
    mask, causal = _sdpa_mask_args(shape, q.device, "sdpa")
    return Prepared(forward=_sdpa_forward(q, k, v, shape, mask, causal), inputs=(q, k, v),
                    sdpa_mask=mask, sdpa_causal=causal)


# ----------------------------------------------------------------- flex
def _prepare_flex(q, k, v, shape: Shape) -> Prepared:
    from torch.nn.attention.flex_attention import create_block_mask

    from flashtui.engine import flex_compile

    q, k, v = _bhsd_inputs(q, k, v, shape)
    gqa = shape.kv_heads != shape.heads
    layout = shape.layout
    if layout is not None and vp.features(layout):
        # The variant as mask_mod (block-sparse: blocks nobody sees are skipped) and score_mod.
        flex = flex_compile.compiled()
        mask_mod, score_mod, rows = vp.flex_mods(layout, q.device)
        variant_mask = None
        if mask_mod is not None:
            variant_mask = create_block_mask(mask_mod, B=rows, H=None, Q_LEN=layout.q_len,
                                             KV_LEN=layout.seq, device=q.device)
        return Prepared(forward=lambda: flex(q, k, v, block_mask=variant_mask, score_mod=score_mod,
                                             enable_gqa=gqa), inputs=(q, k, v))
    flex = flex_compile.compiled()  # static shapes: flex_compile says why
    block_mask = None
    if shape.causal:
        def causal_mask(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx
        block_mask = create_block_mask(causal_mask, B=None, H=None, Q_LEN=shape.seq,
                                       KV_LEN=shape.seq, device=q.device)

    def forward() -> torch.Tensor:
        return flex(q, k, v, block_mask=block_mask, enable_gqa=gqa)
    return Prepared(forward=forward, inputs=(q, k, v))


def _flex_shape(shape: Shape, device: DeviceInfo) -> tuple[bool, str | None]:
    if shape.head_dim < 16 or shape.head_dim & (shape.head_dim - 1):
        return False, f"flex needs a power-of-two head_dim >= 16, got {shape.head_dim}"
    if shape.seq < 128:
        return False, f"flex block masks need seq >= 128, got {shape.seq}"
    return True, None


# ----------------------------------------------------------------- flash-attn 2/3/4
def _flash_attn_prepare(module: str, name: str) -> Callable[..., Prepared]:
    """prepare() for a flash-attn package's ``flash_attn_func`` (BSHD layout, imported late).

    Variants take the package's own paths (engine.variants.plan): window_size and softcap
    keywords, ``flash_attn_varlen_func`` over cu_seqlens for documents and padded rows,
    and (fa4) its page_table for a paged cache. Every keyword is checked against the
    installed function first: a mismatch is one readable reason, never a TypeError.
    """
    def prepare(q, k, v, shape: Shape) -> Prepared:
        package = importlib.import_module(module)
        layout = shape.layout
        used = vp.features(layout) if layout is not None else []
        if not used:
            flash_attn_func = package.flash_attn_func
            q, k, v = _bshd_inputs(q, k, v, shape)
            return Prepared(forward=lambda: _first(flash_attn_func(q, k, v, causal=shape.causal)),
                            inputs=(q, k, v), to_bhsd=_bshd_to_bhsd)
        capability = torch.cuda.get_device_capability(q.device) if q.is_cuda else None
        kwargs = vp.flash_kwargs(layout, name, shape.backward, capability)
        if "page_size" in used:
            return _flash_paged(package, module, q, k, v, shape, kwargs)
        if "docs" in used or "pad" in used:
            return _flash_varlen(package, module, q, k, v, shape, kwargs)
        fn = package.flash_attn_func
        vp.check_keywords(fn, ["causal", *kwargs], f"{module}.flash_attn_func")
        q, k, v = _bshd_inputs(q, k, v, shape)
        return Prepared(forward=lambda: _first(fn(q, k, v, causal=shape.causal, **kwargs)),
                        inputs=(q, k, v), to_bhsd=_bshd_to_bhsd)
    return prepare


_VARLEN_KEYWORDS = ["cu_seqlens_q", "cu_seqlens_k", "max_seqlen_q", "max_seqlen_k", "causal"]


def _flash_varlen(package, module: str, q, k, v, shape: Shape, kwargs: dict[str, Any]) -> Prepared:
    """Documents: one varlen call over every row's documents. Padding: unpad the real
    tokens, one varlen call, scatter back into a zero (B, Q, H, D) output (the path
    transformers' FlashAttention integration takes for a padded batch, timed with it)."""
    fn = package.flash_attn_varlen_func
    vp.check_keywords(fn, [*_VARLEN_KEYWORDS, *kwargs], f"{module}.flash_attn_varlen_func")
    layout = shape.layout
    assert layout is not None
    q, k, v = _bshd_inputs(q, k, v, shape)
    batch, q_len, seq = shape.batch, layout.q_len, layout.seq
    heads, kv_heads, dim = shape.heads, shape.kv_heads, shape.head_dim
    dev = q.device
    if layout.doc_lengths is not None:
        lengths = [n for row in layout.doc_lengths for n in row]
        cu, longest = vp.cu_seqlens(lengths, dev), max(lengths)

        def forward() -> torch.Tensor:
            out = fn(q.view(batch * seq, heads, dim), k.view(batch * seq, kv_heads, dim),
                     v.view(batch * seq, kv_heads, dim), cu_seqlens_q=cu, cu_seqlens_k=cu,
                     max_seqlen_q=longest, max_seqlen_k=longest, causal=shape.causal, **kwargs)
            return _first(out).view(batch, seq, heads, dim)
        return Prepared(forward=forward, inputs=(q, k, v), to_bhsd=_bshd_to_bhsd)
    q_starts = [max(layout.q_offset, layout.pad_start(r)) - layout.q_offset for r in range(batch)]
    q_lengths = [q_len - s for s in q_starts]
    k_lengths = list(layout.valid_lengths or ())
    idx_q = vp.token_index(q_starts, q_len, dev)
    idx_k = vp.token_index([layout.pad_start(r) for r in range(batch)], seq, dev)
    cu_q, cu_k = vp.cu_seqlens(q_lengths, dev), vp.cu_seqlens(k_lengths, dev)
    max_q, max_k = max(q_lengths), max(k_lengths)

    def forward() -> torch.Tensor:
        q_real = q.reshape(batch * q_len, heads, dim).index_select(0, idx_q)
        k_real = k.reshape(batch * seq, kv_heads, dim).index_select(0, idx_k)
        v_real = v.reshape(batch * seq, kv_heads, dim).index_select(0, idx_k)
        out = _first(fn(q_real, k_real, v_real, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, max_seqlen_q=max_q,
                        max_seqlen_k=max_k, causal=shape.causal, **kwargs))
        full = out.new_zeros(batch * q_len, heads, dim).index_copy(0, idx_q, out)
        return full.view(batch, q_len, heads, dim)
    return Prepared(forward=forward, inputs=(q, k, v), to_bhsd=_bshd_to_bhsd)


def _flash_paged(package, module: str, q, k, v, shape: Shape, kwargs: dict[str, Any]) -> Prepared:
    """A paged KV cache: pages of ``page_size`` tokens in shuffled order behind a page table
    (built here, outside the timed call), read through flash_attn_varlen_func."""
    fn = package.flash_attn_varlen_func
    vp.check_keywords(fn, ["page_table", "seqused_k", "max_seqlen_k", "causal", *kwargs],
                      f"{module}.flash_attn_varlen_func")
    layout = shape.layout
    assert layout is not None and layout.page_size is not None
    q_b, k_b, v_b = (t.transpose(1, 2).contiguous() for t in (q, k, v))
    k_pages, v_pages, table, used = vp.paged_cache(k_b, v_b, layout.page_size, seed=layout.seq)
    del k_b, v_b

    def forward() -> torch.Tensor:
        return _first(fn(q_b, k_pages, v_pages, page_table=table, seqused_k=used, max_seqlen_k=layout.seq,
                         causal=shape.causal, **kwargs))
    return Prepared(forward=forward, inputs=(q_b, k_pages, v_pages), to_bhsd=_bshd_to_bhsd)


def _fa2_availability(device: DeviceInfo) -> tuple[bool, str | None]:
    if device.kind != "cuda":
        return False, f"fa2 runs on CUDA GPUs only (this run is on {device.kind})"
    if not _is_regular_package("flash_attn"):
        return False, "flash-attn not installed: pip install flash-attn --no-build-isolation"
    if device.cc and device.cc < 8.0:
        return False, f"fa2 needs compute capability >= 8.0 (Ampere or newer), this GPU is {device.cc:g}"
    return True, None


def _fa3_availability(device: DeviceInfo) -> tuple[bool, str | None]:
    if device.kind != "cuda":
        return False, f"fa3 runs on CUDA GPUs only (this run is on {device.kind})"
    if device.capability and device.capability[0] != 9:
        return False, f"FA3 needs Hopper (compute capability 9.0), this GPU is {device.cc:g}"
    if not _is_regular_package("flash_attn_interface"):
        return False, ("FlashAttention-3 not installed: build it from flash-attention/hopper "
                       "(cd hopper && python setup.py install)")
    return True, None


def _fa4_availability(device: DeviceInfo) -> tuple[bool, str | None]:
    if device.kind != "cuda":
        return False, f"fa4 runs on CUDA GPUs only (this run is on {device.kind})"
    if device.capability and device.capability[0] not in (9, 10, 11):
        return False, f"FA4 needs Hopper or Blackwell (compute capability 9.x/10.x), this GPU is {device.cc:g}"
    if not _has_subpackage("flash_attn", "cute"):
        return False, "flash-attn-4 not installed: pip install flash-attn-4"
    return True, None


def _fa4_version() -> str | None:
    return _dist_version("flash-attn-4") or _dist_version("flash_attn_4")


# ----------------------------------------------------------------- registry
REGISTRY: dict[str, Backend] = {
    b.name: b
    for b in [
        Backend("standard", "reference", "bhsd",
                "textbook matmul -> softmax -> matmul (materializes S x S)",
                _always, _any_shape, _prepare_standard,
                kernel_patterns=(r"gemm|matmul|bmm|addmm", r"softmax"), memory_model="scores",
                version=lambda: torch.__version__),
        Backend("sdpa", "sdpa", "bhsd", "PyTorch SDPA, its own kernel choice (as user code calls it)",
                _always, _any_shape, _prepare_sdpa_auto,
                kernel_patterns=(r".",), version=lambda: torch.__version__),
        Backend("sdpa-math", "sdpa", "bhsd", "PyTorch SDPA reference (math) kernel",
                _always, _any_shape, _sdpa_prepare("MATH", "sdpa-math"),
                kernel_patterns=(r"_scaled_dot_product_attention_math|_safe_softmax|softmax",),
                memory_model="scores", version=lambda: torch.__version__),
        Backend("sdpa-flash", "sdpa", "bhsd", "PyTorch SDPA forced to its FlashAttention-2 kernel",
                _sdpa_flash_availability, _any_shape, _sdpa_prepare("FLASH_ATTENTION", "sdpa-flash"),
                kernel_patterns=(r"flash", r"_flash_attention"), version=lambda: torch.__version__,
                refusal=_sdpa_refusal("FLASH_ATTENTION", "sdpa-flash")),
        Backend("sdpa-efficient", "sdpa", "bhsd", "PyTorch SDPA memory-efficient kernel",
                _cuda_only("sdpa-efficient"), _any_shape, _sdpa_prepare("EFFICIENT_ATTENTION", "sdpa-efficient"),
                kernel_patterns=(r"fmha|efficient_attention|cutlassF",), version=lambda: torch.__version__,
                refusal=_sdpa_refusal("EFFICIENT_ATTENTION", "sdpa-efficient")),
        Backend("sdpa-cudnn", "sdpa", "bhsd", "PyTorch SDPA cuDNN kernel",
                _sdpa_cudnn_availability, _any_shape, _sdpa_prepare("CUDNN_ATTENTION", "sdpa-cudnn"),
                kernel_patterns=(r"cudnn|sm\d+_xmma|flash_fprop|fmha|_cudnn_attention",),
                version=lambda: str(torch.backends.cudnn.version()),
                refusal=_sdpa_refusal("CUDNN_ATTENTION", "sdpa-cudnn")),
        Backend("flex", "flex", "bhsd", "FlexAttention, compiled with torch.compile",
                _cuda_only("flex (compiled FlexAttention)"), _flex_shape, _prepare_flex,
                kernel_patterns=(r"triton|flex_attention",), version=lambda: torch.__version__),
        Backend("fa2", "flash-attn", "bshd", "flash_attn.flash_attn_func (FlashAttention-2)",
                _fa2_availability, _half_only("fa2", 256), _flash_attn_prepare("flash_attn", "fa2"),
                kernel_patterns=(r"flash_fwd|flash_bwd|flash::",),
                version=lambda: _dist_version("flash-attn") or _dist_version("flash_attn")),
        Backend("fa3", "flash-attn", "bshd", "flash_attn_interface.flash_attn_func (FlashAttention-3)",
                _fa3_availability, _half_only("fa3", 256, min_cc=9.0), _flash_attn_prepare("flash_attn_interface", "fa3"),
                kernel_patterns=(r"flash|FlashAttn",),
                version=lambda: _dist_version("flash-attn-3") or _dist_version("flash_attn_3")),
        Backend("fa4", "flash-attn", "bshd", "flash_attn.cute.flash_attn_func (FlashAttention-4)",
                _fa4_availability, _half_only("fa4", 256, min_cc=9.0), _flash_attn_prepare("flash_attn.cute", "fa4"),
                kernel_patterns=(r"flash|Flash|cute|kernel_cutlass",), version=_fa4_version),
    ]
}


def availability(device: DeviceInfo) -> dict[str, dict[str, Any]]:
    """Cheap per-backend availability for WorkerReady: no kernels run, no heavy imports."""
    out: dict[str, dict[str, Any]] = {}
    for name, backend in REGISTRY.items():
        ok, reason = backend.availability(device)
        try:
            version = backend.version() if ok else None
        except Exception:  # noqa: BLE001 - a broken version lookup must not hide a backend
            version = None
        out[name] = {"available": ok, "reason": reason, "family": backend.family,
                     "description": backend.description, "version": version}
    return out


def theory_bytes(backend: Backend, shape: Shape) -> int:
    """Bytes the backend must materialize by construction for one call.

    "scores" backends hold the Q x S score and probability matrices per (batch, head)
    (x2 more for the backward's saved probabilities and score gradients) -- with a
    window too: a mask removes nothing from them; fused backends hold only the output
    and the row log-sum-exp (plus dq, dk, dv backward). A mask path adds its mask
    (boolean, and for SDPA the additive copy in the input dtype it converts it to);
    FlashAttention's unpad path adds its gathered copies of the real tokens.
    """
    elem = ELEMENT_BYTES[shape.dtype]
    bh = shape.batch * shape.heads
    q_len, layout = shape.q_len, shape.layout
    out = bh * q_len * shape.head_dim * elem
    extra = 0
    if layout is not None:
        plan = vp.plan(backend.name, layout, shape.backward)
        if plan.path == vp.MASK:
            extra += vp.mask_bytes(layout) * (1 + (elem if backend.family == "sdpa" else 0))
        if backend.family == "flash-attn" and "pad" in vp.features(layout):
            q_tokens = sum(layout.query_rows(r) for r in range(shape.batch))
            k_tokens = sum(layout.valid_lengths or ())
            extra += (q_tokens * shape.heads + 2 * k_tokens * shape.kv_heads) * shape.head_dim * elem + out
    if backend.memory_model == "scores":
        square = bh * q_len * shape.seq * elem
        total = 2 * square + out
        if shape.backward:
            total += 2 * square + 3 * out
        return int(total + extra)
    lse = bh * q_len * 4
    total = out + lse
    if shape.backward:
        kv = shape.batch * shape.kv_heads * shape.seq * shape.head_dim * elem
        total += out + 2 * kv
    return int(total + extra)


