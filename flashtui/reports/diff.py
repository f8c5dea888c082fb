"""Compare two sessions cell by cell: what got slower, bigger, or stopped running.

Cells are matched on (backend, seq, dtype). For each pair the ratios B/A of
``median_ms`` and ``peak_alloc_bytes`` are computed (NA when either side lacks the
number). A *regression* is a pair where B is slower than A by more than
``threshold`` (0.10 = 10%), where B allocates more than ``threshold`` more memory, or
where A ran and B did not (ok -> oom/failed/unsupported). Cells present on one side
only are listed, as are the provenance and spec keys that differ, because a diff
across torch versions or head dims explains itself that way.

Noise is no verdict: a pair where either side is ``noisy`` is "not comparable: noisy"
and never a time regression or improvement; where both sides kept their per-rep
samples (``samples_ms``), a time change counts only if the two interquartile ranges
do not overlap (B's 25th percentile above A's 75th, or the reverse), not on a ratio of
medians alone.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.core.spec import CellKey
from flashtui.core.units import NA, fmt_bytes, fmt_ms, fmt_ratio
from flashtui.core.variants import describe
from flashtui.reports.markdown import backend_order

# Provenance keys shown first when they differ (others follow alphabetically).
KEY_PROVENANCE = ("device_name", "torch", "cuda", "driver", "cudnn", "flash_attn",
                  "flash_attn_3", "flash_attn_4", "triton", "transformers", "python")
# Provenance keys that differ on every run and say nothing about the numbers.
IGNORED_PROVENANCE = ("hostname", "pid", "timestamp", "started_at")

@dataclass
class CellDiff:
    """One (backend, seq, dtype) present in both sessions."""

    backend: str
    seq: int
    dtype: str
    a_status: str
    b_status: str
    a_median_ms: float | None
    b_median_ms: float | None
    # b / a; > 1 means B is slower. NA (None) when either side is unmeasured.
    time_ratio: float | None
    a_peak_alloc_bytes: int | None
    b_peak_alloc_bytes: int | None
    mem_ratio: float | None
    # Why this pair is a regression ("time", "memory", "status"); empty when it is not.
    regressions: list[str] = field(default_factory=list)
    improved: bool = False
    # Set when the timings cannot be compared (a side is noisy): why, in one phrase.
    not_comparable: str | None = None

    @property
    def key(self) -> CellKey:
        return CellKey(self.backend, self.seq, self.dtype)

    @property
    def verdict(self) -> str:
        if self.regressions:
            return "REGRESSION (" + ", ".join(self.regressions) + ")"
        if self.not_comparable:
            return f"not comparable: {self.not_comparable}"
        if self.improved:
            return "improved"
        if self.a_status != self.b_status:
            return f"{self.a_status} -> {self.b_status}"
        return "same" if self.time_ratio is not None else NA


@dataclass
class SessionDiff:
    a_id: str
    b_id: str
    threshold: float
    cells: list[CellDiff]
    only_in_a: list[CellKey]
    only_in_b: list[CellKey]
    # (key, value in A, value in B) for provenance / spec keys that differ.
    provenance_changes: list[tuple[str, Any, Any]]
    spec_changes: list[tuple[str, Any, Any]]
    # The attention variant of each side ("dense", "window 4096", ...): cells of two
    # variants share keys but not a problem, so the report says which is which.
    a_variant: str = "dense"
    b_variant: str = "dense"

    @property
    def regressions(self) -> list[CellDiff]:
        return [c for c in self.cells if c.regressions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a_id,
            "b": self.b_id,
            "threshold": self.threshold,
            "n_regressions": len(self.regressions),
            "cells": [{**asdict(c), "verdict": c.verdict} for c in self.cells],
            "only_in_a": [k.to_list() for k in self.only_in_a],
            "only_in_b": [k.to_list() for k in self.only_in_b],
            "provenance_changes": [{"key": k, "a": a, "b": b} for k, a, b in self.provenance_changes],
            "spec_changes": [{"key": k, "a": a, "b": b} for k, a, b in self.spec_changes],
            "variant": {"a": self.a_variant, "b": self.b_variant},
        }


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a <= 0:
        return None
    return b / a


def _sort_key(key: CellKey) -> tuple[Any, ...]:
    return (key.dtype, backend_order(key.backend), key.seq)


def _changes(a: dict[str, Any], b: dict[str, Any], first: tuple[str, ...] = (),
             ignored: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    keys = [k for k in first if k in a or k in b]
    keys += sorted(k for k in set(a) | set(b) if k not in first)
    return [(k, a.get(k), b.get(k)) for k in keys if k not in ignored and a.get(k) != b.get(k)]


def _quartiles(samples: list[float] | None) -> tuple[float, float] | None:
    if not samples or len(samples) < 2:
        return None
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q3


def _beyond_spread(ca: Cell, cb: Cell, slower: bool) -> bool:
    """True unless both sides have samples and their IQRs overlap (then it is spread)."""
    qa, qb = _quartiles(ca.samples_ms), _quartiles(cb.samples_ms)
    if qa is None or qb is None:
        return True
    return qb[0] > qa[1] if slower else qb[1] < qa[0]


def _compare(ca: Cell, cb: Cell, threshold: float) -> CellDiff:
    time_ratio = _ratio(ca.median_ms, cb.median_ms) if ca.status == cb.status == "ok" else None
    mem_ratio = (_ratio(ca.peak_alloc_bytes, cb.peak_alloc_bytes)
                 if ca.status == cb.status == "ok" else None)
    noisy = [side for side, c in (("A", ca), ("B", cb)) if c.noisy]
    not_comparable = f"noisy ({' and '.join(noisy)})" if noisy and time_ratio is not None else None
    timed = time_ratio is not None and not noisy
    regressions = []
    if timed and time_ratio > 1 + threshold and _beyond_spread(ca, cb, slower=True):
        regressions.append("time")
    if mem_ratio is not None and mem_ratio > 1 + threshold:
        regressions.append("memory")
    if ca.status == "ok" and cb.status != "ok":
        regressions.append("status")
    improved = not regressions and (
        (timed and time_ratio < 1 / (1 + threshold) and _beyond_spread(ca, cb, slower=False))
        or (ca.status != "ok" and cb.status == "ok"))
    return CellDiff(
        backend=ca.backend, seq=ca.seq, dtype=ca.dtype, a_status=ca.status, b_status=cb.status,
        a_median_ms=ca.median_ms, b_median_ms=cb.median_ms, time_ratio=time_ratio,
        a_peak_alloc_bytes=ca.peak_alloc_bytes, b_peak_alloc_bytes=cb.peak_alloc_bytes,
        mem_ratio=mem_ratio, regressions=regressions, improved=improved,
        not_comparable=not_comparable,
    )


def diff_sessions(a: Session, b: Session, threshold: float = 0.10) -> SessionDiff:
    """Compare session ``b`` against baseline ``a``; see the module docstring."""
    if not (threshold >= 0):
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    cells_a = {c.key: c for c in a.cells}
    cells_b = {c.key: c for c in b.cells}
    shared = sorted(set(cells_a) & set(cells_b), key=_sort_key)
    return SessionDiff(
        a_id=a.id, b_id=b.id, threshold=threshold,
        cells=[_compare(cells_a[k], cells_b[k], threshold) for k in shared],
        only_in_a=sorted(set(cells_a) - set(cells_b), key=_sort_key),
        only_in_b=sorted(set(cells_b) - set(cells_a), key=_sort_key),
        provenance_changes=_changes(a.provenance, b.provenance, KEY_PROVENANCE, IGNORED_PROVENANCE),
        spec_changes=_changes(a.spec, b.spec),
        a_variant=describe(a.spec), b_variant=describe(b.spec),
    )


def render_diff(diff: SessionDiff) -> str:
    """A plain-text report: changed context, a table of matched cells, one-sided cells."""
    lines = [f"A: {diff.a_id}", f"B: {diff.b_id}",
             f"threshold: {diff.threshold:.0%} (B/A above {1 + diff.threshold:.2f}x is a regression)"]
    if diff.a_variant != diff.b_variant:
        lines.append(f"variant changed: {diff.a_variant} -> {diff.b_variant} (not the same problem)")
    elif diff.a_variant != "dense":
        lines.append(f"variant: {diff.a_variant}")
    if diff.provenance_changes:
        lines.append("provenance changed:")
        lines += [f"  {k}: {a if a is not None else NA} -> {b if b is not None else NA}"
                  for k, a, b in diff.provenance_changes]
    if diff.spec_changes:
        lines.append("spec changed (cells may not be comparable):")
        lines += [f"  {k}: {a!r} -> {b!r}" for k, a, b in diff.spec_changes]
    header = ("backend", "seq", "dtype", "A ms", "B ms", "B/A time", "A peak", "B peak",
              "B/A mem", "verdict")
    rows = [(c.backend, str(c.seq), c.dtype,
             fmt_ms(c.a_median_ms) if c.a_status == "ok" else c.a_status,
             fmt_ms(c.b_median_ms) if c.b_status == "ok" else c.b_status,
             fmt_ratio(c.time_ratio), fmt_bytes(c.a_peak_alloc_bytes),
             fmt_bytes(c.b_peak_alloc_bytes), fmt_ratio(c.mem_ratio), c.verdict)
            for c in diff.cells]
    if rows:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        numeric = {1, 3, 4, 5, 6, 7, 8}

        def line(values: tuple[str, ...]) -> str:
            return "  ".join(v.rjust(w) if i in numeric else v.ljust(w)
                             for i, (v, w) in enumerate(zip(values, widths))).rstrip()

        lines += ["", line(header), line(tuple("-" * w for w in widths))]
        lines += [line(r) for r in rows]
    else:
        lines += ["", "no cells in common"]
    if diff.only_in_a:
        lines.append("only in A: " + ", ".join(k.label() for k in diff.only_in_a))
    if diff.only_in_b:
        lines.append("only in B: " + ", ".join(k.label() for k in diff.only_in_b))
    n = len(diff.regressions)
    lines += ["", f"{n} regression{'s' if n != 1 else ''}" + (
        ": " + ", ".join(c.key.label() for c in diff.regressions) if n else "")]
    return "\n".join(lines) + "\n"


__all__ = ["CellDiff", "SessionDiff", "diff_sessions", "render_diff"]
