"""What the TUI's panels and charts show, as plain data: rows per table, series per chart.

No textual, no rich, no torch: every function here is unit-tested without a terminal.
Every number is formatted by :mod:`flashtui.core.units`, the same functions the CLI
table and the exports use, so a value reads the same in the TUI as everywhere else
(``None`` is "NA", never 0). Also here: progress and status lines, because they are
logic worth testing and have nothing to do with drawing.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from flashtui.core.spec import CellKey
from flashtui.core.units import (
    NA, fmt_bytes, fmt_clock, fmt_ms_iqr, fmt_pass, fmt_ratio, fmt_sci, fmt_tflops, is_missing,
)


def short_reason(name: str, reason: str | None) -> str:
    """A backend's unavailability reason without the repeated name ('runs on CUDA GPUs only ...')."""
    text = (reason or "unavailable").strip()
    for prefix in (f"{name} ", f"{name}: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return text


def eta_seconds(done: int, total: int, elapsed_s: float) -> float | None:
    """Remaining time at the average pace so far; None until one cell has finished."""
    if done <= 0 or total <= 0 or elapsed_s < 0:
        return None
    return max(0.0, elapsed_s / done * (total - done))


def progress_text(done: int, total: int, elapsed_s: float) -> str:
    """'3/12 cells · 12 s elapsed · ETA 36 s'."""
    eta = eta_seconds(done, total, elapsed_s)
    eta_text = "ETA " + (fmt_clock(eta) if eta is not None else "…")
    if total and done >= total:
        eta_text = "done"
    return f"{done}/{total} cells · {fmt_clock(elapsed_s)} elapsed · {eta_text}"


def status_text(cell: dict[str, Any]) -> str:
    """'ok' or the status in capitals with its reason: 'FAILED: worker killed by SIGKILL'."""
    status = cell.get("status") or "ok"
    if status == "ok":
        picked = cell.get("extra", {}).get("sdpa_kernel") if cell.get("backend") == "sdpa" else None
        text = f"ok: ran {picked}" if picked else "ok"
        # Noisy: measured, but its spread or the host's load make the number doubtful.
        return f"~ noisy: {cell.get('noise_reason') or 'unstable timing'}" if cell.get("noisy") else text
    word = {"failed": "FAILED", "oom": "OOM", "unsupported": "unsupported"}.get(status, status)
    reason = cell.get("reason")
    return f"{word}: {reason}" if reason else word


# ------------------------------------------------------------------- table rows
def _parity(cell: dict[str, Any]) -> dict[str, Any]:
    parity = cell.get("parity")
    return parity if isinstance(parity, dict) else {}


def cell_key(cell: dict[str, Any]) -> str:
    """A stable row key: 'sdpa-flash|1024|bf16' (:meth:`CellKey.row_key`)."""
    return CellKey(cell["backend"], int(cell["seq"]), cell["dtype"]).row_key()


TIMING_COLUMNS = ("backend", "seq", "dtype", "median ± IQR", "FLOP/s", "speedup", "status")


def timing_row(cell: dict[str, Any]) -> tuple[str, ...]:
    return (
        str(cell["backend"]), str(cell["seq"]), str(cell["dtype"]),
        fmt_ms_iqr(cell.get("median_ms"), cell.get("iqr_ms")),
        fmt_tflops(cell.get("tflops")),
        fmt_ratio(cell.get("speedup_vs_standard")),
        status_text(cell),
    )


# A narrow terminal (80 columns): what an expert needs first, the status as a marker.
TIMING_COLUMNS_NARROW = ("backend", "seq", "median ± IQR", "speedup", "status")


def status_marker(cell: dict[str, Any]) -> str:
    """The status in a few cells: '✓', '~ noisy', '✗ FAILED', '✗ OOM', '- unsupported'
    (a marker, so it reads without colour too)."""
    status = cell.get("status") or "ok"
    if status == "ok":
        return "~ noisy" if cell.get("noisy") else "✓"
    if status == "unsupported":
        return "- unsupported"
    return "✗ " + {"failed": "FAILED", "oom": "OOM"}.get(status, str(status))


def timing_row_narrow(cell: dict[str, Any]) -> tuple[str, ...]:
    return (
        str(cell["backend"]), str(cell["seq"]),
        fmt_ms_iqr(cell.get("median_ms"), cell.get("iqr_ms")),
        fmt_ratio(cell.get("speedup_vs_standard")),
        status_marker(cell),
    )


MEMORY_COLUMNS = ("backend", "seq", "dtype", "alloc peak", "theory", "saving")


def memory_row(cell: dict[str, Any], standard_peak_bytes: float | None = None) -> tuple[str, ...]:
    """Allocator peak beside theory bytes; 'saving' is standard's peak / this peak."""
    peak = cell.get("peak_alloc_bytes")
    saving = None
    if not is_missing(peak) and peak and not is_missing(standard_peak_bytes):
        saving = standard_peak_bytes / peak
    return (
        str(cell["backend"]), str(cell["seq"]), str(cell["dtype"]),
        fmt_bytes(peak), fmt_bytes(cell.get("theory_bytes")), fmt_ratio(saving),
    )


PARITY_COLUMNS = ("backend", "seq", "dtype", "rel_l2", "ratio", "max abs", "mean abs", "parity")


def parity_row(cell: dict[str, Any]) -> tuple[str, ...]:
    parity = _parity(cell)
    verdict = fmt_pass(parity.get("passed"))
    if parity.get("reason") and parity.get("passed") is None:
        verdict = f"{NA}: {parity['reason']}"
    return (
        str(cell["backend"]), str(cell["seq"]), str(cell["dtype"]),
        fmt_sci(parity.get("rel_l2")), fmt_ratio(parity.get("ratio_vs_standard")),
        fmt_sci(parity.get("max_abs")), fmt_sci(parity.get("mean_abs")), verdict,
    )


def standard_peaks(cells: Iterable[dict[str, Any]]) -> dict[tuple[int, str], float]:
    """(seq, dtype) -> standard's allocator peak, for memory-saving ratios."""
    return {
        (c["seq"], c["dtype"]): c["peak_alloc_bytes"]
        for c in cells
        if c["backend"] == "standard" and c.get("status") == "ok" and c.get("peak_alloc_bytes")
    }


def memory_bytes_for_chart(cell: dict[str, Any]) -> float | None:
    """What the memory chart plots: the allocator peak, else theory (CPU has no allocator stats)."""
    peak = cell.get("peak_alloc_bytes")
    return peak if not is_missing(peak) and peak else cell.get("theory_bytes")


# ------------------------------------------------------------------ chart series
Series = dict[str, tuple[list[int], list[float]]]


def series_by_backend(cells: Iterable[dict[str, Any]], value: Any, dtype: str | None = None) -> Series:
    """backend -> (seqs, values) sorted by seq, skipping failed cells and missing values.

    ``value`` is a field name or a function of the cell. With several dtypes, one series
    per backend/dtype pair ('sdpa-flash bf16').
    """
    cells = [c for c in cells if c.get("status", "ok") == "ok"]
    dtypes = sorted({c["dtype"] for c in cells})
    series: dict[str, list[tuple[int, float]]] = {}
    for cell in cells:
        if dtype is not None and cell["dtype"] != dtype:
            continue
        y = value(cell) if callable(value) else cell.get(value)
        if is_missing(y):
            continue
        name = cell["backend"] if len(dtypes) <= 1 else f"{cell['backend']} {cell['dtype']}"
        series.setdefault(name, []).append((int(cell["seq"]), float(y)))
    return {name: ([s for s, _ in sorted(pts)], [v for _, v in sorted(pts)])
            for name, pts in series.items()}


def evenly_spaced(items: list[Any], max_items: int) -> list[Any]:
    """At most ``max_items`` of ``items``, first and last kept, evenly spread between."""
    if len(items) <= max_items or max_items < 2:
        return list(items)
    step = (len(items) - 1) / (max_items - 1)
    return [items[round(i * step)] for i in range(max_items)]


# More bar groups than this do not fit a terminal chart (and cost frames to draw).
MAX_BAR_GROUPS = 12


def bars_vs_standard(cells: Sequence[dict[str, Any]], ratio: Any,
                     max_groups: int = MAX_BAR_GROUPS) -> tuple[list[str], list[str], list[list[float]]]:
    """Grouped bars: (seq labels, backend names, values[backend][seq]) of ``ratio(cell, std)``.

    Standard itself is left out (its ratio is 1 by definition); a missing value is 0.0
    so the bar groups stay aligned (plotext has no gaps). With more than ``max_groups``
    sequence lengths, an evenly spaced subset (first and last kept) is drawn.
    """
    ok = [c for c in cells if c.get("status", "ok") == "ok"]
    std = {(c["seq"], c["dtype"]): c for c in ok if c["backend"] == "standard"}
    seqs = evenly_spaced(sorted({(c["seq"], c["dtype"]) for c in ok}), max_groups)
    multi_dtype = len({d for _, d in seqs}) > 1
    labels = [f"{s} {d}" if multi_dtype else str(s) for s, d in seqs]
    backends = [b for b in dict.fromkeys(c["backend"] for c in ok) if b != "standard"]
    values: list[list[float]] = []
    for backend in backends:
        row = []
        for key in seqs:
            cell = next((c for c in ok if c["backend"] == backend and (c["seq"], c["dtype"]) == key), None)
            base = std.get(key)
            r = ratio(cell, base) if cell is not None and base is not None else None
            row.append(0.0 if is_missing(r) else float(r))
        values.append(row)
    return labels, backends, values


def speedup_ratio(cell: dict[str, Any], standard: dict[str, Any]) -> float | None:
    """standard median / this median."""
    a, b = standard.get("median_ms"), cell.get("median_ms")
    return a / b if not is_missing(a) and not is_missing(b) and b else None


def memory_saving_ratio(cell: dict[str, Any], standard: dict[str, Any]) -> float | None:
    """standard's memory / this memory (allocator peak, else theory bytes)."""
    a, b = memory_bytes_for_chart(standard), memory_bytes_for_chart(cell)
    return a / b if not is_missing(a) and not is_missing(b) and b else None


def memory_trace_label(used_bytes: float | None, total_bytes: float | None, proc_bytes: float | None) -> str:
    """'GPU memory 1.2 GiB / 80.0 GiB · worker 900.0 MiB'."""
    text = f"GPU memory {fmt_bytes(used_bytes)} / {fmt_bytes(total_bytes)}"
    return text + f" · worker {fmt_bytes(proc_bytes)}"
