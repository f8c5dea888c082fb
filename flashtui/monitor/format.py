"""Plain-text formatting of monitor values, with ``None`` shown as "NA" (never 0).

Pure functions, no textual/rich: the TUI's widgets and the headless CLI share them,
so "NA" means the same thing everywhere -- the driver could not tell us.
"""

from __future__ import annotations

from typing import Any

NA = "NA"

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def na(value: float | int | None, spec: str = "g", unit: str = "") -> str:
    """``format(value, spec) + unit``, or "NA" for None (a field NVML could not give)."""
    if value is None:
        return NA
    text = format(value, spec)
    return f"{text} {unit}" if unit else text


def fmt_bytes(n_bytes: int | float | None, digits: int = 1) -> str:
    """1536 -> '1.5 KiB'; None -> 'NA'. Binary units, as nvidia-smi's MiB."""
    if n_bytes is None:
        return NA
    value = float(n_bytes)
    for unit in _BYTE_UNITS:
        if abs(value) < 1024.0 or unit == _BYTE_UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.{digits}f} {unit}"
        value /= 1024.0
    raise AssertionError("unreachable")  # pragma: no cover


def fmt_sample(sample: Any) -> str:
    """One line for logs and the CLI: 'mem 1.2/80.0 GiB (proc NA) util 97% SM 1980 MHz ...'."""
    mem_total = fmt_bytes(sample.mem_total_bytes)
    mem_used = fmt_bytes(sample.mem_used_bytes)
    util = NA if sample.util_gpu_pct is None else f"{sample.util_gpu_pct:.0f}%"
    return (
        f"mem {mem_used} / {mem_total} (proc {fmt_bytes(sample.proc_mem_bytes)})"
        f" util {util}"
        f" SM {na(sample.sm_clock_mhz, '.0f', 'MHz')}"
        f" {na(sample.power_w, '.0f', 'W')}"
        f" {na(sample.temp_c, '.0f', 'C')}"
    )


def fmt_window(summary: dict[str, Any] | None) -> str:
    """'SM 1755-1980 MHz (med 1980), 540-700 W (med 690), n=12' for a Cell.telemetry."""
    if not summary:
        return NA
    parts = []
    for key, unit in (("sm_clock_mhz", "MHz"), ("power_w", "W")):
        stats = summary.get(key)
        if stats is None:
            parts.append(f"{'SM' if key == 'sm_clock_mhz' else 'power'} NA")
            continue
        label = "SM " if key == "sm_clock_mhz" else ""
        parts.append(
            f"{label}{stats['min']:.0f}-{stats['max']:.0f} {unit} (med {stats['median']:.0f})"
        )
    parts.append(f"n={summary.get('count', 0)}" + (" nearest" if summary.get("nearest") else ""))
    return ", ".join(parts)


__all__ = ["NA", "fmt_bytes", "fmt_sample", "fmt_window", "na"]
