"""Pure formatting of one cell's |out − reference| distribution, beside standard's.

Input: the ``abs_diff`` / ``standard_abs_diff`` dicts of a cell's parity (see
docs/schema.md). Output: plain text lines for the TUI's distribution view (and tests).
The point of the view: max_abs alone cannot say whether one element is off or the whole
tensor is; the histogram can, and standard's histogram in the same dtype shows what the
dtype's rounding alone produces.
"""

from __future__ import annotations

import math
from typing import Any

from flashtui.core.units import NA, fmt_pct, fmt_ratio, fmt_sci

BAR_WIDTH = 24
_BLOCKS = " ▏▎▍▌▋▊▉█"
# |log10(p99 / standard's p99)| under this: "distributed like standard's".
SAME_SHAPE_DECADES = 0.3


def _bar(share: float, scale: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar in eighths of a cell: share / scale of ``width`` cells."""
    if scale <= 0 or share <= 0:
        return ""
    eighths = max(1, round(share / scale * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[rest] if rest else "")


def _fmt_edge(log10_value: float) -> str:
    """A bin edge (a power of ten, not a measurement) as a short label: '1e-4'."""
    return f"{10 ** log10_value:.0e}".replace("e-0", "e-").replace("e+0", "e")


def _pct(count: int, n: int) -> str:
    """A bin's share of the elements; '<0.1%' rather than '0.0%' for a bin that holds any."""
    if n <= 0:
        return NA
    share = 100.0 * count / n
    if count and share < 0.1:
        return "<0.1%"
    return fmt_pct(share)


def histogram_rows(dist: dict[str, Any], standard: dict[str, Any] | None) -> list[tuple[str, int, int | None]]:
    """(bin label, count, standard's count) for each bin either one uses, low to high,
    with "below" and "above" rows when they hold anything."""
    edges = dist["edges_log10"]
    counts = list(dist["counts"])
    std_counts = list(standard["counts"]) if standard else [None] * len(counts)
    used = [i for i, (c, s) in enumerate(zip(counts, std_counts)) if c or s]
    rows: list[tuple[str, int, int | None]] = []
    below_std = standard.get("below") if standard else None
    if dist.get("below") or below_std:
        rows.append((f"< {_fmt_edge(edges[0])} (or 0)", int(dist.get("below") or 0), below_std))
    if used:
        for i in range(used[0], used[-1] + 1):
            rows.append((f"{_fmt_edge(edges[i])} … {_fmt_edge(edges[i + 1])}", int(counts[i]), std_counts[i]))
    above_std = standard.get("above") if standard else None
    if dist.get("above") or above_std:
        rows.append((f"≥ {_fmt_edge(edges[-1])}", int(dist.get("above") or 0), above_std))
    return rows


def histogram_lines(dist: dict[str, Any], standard: dict[str, Any] | None,
                    label: str, standard_label: str) -> list[str]:
    """The histogram as aligned text: one row per half decade, both bars on one scale."""
    n, n_std = int(dist.get("n") or 0), int((standard or {}).get("n") or 0)
    rows = histogram_rows(dist, standard)
    shares = [c / n for _, c, _ in rows if n] + [s / n_std for _, _, s in rows if s and n_std]
    scale = max(shares, default=0.0)
    width = max((len(r[0]) for r in rows), default=10)
    head = f"{'|diff|':<{width}}  {label:<{BAR_WIDTH + 7}}"
    lines = [head + (f"  {standard_label}" if standard else "")]
    for text, count, std_count in rows:
        line = f"{text:<{width}}  {_bar(count / n if n else 0, scale):<{BAR_WIDTH}} {_pct(count, n):>6}"
        if standard:
            std = std_count or 0
            line += f"  {_bar(std / n_std if n_std else 0, scale):<{BAR_WIDTH}} {_pct(std, n_std):>6}"
        lines.append(line)
    return lines


def quantile_line(dist: dict[str, Any], standard: dict[str, Any] | None) -> str:
    """'p50 2.0e-04 (standard 1.9e-04) · p90 … · p99.9 …'."""
    parts = []
    std_q = (standard or {}).get("quantiles") or {}
    for name, value in (dist.get("quantiles") or {}).items():
        part = f"{name} {fmt_sci(value)}"
        if standard:
            part += f" (standard {fmt_sci(std_q.get(name))})"
        parts.append(part)
    return " · ".join(parts) if parts else "no quantiles"


def verdict(dist: dict[str, Any], standard: dict[str, Any] | None, dtype: str) -> str:
    """One line comparing the tails: like the dtype's own error, or beyond it."""
    if not standard:
        return "no standard distribution to compare with"
    p99 = (dist.get("quantiles") or {}).get("p99")
    std_p99 = (standard.get("quantiles") or {}).get("p99")
    if not p99 or not std_p99:
        return f"p99 is zero or {NA}: nothing to compare"
    decades = math.log10(p99 / std_p99)
    if abs(decades) < SAME_SHAPE_DECADES:
        return (f"p99 within {10 ** SAME_SHAPE_DECADES:.0f}x of standard's in {dtype}: "
                f"the error is the dtype's rounding, not the kernel")
    ratio = p99 / std_p99
    if decades > 0:
        return f"p99 is {fmt_ratio(ratio)} standard's in {dtype}: errors beyond what {dtype} itself costs"
    return f"p99 is {fmt_ratio(1 / ratio)} smaller than standard's in {dtype} (e.g. fp32 accumulation)"


def distribution_text(cell: dict[str, Any]) -> tuple[str, list[str]]:
    """Title and body lines for one cell dict, or (title, [reason]) when there is none."""
    title, head, histogram, tail = distribution_parts(cell)
    return title, head + ([""] + histogram + [""] if histogram else []) + tail


def distribution_parts(cell: dict[str, Any]) -> tuple[str, list[str], list[str], list[str]]:
    """(title, prose above, histogram lines, prose below): the prose may wrap on a narrow
    screen; the histogram's columns must not (the TUI scrolls it sideways)."""
    title = f"|out − reference| of {cell.get('backend')} seq={cell.get('seq')} {cell.get('dtype')}"
    parity = cell.get("parity") or {}
    dist = parity.get("abs_diff")
    if not dist:
        why = parity.get("reason") or (cell.get("reason") if cell.get("status") != "ok" else None)
        return title, [f"no difference distribution for this cell: {why or 'parity was not computed'}"], [], []
    standard = parity.get("standard_abs_diff")
    reference = parity.get("reference") or "fp64"
    head = [f"{int(dist.get('n') or 0):,} output elements vs the {reference} reference; "
            f"max {fmt_sci(parity.get('max_abs'))}, mean {fmt_sci(parity.get('mean_abs'))}"]
    histogram = histogram_lines(dist, standard, str(cell.get("backend")), f"standard ({cell.get('dtype')})")
    tail = [quantile_line(dist, standard), verdict(dist, standard, str(cell.get("dtype")))]
    return title, head, histogram, tail
