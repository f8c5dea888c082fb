"""Pure formatting of measured values with units; ``None`` is always "NA", never 0."""

from __future__ import annotations

NA = "NA"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return NA
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 1:
        return f"{value:.2f} ms"
    if value >= 0.01:
        return f"{value:.3f} ms"
    return f"{value * 1e3:.1f} µs"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return NA
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


def fmt_ratio(value: float | None, digits: int = 2) -> str:
    return NA if value is None else f"{value:.{digits}f}x"


def fmt_tflops(value: float | None) -> str:
    if value is None:
        return NA
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.3f}"


def fmt_pct(value: float | None) -> str:
    return NA if value is None else f"{value:.0f}%"


def fmt_sci(value: float | None) -> str:
    return NA if value is None else f"{value:.1e}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return NA
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(round(value)), 60)
    return f"{minutes}m{seconds:02d}s"
