"""Findings: short statements computed from a session's cells, never written by hand.

Who is fastest where (and by how much over standard), who ran out of memory or is
unsupported, whether every backend checked passes parity, and how much memory flash
saves. Shared by the Markdown and HTML reports.
"""

from __future__ import annotations

from flashtui.core.results import PARITY_RATIO_LIMIT, Cell
from flashtui.core.session import Session
from flashtui.core.units import fmt_bytes, fmt_ratio
from flashtui.reports.cells import STATUS_LABELS, backend_order, one_line, ordered_backends, ordered_cells, ordered_dtypes


def _describe_seqs(chosen: list[int], all_seqs: list[int]) -> str:
    """``at seq >= 2048``, ``at seq <= 512``, ``at every seq``, ``at seq 1024, 4096``."""
    chosen = sorted(chosen)
    if not chosen:
        return ""
    if len(all_seqs) > 1 and chosen == all_seqs:
        return f"at every seq {all_seqs[0]}–{all_seqs[-1]}"
    if len(chosen) == 1:
        return f"at seq {chosen[0]}"
    start = all_seqs.index(chosen[0])
    contiguous = all_seqs[start:start + len(chosen)] == chosen
    if contiguous and chosen[-1] == all_seqs[-1]:
        return f"at seq >= {chosen[0]}"
    if contiguous and chosen[0] == all_seqs[0]:
        return f"at seq <= {chosen[-1]}"
    if contiguous:
        return f"at seq {chosen[0]}–{chosen[-1]}"
    return "at seq " + ", ".join(str(s) for s in chosen)


def _speedup_text(values: list[float]) -> str:
    low, high = min(values), max(values)
    if fmt_ratio(low) == fmt_ratio(high):
        return f"{fmt_ratio(high)} over standard"
    return f"{fmt_ratio(low).rstrip('x')}–{fmt_ratio(high)} over standard"


def _fastest_findings(cells: list[Cell], tag: str) -> list[str]:
    seqs = sorted({c.seq for c in cells})
    winners: dict[int, Cell] = {}
    for seq in seqs:
        ok = [c for c in cells if c.seq == seq and c.status == "ok" and c.median_ms is not None]
        if ok:
            winners[seq] = min(ok, key=lambda c: (c.median_ms, backend_order(c.backend)))
    measured = sorted(winners)
    runs: list[tuple[str, list[int]]] = []
    for seq in measured:
        name = winners[seq].backend
        if runs and runs[-1][0] == name:
            runs[-1][1].append(seq)
        else:
            runs.append((name, [seq]))
    out = []
    for name, run in runs:
        where = _describe_seqs(run, measured)
        if name == "standard":
            out.append(f"standard fastest {where}{tag}")
            continue
        speedups = [winners[s].speedup_vs_standard for s in run
                    if winners[s].speedup_vs_standard is not None]
        detail = _speedup_text(speedups) if speedups else "standard not measured there"
        out.append(f"{name} fastest {where} ({detail}){tag}")
    return out


def _status_findings(cells: list[Cell], tag: str) -> list[str]:
    seqs = sorted({c.seq for c in cells})
    out = []
    for name in ordered_backends(cells):
        for status in ("oom", "unsupported", "failed"):
            hit = [c for c in cells if c.backend == name and c.status == status]
            if not hit:
                continue
            where = _describe_seqs([c.seq for c in hit], seqs)
            text = f"{name} {STATUS_LABELS[status]} {where}{tag}"
            reasons = sorted({one_line(c.reason) for c in hit if c.reason})
            if status != "oom" and reasons:
                text += f": {reasons[0]}" + (f" (+{len(reasons) - 1} other reasons)"
                                             if len(reasons) > 1 else "")
            out.append(text)
    return out


def _parity_findings(cells: list[Cell], tag: str) -> list[str]:
    checked = [c for c in cells if c.backend != "standard" and c.parity is not None
               and c.parity.passed is not None]
    if not checked:
        return []
    limit = f"{PARITY_RATIO_LIMIT:g}x"
    seqs = sorted({c.seq for c in cells})
    backends = ordered_backends(checked)
    failing = [name for name in backends
               if any(c.parity.passed is False for c in checked if c.backend == name)]
    out = []
    for name in failing:
        bad = [c for c in checked if c.backend == name and c.parity.passed is False]
        ratios = [c.parity.ratio_vs_standard for c in bad if c.parity.ratio_vs_standard is not None]
        worst = f"worst ratio {fmt_ratio(max(ratios))} > {limit}" if ratios else "no ratio recorded"
        out.append(f"{name} fails parity {_describe_seqs([c.seq for c in bad], seqs)} ({worst}){tag}")
    passing = [name for name in backends if name not in failing]
    ratios = [(c.parity.ratio_vs_standard, c) for c in checked
              if c.backend in passing and c.parity.ratio_vs_standard is not None]
    worst_text = ""
    if ratios:
        worst_ratio, worst_cell = max(ratios, key=lambda item: item[0])
        who = f", {worst_cell.backend}" if len(passing) > 1 else ""
        worst_text = f"; worst {fmt_ratio(worst_ratio)}{who} at seq {worst_cell.seq}"
    if len(passing) == 1:
        out.append(f"{passing[0]} passes parity (ratio <= {limit} vs standard's own error"
                   f"{worst_text}){tag}")
    elif passing and not failing:
        out.append(f"all {len(passing)} backends checked pass parity (ratio <= {limit} vs "
                   f"standard's own error{worst_text}){tag}")
    elif passing:
        out.append(f"{', '.join(passing)} pass parity (ratio <= {limit} vs standard's own "
                   f"error{worst_text}){tag}")
    return out


def _memory_findings(cells: list[Cell], tag: str) -> list[str]:
    standard = {c.seq: c for c in cells if c.backend == "standard" and c.status == "ok"
                and c.peak_alloc_bytes}
    for seq in sorted(standard, reverse=True):
        others = [c for c in cells if c.seq == seq and c.backend != "standard"
                  and c.status == "ok" and c.peak_alloc_bytes is not None]
        if not others:
            continue
        best = min(others, key=lambda c: (c.peak_alloc_bytes, backend_order(c.backend)))
        base = standard[seq].peak_alloc_bytes
        if best.peak_alloc_bytes and best.peak_alloc_bytes < base:
            saving = f"{fmt_ratio(base / best.peak_alloc_bytes)} less"
        elif best.peak_alloc_bytes == base:
            saving = "the same"
        else:
            saving = "more than standard"
        return [f"at seq {seq}, {best.backend} peaks at {fmt_bytes(best.peak_alloc_bytes)} vs "
                f"standard's {fmt_bytes(base)} ({saving}){tag}"]
    return []


def findings(session: Session) -> list[str]:
    """Short statements computed from the cells, most useful first, per dtype."""
    dtypes = ordered_dtypes(session)
    out: list[str] = []
    for dtype in dtypes:
        tag = f" [{dtype}]" if len(dtypes) > 1 else ""
        cells = [c for c in session.cells if c.dtype == dtype]
        out += _fastest_findings(cells, tag)
        out += _memory_findings(cells, tag)
        out += _status_findings(cells, tag)
        out += _parity_findings(cells, tag)
    profiled = [c for c in ordered_cells(session.cells) if c.extra.get("timed_under_pyspy_record")]
    if profiled:
        out.append(f"{len(profiled)} cell(s) timed while py-spy record sampled the worker (its "
                   "pauses are in their timings): "
                   + ", ".join(f"{c.backend} seq={c.seq} {c.dtype}" for c in profiled))
    for name, reason in sorted(session.backends_unavailable.items(),
                               key=lambda item: backend_order(item[0])):
        out.append(f"{name} unavailable on this worker: {one_line(reason)}")
    if not session.cells:
        out.append("no cells measured")
    return out
