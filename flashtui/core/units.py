"""NA and every formatter of a measured value: one value reads the same on every surface.

The CLI table, the TUI, the Markdown and HTML exports, ``flashtui diff``, the doctor
report and the NVML line all call these functions; none keeps its own copy. CSV and
JSON exports keep raw numbers (they are data) and use NA only for missing values.

The rules, one per kind:

* **Missing** is ``NA`` (None, NaN or infinite): a value the engine or the driver
  could not give, never 0.
* **Significant digits**: 3, trailing zeros kept (``1.00 ms``, ``16.0 GiB``, ``3.14x``);
  from 100 up the whole number is shown (``512 MiB``, ``1234 GB/s``), never an exponent.
* **Time** (input in ms): ``us`` below 0.1 ms, ``ms`` up to 1000 ms, ``s`` above:
  ``0.0123 -> "12.3 us"``, ``0.214 -> "0.214 ms"``, ``1234 -> "1.23 s"``. The unit is
  chosen after rounding, so 0.09996 ms reads ``0.100 ms``, not ``100 us``.
* **Time ± spread** (median and IQR): two times as above, sharing the unit when they
  have the same one (``"76.7 ± 7.70 us"``), else each keeps its own
  (``"0.214 ms ± 4.20 us"``); a missing spread is ``"12.3 us ± NA"``.
* **Durations** (input in s, a measurement: probe time, worker start): ``"4.20 s"``
  below a minute, then ``"3m05s"``, ``"1h02m"``.
* **Clocks** (elapsed and ETA on a progress line: it ticks, so no fractions):
  whole seconds, ``"42 s"``, then ``"3m05s"``, ``"1h02m"``.
* **Bytes**: binary units (the allocator and GPU spec sheets use them): ``512 B``,
  ``1536 -> "1.50 KiB"``, ``"80.0 GiB"``.
* **Ratios** (speedups, B/A, parity error ratios): ``3.14159 -> "3.14x"``.
* **Throughput**: ``"512 TFLOP/s"``, scaled to ``GFLOP/s``/``MFLOP/s`` below 1 TFLOP/s
  (CPU runs are tiny); bandwidth always in ``GB/s``.
* **Percent** (input already in %): whole from 10 % up, one decimal below (``"97%"``, ``"3.2%"``).
* **Errors** (|diff|, relative L2): scientific with 2 significant digits, ``"1.8e-07"``:
  an error's order of magnitude matters, not its third digit.
* **NVML readings**: whole numbers, as the sensors report them: ``"1980 MHz"``, ``"690 W"``, ``"65 C"``.
* **Verdicts**: ``pass`` / ``FAIL`` / ``NA`` in words, so NO_COLOR users see them.

Every string here is ASCII (``us``, ``x``, ``C``: the CLI table must survive a non-UTF-8
terminal or log) except the ``±`` of :func:`fmt_ms_iqr`, which only the UTF-8 surfaces
(TUI, Markdown, HTML) use; the CLI table prints median and IQR in two columns.
"""

from __future__ import annotations

import math
from typing import Any

NA = "NA"
SIGNIFICANT_DIGITS = 3
# Below 0.1 ms a time reads in microseconds; from 1000 ms up in seconds.
US_BELOW_MS = 0.1
S_FROM_MS = 1000.0
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def is_missing(value: Any) -> bool:
    """None, NaN or an infinity: nothing to show but NA."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _round_sig(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    return float(f"{value:.{digits}g}")


def sig(value: float | None, digits: int = SIGNIFICANT_DIGITS) -> str:
    """A bare number with ``digits`` significant digits, trailing zeros kept, no exponent:
    1 -> '1.00', 0.0123 -> '0.0123', 99.96 -> '100', 1234.5 -> '1234' (whole from 10**(digits-1))."""
    if is_missing(value):
        return NA
    x = float(value)
    if x == 0:
        return "0"
    whole_from = 10 ** (digits - 1)
    if abs(x) >= whole_from:
        return f"{x:.0f}"
    rounded = _round_sig(x, digits)
    if abs(rounded) >= whole_from:
        return f"{rounded:.0f}"
    decimals = digits - 1 - math.floor(math.log10(abs(rounded)))
    return f"{rounded:.{decimals}f}"


def whole(value: float | None) -> str:
    """A bare whole number: 1979.6 -> '1980'; NA when missing."""
    return NA if is_missing(value) else f"{float(value):.0f}"


def _scaled(value: float, scales: tuple[tuple[float, float, str], ...]) -> str:
    """``sig(value * factor) unit`` for the first (below, factor, unit) whose ``below``
    the rounded value is under; the last scale takes the rest."""
    magnitude = abs(_round_sig(value))
    for below, factor, unit in scales:
        if magnitude < below:
            return f"{sig(value * factor)} {unit}"
    _, factor, unit = scales[-1]
    return f"{sig(value * factor)} {unit}"


# ------------------------------------------------------------------ time
_TIME_SCALES = ((US_BELOW_MS, 1000.0, "us"), (S_FROM_MS, 1.0, "ms"), (math.inf, 0.001, "s"))


def fmt_ms(value_ms: float | None) -> str:
    """A time given in milliseconds: 0.0123 -> '12.3 us', 1.5 -> '1.50 ms', 12345 -> '12.3 s'."""
    if is_missing(value_ms):
        return NA
    return _scaled(float(value_ms), _TIME_SCALES)


def fmt_ms_iqr(median_ms: float | None, iqr_ms: float | None) -> str:
    """Median ± IQR: '76.7 ± 7.70 us' in one unit when both read in it, else
    '0.214 ms ± 4.20 us'; '12.3 us ± NA' when the spread is missing."""
    if is_missing(median_ms):
        return NA
    median_text = fmt_ms(median_ms)
    if is_missing(iqr_ms):
        return f"{median_text} ± {NA}"
    iqr_text = fmt_ms(iqr_ms)
    median_number, median_unit = median_text.split(" ")
    iqr_number, iqr_unit = iqr_text.split(" ")
    if median_unit == iqr_unit:
        return f"{median_number} ± {iqr_number} {median_unit}"
    return f"{median_text} ± {iqr_text}"


def _minutes_or_hours(total_s: int) -> str:
    if total_s < 3600:
        return f"{total_s // 60}m{total_s % 60:02d}s"
    return f"{total_s // 3600}h{(total_s % 3600) // 60:02d}m"


def fmt_seconds(seconds: float | None) -> str:
    """A measured duration in seconds: '0.512 s', '4.20 s', '3m05s', '1h02m'; negative is NA."""
    if is_missing(seconds) or float(seconds) < 0:
        return NA
    value = float(seconds)
    if _round_sig(value) < 60:
        return f"{sig(value)} s"
    return _minutes_or_hours(int(round(value)))


def fmt_clock(seconds: float | None) -> str:
    """Elapsed or remaining time on a progress line, whole seconds: '42 s', '3m05s', '1h02m'."""
    if is_missing(seconds) or float(seconds) < 0:
        return NA
    total = int(round(float(seconds)))
    return f"{total} s" if total < 60 else _minutes_or_hours(total)


# ------------------------------------------------------------------ sizes and rates
def fmt_bytes(n_bytes: float | None) -> str:
    """Binary units: 512 -> '512 B', 1536 -> '1.50 KiB', 80 GiB -> '80.0 GiB'."""
    if is_missing(n_bytes):
        return NA
    size = float(n_bytes)
    if abs(size) < 1023.5:
        return f"{size:.0f} B"
    for unit in _BYTE_UNITS[1:]:
        size /= 1024.0
        if abs(size) < 1023.5 or unit == _BYTE_UNITS[-1]:
            return f"{sig(size)} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def fmt_ratio(value: float | None) -> str:
    """A ratio (speedup, B/A, parity error vs standard's): 3.14159 -> '3.14x'."""
    return NA if is_missing(value) else f"{sig(value)}x"


_FLOPS_SCALES = ((1e-3, 1e6, "MFLOP/s"), (1.0, 1e3, "GFLOP/s"), (math.inf, 1.0, "TFLOP/s"))


def fmt_tflops(tflops: float | None) -> str:
    """Compute throughput given in TFLOP/s: 512.3 -> '512 TFLOP/s', 0.0123 -> '12.3 GFLOP/s'."""
    if is_missing(tflops):
        return NA
    return _scaled(float(tflops), _FLOPS_SCALES)


def fmt_gbps(gb_per_s: float | None) -> str:
    """Memory bandwidth in GB/s (decimal, as HBM spec sheets): 3352 -> '3352 GB/s'."""
    return NA if is_missing(gb_per_s) else f"{sig(gb_per_s)} GB/s"


def fmt_pct(percent: float | None) -> str:
    """A percentage (already x100): 97.3 -> '97%', 3.21 -> '3.2%'."""
    if is_missing(percent):
        return NA
    value = float(percent)
    return f"{value:.0f}%" if abs(round(value, 1)) >= 10 else f"{value:.1f}%"


def fmt_sci(value: float | None) -> str:
    """An error magnitude: 1.8145e-07 -> '1.8e-07'."""
    return NA if is_missing(value) else f"{float(value):.1e}"


def fmt_pass(passed: bool | None) -> str:
    """A parity verdict in words: 'pass', 'FAIL', or 'NA' when it was not checked."""
    if passed is None:
        return NA
    return "pass" if passed else "FAIL"


# ------------------------------------------------------------------ NVML readings
def fmt_mhz(mhz: float | None) -> str:
    return NA if is_missing(mhz) else f"{whole(mhz)} MHz"


def fmt_watts(watts: float | None) -> str:
    return NA if is_missing(watts) else f"{whole(watts)} W"


def fmt_celsius(celsius: float | None) -> str:
    return NA if is_missing(celsius) else f"{whole(celsius)} C"


__all__ = [
    "NA", "SIGNIFICANT_DIGITS", "fmt_bytes", "fmt_celsius", "fmt_clock", "fmt_gbps", "fmt_mhz", "fmt_ms",
    "fmt_ms_iqr", "fmt_pass", "fmt_pct", "fmt_ratio", "fmt_sci", "fmt_seconds", "fmt_tflops",
    "fmt_watts", "is_missing", "sig", "whole",
]
