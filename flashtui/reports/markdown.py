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

from flashtui.core.results import Cell, memory_bound
from flashtui.core.session import Session
from flashtui.reports.cells import (  # noqa: F401 - re-exported for html.py and diff.py
    STATUS_LABELS, backend_order, one_line, ordered_backends, ordered_cells, ordered_dtypes, warmup_label,
)
from flashtui.reports.findings import findings
from flashtui.core.units import (
    NA, fmt_bytes, fmt_gbps, fmt_ms_iqr, fmt_pass, fmt_pct, fmt_ratio, fmt_sci, fmt_tflops,
)
from flashtui.core.variants import describe



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


def fmt_value(value: Any) -> str:
    """A provenance/spec value as one line of text."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return str(value)


def model_shape(cells: Iterable[Cell]) -> dict[str, Any]:
    """The model's own heads / kv_heads / head_dim / weights, as its cells recorded them."""
    for cell in cells:
        if cell.extra.get("heads") is not None:
            return {k: cell.extra.get(k) for k in ("heads", "kv_heads", "head_dim", "layers", "weights")}
    return {}


def spec_summary(spec: dict[str, Any], cells: Iterable[Cell] = ()) -> str:
    """One line describing the sweep's shape and method; missing keys are left out.

    Model modes take heads and head_dim from the model's config (recorded in each cell),
    never from the spec, whose kernel-mode shape fields do not apply there."""
    parts = []
    if spec.get("mode"):
        parts.append(f"{spec['mode']} mode")
    if spec.get("device"):
        parts.append(f"on {spec['device']}")
    model_mode = spec.get("mode") not in (None, "kernel")
    attention = model_shape(cells) if model_mode else spec
    shape = [f"batch {spec['batch']}"] if spec.get("batch") is not None else []
    for key, label in (("heads", "heads"), ("kv_heads", "kv heads"), ("head_dim", "head_dim")):
        if attention.get(key) is not None:
            shape.append(f"{label} {attention[key]}")
    if shape:
        parts.append(", ".join(shape))
    if spec.get("causal") is not None:
        parts.append("causal" if spec["causal"] else "non-causal")
    if spec.get("backward") is not None:
        parts.append("forward+backward" if spec["backward"] else "forward")
    if spec.get("reps") is not None:
        parts.append(f"{spec['reps']} reps")
    warmup = warmup_label(spec, cells)
    if warmup:
        parts.append(warmup)
    if spec.get("model"):
        weights = model_shape(cells).get("weights")
        parts.append(f"model {spec['model']}" + (f" ({weights} weights)" if weights else ""))
    if describe(spec) != "dense":
        parts.append(f"variant: {describe(spec)}")
    return "; ".join(parts) if parts else NA


# -- tables --------------------------------------------------------------------------
RESULT_COLUMNS = ("backend", "seq", "status", "median ± IQR", "FLOP/s", "% peak",
                  "speedup", "peak alloc", "theory", "parity")
# Added after "% peak" when a table holds memory-bound (decode) cells: their yardstick.
BANDWIDTH_COLUMNS = ("GB/s", "% HBM")


def has_bandwidth(cells: Iterable[Cell]) -> bool:
    return any(memory_bound(c) for c in cells)


def result_columns(bandwidth: bool = False) -> tuple[str, ...]:
    return RESULT_COLUMNS[:6] + BANDWIDTH_COLUMNS + RESULT_COLUMNS[6:] if bandwidth else RESULT_COLUMNS


def result_row(cell: Cell, bandwidth: bool = False) -> list[str]:
    """The cells of one results-table row, as text (shared with html.py)."""
    row = [
        cell.backend, str(cell.seq), STATUS_LABELS.get(cell.status, cell.status),
        fmt_ms_iqr(cell.median_ms, cell.iqr_ms), fmt_tflops(cell.tflops), fmt_pct(cell.pct_peak),
    ]
    if bandwidth:
        row += [fmt_gbps(cell.gbps) + (" (judged)" if memory_bound(cell) else ""), fmt_pct(cell.pct_bw_peak)]
    return row + [
        fmt_ratio(cell.speedup_vs_standard),
        fmt_bytes(cell.peak_alloc_bytes), fmt_bytes(cell.theory_bytes), fmt_parity(cell),
    ]


def variant_lines(cells: Iterable[Cell]) -> list[str]:
    """How each backend ran the session's variant: native, through a mask (and its cost), notes."""
    lines: dict[str, None] = {}
    for cell in ordered_cells(cells):
        info = cell.extra.get("variant") or {}
        if info.get("path"):
            text = f"{cell.backend}: {info['path']} ({info.get('how')})"
            if info.get("cost"):
                text += f"; {info['cost']}"
            lines[text] = None
        for note in info.get("notes") or []:
            lines[f"note: {note}"] = None
    return list(lines)


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
        f"- **Sweep:** {_md_escape(spec_summary(session.spec, session.cells))}",
        f"- **flashtui:** {session.flashtui_version}",
        "",
        "## Findings",
        "",
    ]
    lines += [f"- {_md_escape(text)}" for text in findings(session)]
    lines.append("")
    for dtype in ordered_dtypes(session):
        cells = ordered_cells(c for c in session.cells if c.dtype == dtype)
        bandwidth = has_bandwidth(cells)
        lines += [f"## Results: {dtype}", ""]
        lines += _md_table(result_columns(bandwidth), (result_row(c, bandwidth) for c in cells))
        variant = variant_lines(cells)
        if variant:
            lines += ["", "Variant paths:", ""]
            lines += [f"- {_md_escape(text)}" for text in variant]
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
    "BANDWIDTH_COLUMNS", "RESULT_COLUMNS", "findings", "has_bandwidth", "result_columns", "variant_lines", "fmt_parity", "fmt_value", "not_measured", "ordered_backends",
    "ordered_cells", "ordered_dtypes", "render", "result_row", "spec_summary",
]
