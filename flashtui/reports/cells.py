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
