"""The session record: one sweep's spec, provenance and cells, as the documented JSON.

Pure Python. The client builds it from worker events; exports and the TUI read it.
The layout is documented in docs/schema.md.
"""

from __future__ import annotations

from flashtui.errors import SessionError  # noqa: F401 - raised here, importable from here

import datetime as _dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from flashtui import __version__
from flashtui.core.results import SCHEMA_NAME, SCHEMA_VERSION, Cell, attach_speedups
from flashtui.core.spec import CellKey


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def new_session_id() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


@dataclass
class Session:
    spec: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    id: str = field(default_factory=new_session_id)
    created_at: str = field(default_factory=_now_iso)
    finished_at: str | None = None
    # running | complete | cancelled | failed
    status: str = "running"
    flashtui_version: str = __version__
    # Worker start-up cost (torch import, CUDA init, backend probe) and crash restarts.
    worker: dict[str, Any] = field(default_factory=dict)
    # Backends the worker could not offer at all, with the reason (not swept by default).
    backends_unavailable: dict[str, str] = field(default_factory=dict)
    # Monitor samples, profiles, capacity tables and other attachments by name.
    attachments: dict[str, Any] = field(default_factory=dict)

    def add_cell(self, cell: Cell) -> None:
        """Add or replace (a re-run) the cell with the same key, then refresh speedups."""
        for i, existing in enumerate(self.cells):
            if existing.key == cell.key:
                self.cells[i] = cell
                break
        else:
            self.cells.append(cell)
        attach_speedups(self.cells)

    def cell(self, backend: str, seq: int, dtype: str) -> Cell | None:
        return self.find(CellKey(backend, seq, dtype))

    def find(self, key: CellKey) -> Cell | None:
        """The cell at ``key``, or None."""
        for c in self.cells:
            if c.key == key:
                return c
        return None

    def finish(self, status: str) -> None:
        self.status = status
        self.finished_at = _now_iso()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": {"name": SCHEMA_NAME, "version": SCHEMA_VERSION},
            "id": self.id,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "flashtui_version": self.flashtui_version,
            "provenance": self.provenance,
            "spec": self.spec,
            "worker": self.worker,
            "backends_unavailable": self.backends_unavailable,
            "cells": [c.to_dict() for c in self.cells],
            "attachments": self.attachments,
        }

    @classmethod
    def from_dict(cls, data: Any) -> "Session":
        if not isinstance(data, dict):
            raise SessionError("not a flashtui session (expected a JSON object)")
        schema = data.get("schema")
        if not isinstance(schema, dict) or schema.get("name") != SCHEMA_NAME:
            raise SessionError("not a flashtui session (no 'schema' naming flashtui.core.session)")
        version = schema.get("version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise SessionError(
                f"session schema version {version!r} is newer than this flashtui reads "
                f"({SCHEMA_VERSION}); upgrade flashtui"
            )
        try:
            cells = [Cell.from_dict(c) for c in data.get("cells", [])]
        except TypeError as exc:
            raise SessionError(f"a cell in the session is malformed: {exc}") from None
        session = cls(
            spec=data.get("spec") or {},
            provenance=data.get("provenance") or {},
            cells=cells,
            id=str(data.get("id") or new_session_id()),
            created_at=str(data.get("created_at") or _now_iso()),
            finished_at=data.get("finished_at"),
            status=str(data.get("status") or "complete"),
            flashtui_version=str(data.get("flashtui_version") or "unknown"),
            worker=data.get("worker") or {},
            backends_unavailable=data.get("backends_unavailable") or {},
            attachments=data.get("attachments") or {},
        )
        attach_speedups(session.cells)
        return session
