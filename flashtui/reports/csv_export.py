"""One CSV row per cell, flat columns: every Cell field, Parity fields as ``parity_*``.

Columns come from the dataclasses, so a field added to the schema appears here too.
Numbers stay raw (``repr`` of the float: this is data, not a report). A missing value
(None, NaN) is ``NA`` -- the same word every surface uses, and one pandas and R read as
missing -- never 0 and never an empty field; an empty list or dict (present, holding
nothing) is empty. Booleans are ``true``/``false``; lists are joined with ``;``; dicts
(telemetry, extra, parity grads) are compact JSON.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import fields
from typing import Any

from flashtui.core.results import Cell, Parity
from flashtui.core.session import Session
from flashtui.core.units import NA, is_missing

CELL_COLUMNS = [f.name for f in fields(Cell) if f.name != "parity"]
PARITY_COLUMNS = [f"parity_{f.name}" for f in fields(Parity)]
COLUMNS = ["session_id"] + CELL_COLUMNS[:3] + CELL_COLUMNS[3:] + PARITY_COLUMNS


def _flat(value: Any) -> str:
    if value is None:
        return NA
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return NA if is_missing(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else ""
    return str(value)


def rows(session: Session) -> list[dict[str, str]]:
    out = []
    for cell in session.cells:
        data = cell.to_dict()
        parity = data.pop("parity", None) or {}
        row = {"session_id": session.id}
        row.update({name: _flat(data.get(name)) for name in CELL_COLUMNS})
        row.update({f"parity_{name}": _flat(parity.get(name)) for name in
                    (f.name for f in fields(Parity))})
        out.append(row)
    return out


def render(session: Session) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(session))
    return buffer.getvalue()


__all__ = ["COLUMNS", "render", "rows"]
