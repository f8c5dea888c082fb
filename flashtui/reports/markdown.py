"""The session as a Markdown report: provenance, findings, one results table per dtype.

Also home of the row text and the *findings* shared with the HTML export, so both
reports say the same thing. Numbers are formatted by :mod:`flashtui.core.units`, as on
every other surface. Every number that was not measured prints as ``NA``
(never 0); cells that did not run say why in a "Not measured" list under the table.
Findings are computed from the cells, never written by hand: who is fastest where
(and by how much over standard), who ran out of memory or is unsupported, whether
every backend checked passes parity, and how much memory flash saves.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from flashtui.core.results import PARITY_RATIO_LIMIT, Cell
from flashtui.core.session import Session
from flashtui.core.spec import BACKENDS
from flashtui.core.units import (
    NA, fmt_bytes, fmt_ms_iqr, fmt_pass, fmt_pct, fmt_ratio, fmt_sci, fmt_tflops,
)

STATUS_LABELS = {"ok": "ok", "oom": "OOM", "unsupported": "unsupported", "failed": "failed"}
# A finding's reason text is cut here so one unsupported backend cannot fill the page.
REASON_CHARS = 120


# -- composed text (shared with html.py; every number from core.units) ---------------
def fmt_parity(cell: Cell) -> str:
    """``pass (ratio 1.02x, rel_l2 3.1e-03)``, ``FAIL (...)``, ``NA`` or ``NA: reason``."""
    parity = cell.parity
    if parity is None:
        return NA
    details = []
    if parity.ratio_vs_standard is not None:
        details.append(f"ratio {fmt_ratio(parity.ratio_vs_standard)}")
    if parity.rel_l2 is not None:
        details.append(f"rel_l2 {fmt_sci(parity.rel_l2)}")
    suffix = f" ({', '.join(details)})" if details else ""
    if parity.passed is not None:
        return fmt_pass(parity.passed) + suffix
    if parity.reason:
        return f"{NA}: {one_line(parity.reason)}"
    return (NA + suffix) if details else NA


def one_line(text: Any, limit: int = REASON_CHARS) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def fmt_value(value: Any) -> str:
    """A provenance/spec value as one line of text."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return str(value)


# -- ordering ------------------------------------------------------------------------
def backend_order(name: str) -> tuple[int, str]:
    """Registry order (standard first); unknown backends after, alphabetically."""
    return (BACKENDS.index(name), name) if name in BACKENDS else (len(BACKENDS), name)


def ordered_backends(cells: Iterable[Cell]) -> list[str]:
    return sorted({c.backend for c in cells}, key=backend_order)


def ordered_dtypes(session: Session) -> list[str]:
    """The spec's dtype order, then any dtype only the cells mention."""
    order = [d for d in (session.spec.get("dtypes") or []) if isinstance(d, str)]
    for cell in session.cells:
        if cell.dtype not in order:
            order.append(cell.dtype)
    return [d for d in order if any(c.dtype == d for c in session.cells)]


def ordered_cells(cells: Iterable[Cell]) -> list[Cell]:
    return sorted(cells, key=lambda c: (backend_order(c.backend), c.seq))


def spec_summary(spec: dict[str, Any]) -> str:
    """One line describing the sweep's shape and method; missing keys are left out."""
    parts = []
    if spec.get("mode"):
        parts.append(f"{spec['mode']} mode")
    if spec.get("device"):
        parts.append(f"on {spec['device']}")
    shape = []
    for key, label in (("batch", "batch"), ("heads", "heads"), ("kv_heads", "kv heads"),
                       ("head_dim", "head_dim")):
        if spec.get(key) is not None:
            shape.append(f"{label} {spec[key]}")
    if shape:
        parts.append(", ".join(shape))
    if spec.get("causal") is not None:
        parts.append("causal" if spec["causal"] else "non-causal")
    if spec.get("backward") is not None:
        parts.append("forward+backward" if spec["backward"] else "forward")
    if spec.get("reps") is not None:
        parts.append(f"{spec['reps']} reps")
    if spec.get("warmup_ms") is not None:
        parts.append(f"warm-up {float(spec['warmup_ms']):g} ms")
    if spec.get("model"):
        parts.append(f"model {spec['model']}")
    return "; ".join(parts) if parts else NA


# -- findings ------------------------------------------------------------------------
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


# -- tables --------------------------------------------------------------------------
RESULT_COLUMNS = ("backend", "seq", "status", "median ± IQR", "FLOP/s", "% peak",
                  "speedup", "peak alloc", "theory", "parity")


def result_row(cell: Cell) -> list[str]:
    """The cells of one results-table row, as text (shared with html.py)."""
    return [
        cell.backend, str(cell.seq), STATUS_LABELS.get(cell.status, cell.status),
        fmt_ms_iqr(cell.median_ms, cell.iqr_ms), fmt_tflops(cell.tflops),
        fmt_pct(cell.pct_peak), fmt_ratio(cell.speedup_vs_standard),
        fmt_bytes(cell.peak_alloc_bytes), fmt_bytes(cell.theory_bytes), fmt_parity(cell),
    ]


def not_measured(cells: Iterable[Cell]) -> list[str]:
    """``"standard seq=16384: OOM: CUDA out of memory..."`` for every cell that did not run."""
    return [f"{c.backend} seq={c.seq}: {STATUS_LABELS.get(c.status, c.status)}"
            + (f": {one_line(c.reason)}" if c.reason else "")
            for c in ordered_cells(cells) if c.status != "ok"]


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_md_escape(str(v)) for v in row) + " |" for row in rows]
    return lines


def render(session: Session) -> str:
    lines = [f"# flashtui session {session.id}", ""]
    lines += [
        f"- **Status:** {session.status}",
        f"- **Created:** {session.created_at}"
        + (f" · **Finished:** {session.finished_at}" if session.finished_at else ""),
        f"- **Sweep:** {_md_escape(spec_summary(session.spec))}",
        f"- **flashtui:** {session.flashtui_version}",
        "",
        "## Findings",
        "",
    ]
    lines += [f"- {_md_escape(text)}" for text in findings(session)]
    lines.append("")
    for dtype in ordered_dtypes(session):
        cells = ordered_cells(c for c in session.cells if c.dtype == dtype)
        lines += [f"## Results: {dtype}", ""]
        lines += _md_table(RESULT_COLUMNS, (result_row(c) for c in cells))
        missing = not_measured(cells)
        if missing:
            lines += ["", "Not measured:", ""]
            lines += [f"- {_md_escape(text)}" for text in missing]
        lines.append("")
    lines += ["## Provenance", ""]
    if session.provenance:
        lines += _md_table(("key", "value"),
                           ((k, fmt_value(v)) for k, v in session.provenance.items()))
    else:
        lines.append(NA)
    lines.append("")
    if session.backends_unavailable:
        lines += ["## Backends unavailable", ""]
        lines += _md_table(("backend", "reason"), sorted(session.backends_unavailable.items(),
                                                         key=lambda kv: backend_order(kv[0])))
        lines.append("")
    lines += ["## Spec", ""]
    lines += _md_table(("key", "value"), ((k, fmt_value(v)) for k, v in session.spec.items()))
    lines.append("")
    return "\n".join(lines)


__all__ = [
    "RESULT_COLUMNS", "findings", "fmt_parity", "fmt_value", "not_measured", "ordered_backends",
    "ordered_cells", "ordered_dtypes", "render", "result_row", "spec_summary",
]
