"""The NVML monitor's own lines: one sample, one timed window. Numbers via core.units.

What is monitor-specific here is the composition (which readings, in which order, how a
window's min/median/max reads); every value is formatted by :mod:`flashtui.core.units`,
so "NA" (the driver could not tell us) and "3.00 GiB" read as on every other surface.
Pure functions, no textual/rich: the TUI's widgets and the headless CLI share them.
"""

from __future__ import annotations

from typing import Any

from flashtui.core.units import NA, fmt_bytes, fmt_celsius, fmt_mhz, fmt_pct, fmt_watts, whole

# Window statistics: (Cell.telemetry key, label before the numbers, unit after them).
_WINDOW_FIELDS = (("sm_clock_mhz", "SM", "MHz"), ("power_w", "power", "W"))


def fmt_sample(sample: Any) -> str:
    """One line for logs and the CLI: 'mem 1.20 GiB / 80.0 GiB (proc NA) util 97% SM 1980 MHz ...'."""
    return (
        f"mem {fmt_bytes(sample.mem_used_bytes)} / {fmt_bytes(sample.mem_total_bytes)}"
        f" (proc {fmt_bytes(sample.proc_mem_bytes)})"
        f" util {fmt_pct(sample.util_gpu_pct)}"
        f" SM {fmt_mhz(sample.sm_clock_mhz)}"
        f" {fmt_watts(sample.power_w)}"
        f" {fmt_celsius(sample.temp_c)}"
    )


def fmt_window(summary: dict[str, Any] | None) -> str:
    """'SM 1755-1980 MHz (med 1980), 540-700 W (med 690), n=12' for a Cell.telemetry.

    NVML readings are whole numbers (core.units' rule), so the range shares one unit."""
    if not summary:
        return NA
    parts = []
    for key, label, unit in _WINDOW_FIELDS:
        stats = summary.get(key)
        if stats is None:
            parts.append(f"{label} {NA}")
            continue
        prefix = "SM " if key == "sm_clock_mhz" else ""
        parts.append(f"{prefix}{whole(stats['min'])}-{whole(stats['max'])} {unit} "
                     f"(med {whole(stats['median'])})")
    parts.append(f"n={summary.get('count', 0)}" + (" nearest" if summary.get("nearest") else ""))
    if summary.get("clock_event_reasons"):
        parts.append("clocks: " + ", ".join(summary["clock_event_reasons"]))
    return ", ".join(parts)


__all__ = ["fmt_sample", "fmt_window"]
