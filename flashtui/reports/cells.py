"""Ordering and labelling of cells, shared by every report (markdown, html, diff, findings)."""

from __future__ import annotations

from typing import Any, Iterable

from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.core.spec import BACKENDS

STATUS_LABELS = {"ok": "ok", "oom": "OOM", "unsupported": "unsupported", "failed": "failed"}
# A finding's reason text is cut here so one unsupported backend cannot fill the page.
REASON_CHARS = 120


def one_line(text: Any, limit: int = REASON_CHARS) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


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


def warmup_label(spec: dict[str, Any], cells: Iterable[Cell] = ()) -> str | None:
    """The spec's warm-up as it ran: "warm-up 25 ms", or, where the cells recorded their
    warm-up (engine.timing.warm_up: at least warmup_ms, then on until steady), its range,
    "warm-up >=25 ms until steady (26-41 ms)". None when the spec has no warmup_ms."""
    if spec.get("warmup_ms") is None:
        return None
    floor = f"{float(spec['warmup_ms']):g} ms"
    cells = list(cells)
    ran = [float(c.extra["warmup_ms"]) for c in cells if c.extra.get("warmup_ms") is not None]
    if not ran or not any("warmup_steady" in c.extra for c in cells):
        return f"warm-up {floor}"
    return f"warm-up >={floor} until steady ({min(ran):.0f}-{max(ran):.0f} ms)"
