"""Pure formatting of measurements for the TUI: numbers in, short strings out.

No textual, no rich, no torch: every function here is unit-tested without a terminal
and the same strings can be reused by the headless CLI. ``None`` is always "NA" (a value
the engine could not give), never 0. Units are spelled out ("1.23 ms", "16.0 GiB",
"3.4x", "512 TFLOP/s") so a number never stands alone.

Also here: the data shaping behind the panels and charts (rows per table, series per
chart), because it is logic worth testing and has nothing to do with drawing.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

NA = "NA"
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_ms(value_ms: float | None) -> str:
    """Milliseconds with 3 significant digits: 0.0123 -> '12.3 us', 1.234 -> '1.23 ms'."""
    if _missing(value_ms):
        return NA
    if abs(value_ms) < 1.0:
        return f"{value_ms * 1000:.3g} us"
    if abs(value_ms) >= 10_000:
        return f"{value_ms / 1000:.3g} s"
    return f"{value_ms:.3g} ms" if abs(value_ms) < 1000 else f"{value_ms:.0f} ms"


def fmt_ms_iqr(median_ms: float | None, iqr_ms: float | None) -> str:
    """'1.23 ± 0.05 ms': median and IQR in the median's unit; each with its own unit
    when the spread is 1000x larger (a noisy cell: '214 us ± 12.3 ms')."""
    if _missing(median_ms):
        return NA
    median_text = fmt_ms(median_ms)
    if _missing(iqr_ms):
        return median_text
    number, unit = median_text.split(" ")
    scale = {"us": 1000.0, "ms": 1.0, "s": 0.001}[unit]
    iqr_in_unit = iqr_ms * scale
    if iqr_in_unit >= 1000:
        return f"{median_text} ± {fmt_ms(iqr_ms)}"
    return f"{number} ± {iqr_in_unit:.2g} {unit}"


def short_reason(name: str, reason: str | None) -> str:
    """A backend's unavailability reason without the repeated name ('runs on CUDA GPUs only ...')."""
    text = (reason or "unavailable").strip()
    for prefix in (f"{name} ", f"{name}: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return text


def fmt_bytes(n_bytes: float | None, digits: int = 1) -> str:
    """Binary units: 1536 -> '1.5 KiB', 16 GiB -> '16.0 GiB'; None -> 'NA'."""
    if _missing(n_bytes):
        return NA
    value = float(n_bytes)
    for unit in _BYTE_UNITS:
        if abs(value) < 1024.0 or unit == _BYTE_UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.{digits}f} {unit}"
        value /= 1024.0
    raise AssertionError("unreachable")  # pragma: no cover


def fmt_speedup(ratio: float | None) -> str:
    """3.42 -> '3.4x', 0.5 -> '0.50x' (two digits below 1 so slowdowns read clearly)."""
    if _missing(ratio):
        return NA
    return f"{ratio:.2f}x" if ratio < 1 else f"{ratio:.1f}x"


def fmt_tflops(tflops: float | None) -> str:
    """512.3 -> '512 TFLOP/s', 0.0123 -> '12.3 GFLOP/s' (CPU runs are tiny)."""
    if _missing(tflops):
        return NA
    if abs(tflops) >= 1.0:
        return f"{tflops:.3g} TFLOP/s"
    if abs(tflops) >= 1e-3:
        return f"{tflops * 1e3:.3g} GFLOP/s"
    return f"{tflops * 1e6:.3g} MFLOP/s"


def fmt_err(value: float | None) -> str:
    """An error magnitude in scientific notation: 1.8e-07."""
    if _missing(value):
        return NA
    return f"{value:.1e}"


def fmt_ratio(value: float | None) -> str:
    """Parity error ratio vs standard: '1.06'."""
    if _missing(value):
        return NA
    return f"{value:.2f}"


def fmt_pass(passed: bool | None) -> str:
    """Words, not colours only (NO_COLOR users must see it too)."""
    if passed is None:
        return NA
    return "pass" if passed else "FAIL"


def fmt_duration(seconds: float | None) -> str:
    """Seconds as '42 s', '3m05s', '1h02m'."""
    if _missing(seconds) or seconds < 0:
        return NA
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def eta_seconds(done: int, total: int, elapsed_s: float) -> float | None:
    """Remaining time at the average pace so far; None until one cell has finished."""
    if done <= 0 or total <= 0 or elapsed_s < 0:
        return None
    return max(0.0, elapsed_s / done * (total - done))


def progress_text(done: int, total: int, elapsed_s: float) -> str:
    """'3/12 cells, 0m12s elapsed, ETA 36 s'."""
    eta = eta_seconds(done, total, elapsed_s)
    eta_text = "ETA " + (fmt_duration(eta) if eta is not None else "…")
    if total and done >= total:
        eta_text = "done"
    return f"{done}/{total} cells · {fmt_duration(elapsed_s)} elapsed · {eta_text}"


def status_text(cell: dict[str, Any]) -> str:
    """'ok' or the status in capitals with its reason: 'FAILED: worker killed by SIGKILL'."""
    status = cell.get("status") or "ok"
    if status == "ok":
        return "ok"
    word = {"failed": "FAILED", "oom": "OOM", "unsupported": "unsupported"}.get(status, status)
    reason = cell.get("reason")
    return f"{word}: {reason}" if reason else word


# ------------------------------------------------------------------- table rows
def _parity(cell: dict[str, Any]) -> dict[str, Any]:
    parity = cell.get("parity")
    return parity if isinstance(parity, dict) else {}


def cell_key(cell: dict[str, Any]) -> str:
    """A stable row key: 'sdpa-flash|1024|bf16'."""
    return f"{cell['backend']}|{cell['seq']}|{cell['dtype']}"


TIMING_COLUMNS = ("backend", "seq", "dtype", "median ± IQR", "TFLOP/s", "speedup", "status")


def timing_row(cell: dict[str, Any]) -> tuple[str, ...]:
    return (
        str(cell["backend"]), str(cell["seq"]), str(cell["dtype"]),
        fmt_ms_iqr(cell.get("median_ms"), cell.get("iqr_ms")),
        fmt_tflops(cell.get("tflops")),
        fmt_speedup(cell.get("speedup_vs_standard")),
        status_text(cell),
    )


MEMORY_COLUMNS = ("backend", "seq", "dtype", "alloc peak", "theory", "saving")


def memory_row(cell: dict[str, Any], standard_peak_bytes: float | None = None) -> tuple[str, ...]:
    """Allocator peak beside theory bytes; 'saving' is standard's peak / this peak."""
    peak = cell.get("peak_alloc_bytes")
    saving = None
    if not _missing(peak) and peak and not _missing(standard_peak_bytes):
        saving = standard_peak_bytes / peak
    return (
        str(cell["backend"]), str(cell["seq"]), str(cell["dtype"]),
        fmt_bytes(peak), fmt_bytes(cell.get("theory_bytes")), fmt_speedup(saving),
    )


PARITY_COLUMNS = ("backend", "seq", "dtype", "rel_l2", "ratio", "max abs", "mean abs", "parity")


def parity_row(cell: dict[str, Any]) -> tuple[str, ...]:
    parity = _parity(cell)
    verdict = fmt_pass(parity.get("passed"))
    if parity.get("reason") and parity.get("passed") is None:
        verdict = f"NA: {parity['reason']}"
    return (
        str(cell["backend"]), str(cell["seq"]), str(cell["dtype"]),
        fmt_err(parity.get("rel_l2")), fmt_ratio(parity.get("ratio_vs_standard")),
        fmt_err(parity.get("max_abs")), fmt_err(parity.get("mean_abs")), verdict,
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
    return peak if not _missing(peak) and peak else cell.get("theory_bytes")


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
        if _missing(y):
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
            row.append(0.0 if _missing(r) else float(r))
        values.append(row)
    return labels, backends, values


def speedup_ratio(cell: dict[str, Any], standard: dict[str, Any]) -> float | None:
    """standard median / this median."""
    a, b = standard.get("median_ms"), cell.get("median_ms")
    return a / b if not _missing(a) and not _missing(b) and b else None


def memory_saving_ratio(cell: dict[str, Any], standard: dict[str, Any]) -> float | None:
    """standard's memory / this memory (allocator peak, else theory bytes)."""
    a, b = memory_bytes_for_chart(standard), memory_bytes_for_chart(cell)
    return a / b if not _missing(a) and not _missing(b) and b else None


def memory_trace_label(used_bytes: float | None, total_bytes: float | None, proc_bytes: float | None) -> str:
    """'GPU memory 1.2 GiB / 80.0 GiB · worker 900.0 MiB'."""
    text = f"GPU memory {fmt_bytes(used_bytes)} / {fmt_bytes(total_bytes)}"
    return text + f" · worker {fmt_bytes(proc_bytes)}"
