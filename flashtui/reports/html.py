"""The session as ONE self-contained HTML file: findings, inline SVG charts, tables.

No external resources (no CDN, fonts, images or scripts; a Content-Security-Policy
meta tag forbids loading any), so the file opens offline, attaches to an issue, and
survives being copied off a cluster. Charts are SVG drawn here in plain Python (no
matplotlib in the UI process): per dtype, time vs seq (log-log), peak memory vs seq
(log-log, with standard's theoretical S x S bytes dashed), speedup over standard
(bars), and parity relative L2 error (bars, log). Point values are in ``<title>``
tooltips, so hovering works without JavaScript. All text is HTML-escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Callable, Iterable

from flashtui.core import palette

from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.core.results import memory_bound
from flashtui.core.units import NA, fmt_bytes, fmt_gbps, fmt_ms, fmt_ratio, fmt_sci
from flashtui.reports.markdown import (
    findings, fmt_value, has_bandwidth, not_measured, ordered_backends, ordered_cells,
    ordered_dtypes, result_columns, result_row, spec_summary, variant_lines,
)

# One stable colour per backend, the TUI's too (core.palette); a series it does not know
# (a model name) gets one of these by its name.
EXTRA_COLORS = ("#1B9E77", "#A6761D", "#E7298A", "#66A61E", "#7570B3")

CHART_WIDTH_PX = 600
CHART_HEIGHT_PX = 330
MARGIN_LEFT_PX, MARGIN_RIGHT_PX, MARGIN_TOP_PX, MARGIN_BOTTOM_PX = 70, 140, 34, 48


def backend_color(name: str) -> str:
    known = palette.BACKEND_STYLES.get(name.split(" ")[0])
    if known is not None:
        return known.color_hex
    return EXTRA_COLORS[sum(name.encode()) % len(EXTRA_COLORS)]


def _e(text: object) -> str:
    return escape(str(text), quote=True)


# -- scales --------------------------------------------------------------------------
@dataclass
class Scale:
    """Maps data values onto a pixel range, linearly or in log10."""

    low: float
    high: float
    pixel_low: float
    pixel_high: float
    log: bool = False

    def _t(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def __call__(self, value: float) -> float:
        lo, hi = self._t(self.low), self._t(self.high)
        frac = 0.5 if hi == lo else (self._t(value) - lo) / (hi - lo)
        return self.pixel_low + frac * (self.pixel_high - self.pixel_low)


def _domain(values: list[float], log: bool, include_zero: bool = False) -> tuple[float, float]:
    values = [v for v in values if v is not None and (v > 0 or not log)]
    low, high = min(values), max(values)
    if include_zero and not log:
        low = min(0.0, low)
    if log:
        if low == high:
            return low / 2, high * 2
        pad = (math.log10(high) - math.log10(low)) * 0.08
        return low / 10 ** pad, high * 10 ** pad
    if low == high:
        return (low - 1, high + 1) if low != 0 else (0.0, 1.0)
    return low, high + (high - low) * 0.08


def _log_ticks(low: float, high: float, base2: bool = False) -> list[float]:
    """Decades (with 2x and 5x marks when the range is short), or powers of two for bytes."""
    if base2:
        ticks = [2.0 ** k for k in range(math.floor(math.log2(low)), math.ceil(math.log2(high)) + 1)
                 if low <= 2.0 ** k <= high]
    else:
        first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
        decades = [10.0 ** k for k in range(first, last + 1)]
        ticks = [t for t in decades if low <= t <= high]
        if len(ticks) < 3:  # less than ~2 decades: add 2x and 5x marks
            ticks = sorted(t * m for t in decades for m in (1, 2, 5) if low <= t * m <= high)
    if len(ticks) > 8:
        step = math.ceil(len(ticks) / 8)
        ticks = ticks[::step]
    if len(ticks) < 2:  # a very narrow range: label its ends
        ticks = [low, high]
    return ticks


def _linear_ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.ceil(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


# -- chart primitives ----------------------------------------------------------------
@dataclass
class Series:
    name: str
    color: str
    points: list[tuple[float, float]] = field(default_factory=list)
    dashed: bool = False


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{CHART_WIDTH_PX}" height="{CHART_HEIGHT_PX}" '
        f'viewBox="0 0 {CHART_WIDTH_PX} {CHART_HEIGHT_PX}" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
        f'<rect x="0" y="0" width="{CHART_WIDTH_PX}" height="{CHART_HEIGHT_PX}" fill="#ffffff"/>',
        f'<text x="{CHART_WIDTH_PX / 2:.1f}" y="20" text-anchor="middle" class="ct">{_e(title)}</text>',
        f'<text x="{MARGIN_LEFT_PX + _plot_w() / 2:.1f}" y="{CHART_HEIGHT_PX - 8}" '
        f'text-anchor="middle" class="al">{_e(x_label)}</text>',
        f'<text x="14" y="{MARGIN_TOP_PX + _plot_h() / 2:.1f}" text-anchor="middle" class="al" '
        f'transform="rotate(-90 14 {MARGIN_TOP_PX + _plot_h() / 2:.1f})">{_e(y_label)}</text>',
    ]


def _plot_w() -> float:
    return CHART_WIDTH_PX - MARGIN_LEFT_PX - MARGIN_RIGHT_PX


def _plot_h() -> float:
    return CHART_HEIGHT_PX - MARGIN_TOP_PX - MARGIN_BOTTOM_PX


def _empty_chart(title: str, x_label: str, y_label: str) -> str:
    parts = _frame(title, x_label, y_label)
    parts.append(f'<text x="{MARGIN_LEFT_PX + _plot_w() / 2:.1f}" y="{MARGIN_TOP_PX + _plot_h() / 2:.1f}" '
                 f'text-anchor="middle" class="na">{NA}: nothing measured</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _y_axis(y: Scale, fmt: Callable[[float], str], base2: bool = False) -> list[str]:
    ticks = _log_ticks(y.low, y.high, base2) if y.log else _linear_ticks(y.low, y.high)
    x0, x1 = MARGIN_LEFT_PX, MARGIN_LEFT_PX + _plot_w()
    out = []
    for tick in ticks:
        py = y(tick)
        out.append(f'<line x1="{x0}" y1="{py:.1f}" x2="{x1:.1f}" y2="{py:.1f}" class="grid"/>')
        out.append(f'<text x="{x0 - 6}" y="{py + 4:.1f}" text-anchor="end" class="tk">{_e(fmt(tick))}</text>')
    bottom = MARGIN_TOP_PX + _plot_h()
    out.append(f'<line x1="{x0}" y1="{MARGIN_TOP_PX}" x2="{x0}" y2="{bottom:.1f}" class="axis"/>')
    out.append(f'<line x1="{x0}" y1="{bottom:.1f}" x2="{x1:.1f}" y2="{bottom:.1f}" class="axis"/>')
    return out


def _legend(series: Iterable[tuple[str, str, bool]]) -> list[str]:
    x = MARGIN_LEFT_PX + _plot_w() + 14
    out = []
    for i, (name, color, dashed) in enumerate(series):
        y = MARGIN_TOP_PX + 8 + i * 18
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 18}" y2="{y}" stroke="{color}" stroke-width="3"{dash}/>')
        out.append(f'<text x="{x + 24}" y="{y + 4}" class="lg">{_e(name)}</text>')
    return out


def line_chart(title: str, series: list[Series], x_label: str, y_label: str,
               y_fmt: Callable[[float], str], x_values: list[float],
               tick_fmt: Callable[[float], str] | None = None, base2: bool = False) -> str:
    """Log-log lines with point markers; x ticks at the measured x values.

    ``y_fmt`` formats tooltip values, ``tick_fmt`` the axis (default ``y_fmt``);
    ``base2`` puts y ticks at powers of two (for bytes).
    """
    series = [s for s in series if any(x > 0 and y > 0 for x, y in s.points)]
    if not series:
        return _empty_chart(title, x_label, y_label)
    xs = [x for x in x_values if x > 0]
    ys = [y for s in series for _, y in s.points if y > 0]
    x = Scale(*_domain(xs, log=True), MARGIN_LEFT_PX, MARGIN_LEFT_PX + _plot_w(), log=True)
    y = Scale(*_domain(ys, log=True), MARGIN_TOP_PX + _plot_h(), MARGIN_TOP_PX, log=True)
    parts = _frame(title, x_label, y_label) + _y_axis(y, tick_fmt or y_fmt, base2)
    shown = sorted(set(xs))
    if len(shown) > 10:
        shown = shown[:: math.ceil(len(shown) / 10)]
    bottom = MARGIN_TOP_PX + _plot_h()
    for value in shown:
        px = x(value)
        parts.append(f'<line x1="{px:.1f}" y1="{bottom:.1f}" x2="{px:.1f}" y2="{bottom + 4:.1f}" class="axis"/>')
        parts.append(f'<text x="{px:.1f}" y="{bottom + 17:.1f}" text-anchor="middle" class="tk">{_e(f"{value:g}")}</text>')
    for s in series:
        pts = sorted((px, py) for px, py in s.points if px > 0 and py > 0)
        coords = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in pts)
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{s.color}" stroke-width="2"{dash}/>')
        if not s.dashed:
            for px, py in pts:
                parts.append(f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="3.5" fill="{s.color}">'
                             f"<title>{_e(f'{s.name} @ {px:g}: {y_fmt(py)}')}</title></circle>")
    parts += _legend((s.name, s.color, s.dashed) for s in series)
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(title: str, groups: list[float], series: list[Series], x_label: str,
              y_label: str, y_fmt: Callable[[float], str], log: bool = False,
              reference: float | None = None, tick_fmt: Callable[[float], str] | None = None) -> str:
    """Grouped bars: one group per x value, one bar per series; NA bars are left out.

    ``y_fmt`` formats tooltip values, ``tick_fmt`` the axis (default ``y_fmt``)."""
    values = [v for s in series for _, v in s.points if v is not None and (v > 0 or not log)]
    if not values or not groups:
        return _empty_chart(title, x_label, y_label)
    domain_values = values + ([reference] if reference is not None else [])
    if log:  # whole decades, one below the smallest value, so bar heights compare honestly
        low = 10.0 ** (math.floor(math.log10(min(domain_values))) - 1)
        high = 10.0 ** math.ceil(math.log10(max(domain_values)) + 1e-9)
        y = Scale(low, high, MARGIN_TOP_PX + _plot_h(), MARGIN_TOP_PX, log=True)
    else:
        y = Scale(*_domain(domain_values, log=False, include_zero=True),
                  MARGIN_TOP_PX + _plot_h(), MARGIN_TOP_PX)
    parts = _frame(title, x_label, y_label) + _y_axis(y, tick_fmt or y_fmt)
    group_w = _plot_w() / len(groups)
    bar_w = group_w * 0.8 / max(1, len(series))
    base_value = y.low if log else max(0.0, y.low)
    base_px = y(base_value)
    bottom = MARGIN_TOP_PX + _plot_h()
    for gi, group in enumerate(groups):
        gx = MARGIN_LEFT_PX + gi * group_w
        parts.append(f'<text x="{gx + group_w / 2:.1f}" y="{bottom + 17:.1f}" text-anchor="middle" '
                     f'class="tk">{_e(f"{group:g}")}</text>')
        if all(dict(s.points).get(group) is None for s in series):
            parts.append(f'<text x="{gx + group_w / 2:.1f}" y="{bottom - 6:.1f}" text-anchor="middle" '
                         f'class="na">{NA}</text>')
        for si, s in enumerate(series):
            value = dict(s.points).get(group)
            if value is None or (log and value <= 0):
                continue
            top = y(value)
            bx = gx + group_w * 0.1 + si * bar_w
            parts.append(
                f'<rect x="{bx:.1f}" y="{min(top, base_px):.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{abs(base_px - top):.1f}" fill="{s.color}">'
                f"<title>{_e(f'{s.name} @ {group:g}: {y_fmt(value)}')}</title></rect>")
    if reference is not None:
        ry = y(reference)
        parts.append(f'<line x1="{MARGIN_LEFT_PX}" y1="{ry:.1f}" x2="{MARGIN_LEFT_PX + _plot_w():.1f}" '
                     f'y2="{ry:.1f}" class="ref"/>')
    parts += _legend((s.name, s.color, False) for s in series)
    parts.append("</svg>")
    return "\n".join(parts)


# -- the session's charts ------------------------------------------------------------
def _series(cells: list[Cell], value: Callable[[Cell], float | None],
            backends: list[str]) -> list[Series]:
    out = []
    for name in backends:
        points = [(float(c.seq), float(v)) for c in cells
                  if c.backend == name and c.status == "ok" and (v := value(c)) is not None]
        if points:
            out.append(Series(name, backend_color(name), points))
    return out


def bandwidth_chart(cells: list[Cell], dtype: str) -> str | None:
    """GB/s vs sequence length for memory-bound (decode) cells, with the HBM peak dashed;
    None when no cell is memory-bound (TFLOP/s is their yardstick then)."""
    bound = [c for c in cells if memory_bound(c)]
    if not bound:
        return None
    series = _series(bound, lambda c: c.gbps, ordered_backends(bound))
    seqs = sorted({float(c.seq) for c in bound})
    peaks = {c.seq: c.gbps * 100.0 / c.pct_bw_peak for c in bound if c.gbps and c.pct_bw_peak}
    if peaks:
        series.append(Series("HBM peak", "#888888", [(float(s), p) for s, p in sorted(peaks.items())],
                             dashed=True))
    return line_chart(f"Memory-bound cells: bandwidth vs KV length ({dtype})", series,
                      "sequence length (log)", "GB/s (log)", fmt_gbps, seqs, tick_fmt=lambda v: f"{v:g}")


def charts_for(cells: list[Cell], dtype: str) -> list[str]:
    """The four SVG charts of one dtype (five when some cells are memory-bound)."""
    backends = ordered_backends(cells)
    seqs = sorted({float(c.seq) for c in cells})
    time_chart = line_chart(
        f"Time per call vs sequence length ({dtype})",
        _series(cells, lambda c: c.median_ms, backends),
        "sequence length (log)", "median ms (log)", fmt_ms, seqs, tick_fmt=lambda v: f"{v:g}")
    memory_series = _series(cells, lambda c: c.peak_alloc_bytes, backends)
    theory = [(float(c.seq), float(c.theory_bytes)) for c in cells
              if c.backend == "standard" and c.theory_bytes]
    if theory:
        memory_series.append(Series("S×S theory", "#888888", theory, dashed=True))
    memory_chart = line_chart(
        f"Peak allocated memory vs sequence length ({dtype})", memory_series,
        "sequence length (log)", "peak alloc (log)", fmt_bytes, seqs, base2=True)
    speed_series = _series(cells, lambda c: c.speedup_vs_standard,
                           [b for b in backends if b != "standard"])
    speed_chart = bar_chart(
        f"Speedup over standard ({dtype})", seqs, speed_series, "sequence length",
        "standard ms / backend ms", fmt_ratio, reference=1.0, tick_fmt=lambda v: f"{v:g}x")
    parity_series = _series(cells, lambda c: c.parity.rel_l2 if c.parity else None, backends)
    parity_chart = bar_chart(
        f"Parity: relative L2 error vs fp64 ({dtype})", seqs, parity_series,
        "sequence length", "rel L2 error (log)", fmt_sci, log=True, tick_fmt=lambda v: f"{v:.0e}")
    bandwidth = bandwidth_chart(cells, dtype)
    return [time_chart, memory_chart, speed_chart, parity_chart] + ([bandwidth] if bandwidth else [])


# -- page ----------------------------------------------------------------------------
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1a1a1a;background:#fff}
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f2f2f2}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.s-oom,td.s-failed{color:#b00020;font-weight:bold}td.s-unsupported{color:#8a6d00}
td.pfail{color:#b00020;font-weight:bold}.na{fill:#888;color:#888}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{border:1px solid #ddd;background:#fff}
svg .ct{font-size:14px;font-weight:bold}svg .al{font-size:11px;fill:#333}
svg .tk{font-size:10px;fill:#333}svg .lg{font-size:11px;fill:#222}
svg .grid{stroke:#e6e6e6;stroke-width:1}svg .axis{stroke:#333;stroke-width:1}
svg .ref{stroke:#b00020;stroke-width:1;stroke-dasharray:4 3}
"""

_NUMERIC_COLUMNS = {"seq", "median ms ± IQR", "TFLOP/s", "% peak", "speedup", "peak alloc", "theory",
                    "GB/s", "% HBM"}


def _table(header: list[str], rows: Iterable[list[str]], classes: Iterable[list[str]] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    class_rows = list(classes) if classes is not None else None
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            css = class_rows[i][j] if class_rows is not None else ""
            attr = f' class="{css}"' if css else ""
            cells.append(f"<td{attr}>{_e(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _result_classes(cell: Cell, bandwidth: bool = False) -> list[str]:
    classes = []
    for column in result_columns(bandwidth):
        css = "num" if column in _NUMERIC_COLUMNS else ""
        if column == "status" and cell.status != "ok":
            css = f"s-{cell.status}"
        if column == "parity" and cell.parity is not None and cell.parity.passed is False:
            css = "pfail"
        classes.append(css)
    return classes


def render(session: Session) -> str:
    title = f"flashtui session {session.id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may load from anywhere: the file must be complete on its own.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        "<ul>",
        f"<li><b>Status:</b> {_e(session.status)}</li>",
        f"<li><b>Created:</b> {_e(session.created_at)}"
        + (f" · <b>Finished:</b> {_e(session.finished_at)}" if session.finished_at else "")
        + "</li>",
        f"<li><b>Sweep:</b> {_e(spec_summary(session.spec, session.cells))}</li>",
        f"<li><b>flashtui:</b> {_e(session.flashtui_version)}</li>",
        "</ul>",
        "<h2>Findings</h2><ul>",
    ]
    parts += [f"<li>{_e(text)}</li>" for text in findings(session)]
    parts.append("</ul>")
    for dtype in ordered_dtypes(session):
        cells = ordered_cells(c for c in session.cells if c.dtype == dtype)
        parts.append(f"<h2>Results: {_e(dtype)}</h2>")
        parts.append('<div class="charts">' + "".join(charts_for(cells, dtype)) + "</div>")
        bandwidth = has_bandwidth(cells)
        parts.append(_table(list(result_columns(bandwidth)), (result_row(c, bandwidth) for c in cells),
                            (_result_classes(c, bandwidth) for c in cells)))
        variant = variant_lines(cells)
        if variant:
            parts.append("<p>Variant paths:</p><ul>" + "".join(f"<li>{_e(v)}</li>" for v in variant) + "</ul>")
        missing = not_measured(cells)
        if missing:
            parts.append("<p>Not measured:</p><ul>" + "".join(f"<li>{_e(m)}</li>" for m in missing) + "</ul>")
    parts.append("<h2>Provenance</h2>")
    if session.provenance:
        parts.append(_table(["key", "value"], ([k, fmt_value(v)] for k, v in session.provenance.items())))
    else:
        parts.append(f'<p class="na">{NA}</p>')
    if session.backends_unavailable:
        parts.append("<h2>Backends unavailable</h2>")
        parts.append(_table(["backend", "reason"],
                            ([k, str(v)] for k, v in session.backends_unavailable.items())))
    parts.append("<h2>Spec</h2>")
    parts.append(_table(["key", "value"], ([k, fmt_value(v)] for k, v in session.spec.items())))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


__all__ = ["backend_color", "Series", "bar_chart", "charts_for", "line_chart", "render"]
