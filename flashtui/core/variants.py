"""Attention variants: sliding windows, soft-capping, packed documents, padding, decode.

Standard library only: the UI validates and describes a variant, the engine builds its
inputs and masks from the same :class:`Layout`, and both count its work here.

What each spec field means (kernel mode):

``window`` N
    causal sliding-window (local) attention: a query sees itself and the N-1 keys
    before it, the N most recent (Mistral's ``sliding_window``; FlashAttention's
    ``window_size=(N-1, 0)``). A window of at least the sequence is plain causal.
``softcap`` X
    scores ``s`` (already scaled by 1/sqrt(D)) become ``X * tanh(s / X)`` before the
    softmax (Gemma-2's ``attn_logit_softcapping``).
``docs`` N
    each row is packed from N documents whose lengths are drawn from the seed (uniform
    cut points, every document at least one token); attention never crosses one.
``pad`` F
    a padded batch: ``floor(F * seq)`` tokens of each row are padding, on the left (as
    a batch of prompts is padded for generation), masked out of every query's keys.
    Padding query rows have no output: parity compares real rows only.
``q_len`` N
    queries per row, the last N positions, against keys of all ``seq`` positions (a KV
    cache of ``seq`` tokens); ``q_len`` 1 is one decode step.
``page_size`` P
    the KV cache lives in pages of P tokens behind a page table (vLLM-style), where a
    backend has such a cache.

FLOPs (:func:`attention_flops`) count the (query, key) pairs a variant really visits,
with FlashAttention's convention that a causal row's diagonal counts half (so dense
causal attention is exactly ``4*B*H*S*S*D / 2``, as before). Bytes
(:func:`min_hbm_bytes`) are the least HBM traffic: every needed q, k, v element read
once, the output written once; for decode that is the KV cache.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Any

# The spec fields that make a variant, in the order labels list them.
VARIANT_FIELDS = ("window", "softcap", "docs", "pad", "q_len", "page_size")
# CLI flag of each field (messages name the flag a user typed).
FLAGS = {"window": "--window", "softcap": "--softcap", "docs": "--docs", "pad": "--pad",
         "q_len": "--q-len", "page_size": "--page-size"}
# Kernel-mode only: in model mode the model's own config decides these.
KERNEL_ONLY = ("window", "softcap", "docs", "q_len", "page_size")
# On a GPU whose peaks are unknown, a cell below this many FLOPs per byte of HBM
# traffic is judged on bandwidth: below every current GPU's ridge point (A100 ~150,
# H200 ~206, H100 ~295 FLOP/B dense bf16), far above decode's (~H/KV heads).
DEFAULT_RIDGE_FLOP_PER_BYTE = 100.0
LSE_BYTES = 4  # fp32 log-sum-exp per query row and head


@dataclass(frozen=True)
class Layout:
    """The concrete attention problem of one cell: which keys each query of each row sees.

    Rows are the batch. Positions run 0..seq-1 in every row; queries are the last
    ``q_len`` of them. ``doc_lengths[b]`` partitions row b into documents;
    ``valid_lengths[b]`` says the last that many positions of row b are real (left
    padding). At most one of the two is set (the spec refuses both).
    """

    batch: int
    seq: int
    q_len: int
    causal: bool
    window: int | None = None
    softcap: float | None = None
    doc_lengths: tuple[tuple[int, ...], ...] | None = None
    valid_lengths: tuple[int, ...] | None = None
    page_size: int | None = None

    @property
    def q_offset(self) -> int:
        """Position of the first query among the keys."""
        return self.seq - self.q_len

    @property
    def effective_window(self) -> int | None:
        """The window, or None when it changes nothing (at least the sequence)."""
        return self.window if self.window is not None and self.window < self.seq else None

    @property
    def is_dense(self) -> bool:
        """Plain attention: what flashtui measured before variants existed."""
        return (self.window is None and self.softcap is None and self.doc_lengths is None
                and self.valid_lengths is None and self.q_len == self.seq and self.page_size is None)

    @property
    def rows_differ(self) -> bool:
        """Rows have different masks (their own documents or padding)."""
        per_row = self.doc_lengths if self.doc_lengths is not None else self.valid_lengths
        return per_row is not None and len(set(per_row)) > 1

    def segments(self, row: int) -> list[tuple[int, int]]:
        """The [start, end) spans of row ``row`` that attend only within themselves."""
        if self.doc_lengths is not None:
            spans, start = [], 0
            for length in self.doc_lengths[row]:
                spans.append((start, start + length))
                start += length
            return spans
        if self.valid_lengths is not None:
            return [(self.seq - self.valid_lengths[row], self.seq)]
        return [(0, self.seq)]

    def pad_start(self, row: int) -> int:
        """First real position of ``row`` (0 without padding)."""
        return 0 if self.valid_lengths is None else self.seq - self.valid_lengths[row]

    def query_rows(self, row: int) -> int:
        """Real (non-padding) queries of ``row``."""
        return self.seq - max(self.q_offset, self.pad_start(row))

    def needs_mask(self) -> bool:
        """Something other than plain causal / full attention decides who sees whom."""
        if self.effective_window is not None or self.doc_lengths is not None:
            return True
        if self.valid_lengths is not None and any(v < self.seq for v in self.valid_lengths):
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        """What a cell records (``extra["variant"]``): the drawn lengths included."""
        out: dict[str, Any] = {"q_len": self.q_len, "seq_k": self.seq}
        if self.window is not None:
            out["window"] = self.window
        if self.softcap is not None:
            out["softcap"] = self.softcap
        if self.doc_lengths is not None:
            out["doc_lengths"] = [list(row) for row in self.doc_lengths]
        if self.valid_lengths is not None:
            out["valid_lengths"] = list(self.valid_lengths)
        if self.page_size is not None:
            out["page_size"] = self.page_size
        return out


# ------------------------------------------------------------------ drawing lengths
def doc_lengths(seq: int, docs: int, seed: int, row: int) -> tuple[int, ...]:
    """``docs`` document lengths summing to ``seq``, each >= 1, drawn from the seed.

    Uniform cut points (stick-breaking), so lengths vary as in a real packed batch;
    the same (seed, seq, row) gives the same lengths in every process.
    """
    if docs <= 1:
        return (seq,)
    rng = random.Random(zlib.crc32(f"{seed}:docs:{seq}:{docs}:{row}".encode()))
    cuts = sorted(rng.sample(range(1, seq), docs - 1))
    bounds = [0, *cuts, seq]
    return tuple(b - a for a, b in zip(bounds, bounds[1:]))


def padding_tokens(seq: int, pad: float) -> int:
    """Padding tokens of a row: floor(pad * seq), so a row always keeps a real token."""
    return min(int(pad * seq), seq - 1)


def layout_for(spec: Any, seq: int) -> Layout:
    """The layout of one cell of ``spec`` (a SweepSpec or anything with its fields)."""
    q_len = spec.q_len if spec.q_len is not None else seq
    docs = None
    if spec.docs is not None:
        docs = tuple(doc_lengths(seq, spec.docs, spec.seed, row) for row in range(spec.batch))
    valid = None
    if spec.pad is not None:
        valid = (seq - padding_tokens(seq, spec.pad),) * spec.batch
    return Layout(batch=spec.batch, seq=seq, q_len=min(q_len, seq), causal=spec.causal,
                  window=spec.window, softcap=spec.softcap, doc_lengths=docs, valid_lengths=valid,
                  page_size=spec.page_size)


# ------------------------------------------------------------------ work and traffic
def _window_sum(n: int, window: int | None) -> int:
    """sum_{r=1..n} min(r, window): keys seen by the first n causal rows of a segment."""
    if n <= 0:
        return 0
    if window is None or n <= window:
        return n * (n + 1) // 2
    return window * (window + 1) // 2 + (n - window) * window


def visible_pairs(layout: Layout) -> float:
    """(query, key) pairs attended over the whole batch, per head.

    Causal rows count their diagonal half (FlashAttention's convention: dense causal is
    S*S/2); padding queries count nothing.
    """
    window = layout.effective_window
    total = 0.0
    for row in range(layout.batch):
        for start, end in layout.segments(row):
            first_q = max(start, layout.q_offset)
            if first_q >= end:
                continue
            n_queries = end - first_q
            if layout.causal:
                a, b = first_q - start + 1, end - start  # 1-based row numbers inside the segment
                total += _window_sum(b, window) - _window_sum(a - 1, window) - 0.5 * n_queries
            else:
                total += n_queries * (end - start)
    return total


def dense_pairs(layout: Layout) -> float:
    """Pairs of the same shape without any variant: full S x S (halved when causal)."""
    square = float(layout.batch) * layout.seq * layout.seq
    return square / 2.0 if layout.causal else square


def attention_flops(layout: Layout, heads: int, head_dim: int, backward: bool) -> float:
    """FLOPs of one call: 4 * pairs * H * D (two matmuls), x3.5 forward+backward."""
    flops = 4.0 * visible_pairs(layout) * heads * head_dim
    return flops * 3.5 if backward else flops


def needed_tokens(layout: Layout) -> tuple[int, int]:
    """(query tokens, key tokens) a fused kernel must touch over the batch.

    Keys: the union of what the queries see (a decode step with a window needs only
    the last N keys; documents without a query need none).
    """
    window = layout.effective_window
    q_tokens = k_tokens = 0
    for row in range(layout.batch):
        for start, end in layout.segments(row):
            first_q = max(start, layout.q_offset)
            if first_q >= end:
                continue
            q_tokens += end - first_q
            if layout.causal and window is not None:
                k_tokens += end - max(start, first_q - window + 1)
            else:
                k_tokens += end - start
    return q_tokens, k_tokens


def min_hbm_bytes(layout: Layout, heads: int, kv_heads: int, head_dim: int, element_bytes: int,
                  backward: bool) -> int:
    """The least HBM traffic of one call: needed q, k, v read once, o written once.

    Forward+backward adds the backward's own minimum: q, k, v, o and dO read, dq, dk,
    dv written, and the row log-sum-exp written then read. A paged cache adds its page
    table (int32 per page per row).
    """
    q_tokens, k_tokens = needed_tokens(layout)
    q_elems = q_tokens * heads * head_dim
    kv_elems = k_tokens * kv_heads * head_dim
    total = (2 * q_elems + 2 * kv_elems) * element_bytes
    if backward:
        total += (4 * q_elems + 4 * kv_elems) * element_bytes + 2 * LSE_BYTES * q_tokens * heads
    if layout.page_size:
        total += 4 * layout.batch * -(-layout.seq // layout.page_size)
    return int(total)


def judged_on(flops: float, n_bytes: int, peak_tflops: float | None, peak_gbps: float | None,
              kv_cache: bool) -> str | None:
    """``"memory"`` when the call is memory-bound (judge it on GB/s), ``"compute"`` when not.

    With the GPU's peaks known: fewer FLOPs per byte than its ridge point (peak FLOP/s
    over peak bytes/s). Without them (CPU, an unknown GPU) only a short query block
    reading a KV cache (``kv_cache``: q_len < seq, decode) below
    DEFAULT_RIDGE_FLOP_PER_BYTE is called memory-bound; anything else is None (not judged).
    """
    if n_bytes <= 0:
        return None
    intensity = flops / n_bytes
    if peak_tflops and peak_gbps:
        ridge = (peak_tflops * 1e12) / (peak_gbps * 1e9)
        return "memory" if intensity < ridge else "compute"
    if kv_cache and intensity < DEFAULT_RIDGE_FLOP_PER_BYTE:
        return "memory"
    return None


# ------------------------------------------------------------------ words
def describe(spec: Any) -> str:
    """``"window 4096, softcap 50"`` or ``"dense"``: the variant of a spec (object or dict)."""
    get = spec.get if isinstance(spec, dict) else (lambda name, default=None: getattr(spec, name, default))
    parts = []
    for name in VARIANT_FIELDS:
        value = get(name, None)
        if value is None:
            continue
        label = name.replace("_", "-")
        if name == "docs":
            parts.append(f"{value} documents")
        elif name == "pad":
            parts.append(f"pad {float(value):g}")
        elif name == "softcap":
            parts.append(f"softcap {float(value):g}")
        else:
            parts.append(f"{label} {value}")
    return ", ".join(parts) if parts else "dense"


def spec_notes(spec: Any) -> list[str]:
    """Things a user should know about an allowed but odd variant (one line each)."""
    notes = []
    seqs = list(spec.seqs)
    if spec.window is not None:
        covered = [s for s in seqs if spec.window >= s]
        if covered:
            which = "every seq" if len(covered) == len(seqs) else "seq " + ", ".join(map(str, covered))
            notes.append(f"--window {spec.window} is at least {which}: a query already sees every "
                         "earlier key there, so those cells are plain causal attention")
    if spec.pad is not None:
        none_padded = [s for s in seqs if padding_tokens(s, spec.pad) == 0]
        if none_padded:
            notes.append(f"--pad {spec.pad:g} pads no token at seq " + ", ".join(map(str, none_padded)))
    if spec.docs == 1:
        notes.append("--docs 1 is one document per row: plain causal attention")
    return notes


def cell_notes(layout: Layout) -> list[str]:
    """The notes of :func:`spec_notes` that apply to one cell's layout."""
    notes = []
    if layout.window is not None and layout.window >= layout.seq:
        notes.append(f"window {layout.window} >= seq {layout.seq}: plain causal attention here")
    if layout.valid_lengths is not None and all(v == layout.seq for v in layout.valid_lengths):
        notes.append(f"no token is padding at seq {layout.seq}")
    if layout.doc_lengths is not None and all(len(row) == 1 for row in layout.doc_lengths):
        notes.append("one document per row: plain causal attention")
    return notes


__all__ = [
    "DEFAULT_RIDGE_FLOP_PER_BYTE", "FLAGS", "KERNEL_ONLY", "Layout", "VARIANT_FIELDS",
    "attention_flops", "cell_notes", "dense_pairs", "describe", "doc_lengths", "judged_on", "layout_for",
    "min_hbm_bytes", "needed_tokens", "padding_tokens", "spec_notes", "visible_pairs",
]
