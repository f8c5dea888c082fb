"""Append-only JSON-lines journal of a session while it runs.

Why a journal and not one JSON file rewritten per cell: a sweep can run for an hour
and the process writing it can be killed at any instant (SIGKILL, OOM killer, a lost
SSH session, a segfault in a kernel). Appending one line per finished cell and
fsync'ing it means every cell that finished is on disk, and the worst a kill can do
is leave half of the *last* line, which :func:`load_journal` skips with a warning.

Format (one JSON object per line, documented in docs/schema.md)::

    {"record": "header", "schema": {...}, "id": ..., "created_at": ..., "spec": ..., ...}
    {"record": "cell", "cell": {...Cell.to_dict()...}}
    {"record": "update", "provenance": {...}, "attachments": {...}}   # any time, merged
    {"record": "footer", "status": "complete", "finished_at": ..., "n_cells": 12}

The header carries every top-level session key except ``cells`` (the schema version
included, so a newer file is refused clearly). A later cell record with the same
(backend, seq, dtype) replaces an earlier one (a re-run). ``update`` records merge
their dicts key by key into the session (a later value wins).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashtui.store.atomic import StorageError, describe_os_error
from flashtui.core.results import SCHEMA_NAME, SCHEMA_VERSION, Cell
from flashtui.core.session import Session, SessionError

RECORD_HEADER = "header"
RECORD_CELL = "cell"
RECORD_UPDATE = "update"
RECORD_FOOTER = "footer"

# Session keys an `update` record may carry; each is a dict merged into the session's.
UPDATABLE_KEYS = ("provenance", "attachments", "worker", "backends_unavailable", "spec")

# Fields recomputed from the other cells on load, so not worth re-journaling a cell for.
_DERIVED_CELL_FIELDS = ("speedup_vs_standard",)


def _encode(record: dict[str, Any]) -> bytes:
    # allow_nan=False: NaN/Infinity are not JSON; a NaN measurement must arrive as None.
    return (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def _cell_fingerprint(cell: Cell) -> dict[str, Any]:
    data = cell.to_dict()
    for name in _DERIVED_CELL_FIELDS:
        data.pop(name, None)
    return data


class SessionJournal:
    """Writes one session's journal; every record is flushed and fsync'd before returning.

    Typical use by a sweep driver::

        journal = SessionJournal(store.journal_path(session.id))
        journal.begin(session)
        for cell in cells_as_they_finish:
            session.add_cell(cell)
            journal.append_cell(cell)
        journal.update(attachments={"nvml": samples})
        session.finish("complete")
        journal.finish(session)

    It is also a context manager: leaving the block with an exception writes a footer
    with status ``failed`` (``cancelled`` for KeyboardInterrupt) unless ``finish`` ran.
    Write failures raise :class:`~flashtui.store.atomic.StorageError` (one line).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._handle: Any = None
        self._written_cells: dict[tuple[str, int, str], dict[str, Any]] = {}
        self._written_updates: dict[str, str] = {}
        self._session: Session | None = None
        self.finished = False

    # -- writing -----------------------------------------------------------------
    def begin(self, session: Session) -> None:
        """Create the journal file (never overwriting one) and write the header.

        Cells already in ``session`` are journaled right after the header.
        """
        if self._handle is not None:
            raise SessionError(f"journal {self.path} was already begun")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # "x": a journal is append-only; silently replacing an old session loses data.
            self._handle = open(self.path, "xb")
        except FileExistsError:
            raise StorageError(f"cannot create journal {self.path}: it already exists") from None
        except OSError as exc:
            raise StorageError(describe_os_error(exc, self.path, "create journal")) from None
        self._session = session
        header = session.to_dict()
        header.pop("cells", None)
        self._write({"record": RECORD_HEADER, **header})
        for key in UPDATABLE_KEYS:
            self._written_updates[key] = json.dumps(getattr(session, key), sort_keys=True)
        for cell in session.cells:
            self.append_cell(cell)

    def append_cell(self, cell: Cell) -> None:
        """Journal one finished cell (a re-run of the same key replaces it on load)."""
        self._write({"record": RECORD_CELL, "cell": cell.to_dict()})
        self._written_cells[cell.key] = _cell_fingerprint(cell)

    def update(self, *, provenance: dict[str, Any] | None = None,
               attachments: dict[str, Any] | None = None,
               worker: dict[str, Any] | None = None,
               backends_unavailable: dict[str, str] | None = None,
               spec: dict[str, Any] | None = None) -> None:
        """Journal additions to the session's dicts; each key given is merged on load."""
        given = dict(provenance=provenance, attachments=attachments, worker=worker,
                     backends_unavailable=backends_unavailable, spec=spec)
        record: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        for key, value in record.items():
            if not isinstance(value, dict):
                raise TypeError(f"journal update {key} must be a dict, got {type(value).__name__}")
        if not record:
            return
        self._write({"record": RECORD_UPDATE, **record})
        if self._session is not None:
            for key, value in record.items():
                self._written_updates[key] = json.dumps(
                    {**getattr(self._session, key), **value}, sort_keys=True)

    def finish(self, session: Session) -> None:
        """Write what the journal lacks of ``session`` (cells, dict changes), the footer, close."""
        if self.finished:
            return
        for cell in session.cells:
            if self._written_cells.get(cell.key) != _cell_fingerprint(cell):
                self.append_cell(cell)
        changed = {}
        for key in UPDATABLE_KEYS:
            value = getattr(session, key)
            if self._written_updates.get(key) != json.dumps(value, sort_keys=True):
                changed[key] = value
        if changed:
            self.update(**changed)
        self._write({
            "record": RECORD_FOOTER,
            "status": session.status,
            "finished_at": session.finished_at,
            "n_cells": len(session.cells),
        })
        self.finished = True
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            try:
                self._handle.close()
            finally:
                self._handle = None

    def __enter__(self) -> "SessionJournal":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not self.finished and self._session is not None \
                and self._handle is not None:
            status = "cancelled" if issubclass(exc_type, KeyboardInterrupt) else "failed"
            try:
                self._session.finish(status)
                self.finish(self._session)
            except (OSError, StorageError):
                pass  # the original exception matters more
        self.close()

    def _write(self, record: dict[str, Any]) -> None:
        if self._handle is None:
            raise SessionError(f"journal {self.path} is not open (begin() first, or already finished)")
        try:
            data = _encode(record)
        except ValueError as exc:
            raise SessionError(f"cannot journal a {record.get('record')} record: {exc}") from None
        try:
            self._handle.write(data)
            self._handle.flush()
            if self.fsync:
                os.fsync(self._handle.fileno())
        except OSError as exc:
            raise StorageError(describe_os_error(exc, self.path, "append to journal")) from None


# -- reading ---------------------------------------------------------------------
@dataclass
class JournalContents:
    """What a journal held: the session rebuilt from its valid records, and the rest."""

    session: Session
    warnings: list[str] = field(default_factory=list)
    # False when the writer never wrote a footer (still running, killed, or crashed).
    has_footer: bool = False
    skipped_lines: int = 0


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict) or schema.get("name") != SCHEMA_NAME:
        raise SessionError(f"{where}: not a flashtui session journal (header has no "
                           f"'schema' naming {SCHEMA_NAME})")
    version = schema.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SessionError(f"{where}: session schema version {version!r} is not an integer")
    if version > SCHEMA_VERSION:
        raise SessionError(f"{where}: session schema version {version} is newer than this "
                           f"flashtui reads ({SCHEMA_VERSION}); upgrade flashtui")


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Rebuild the session from every valid record; say what was skipped and why.

    Raises :class:`SessionError` when nothing usable is there: an unreadable or empty
    file, a first line that is not a header, or a header of a newer schema version.
    """
    where = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SessionError(describe_os_error(exc, path, "read")) from None
    lines = raw.split(b"\n")
    ends_with_newline = raw.endswith(b"\n")
    if ends_with_newline:
        lines.pop()  # the empty string after the final newline
    if not lines or all(not line.strip() for line in lines):
        raise SessionError(f"{where}: empty journal (the sweep wrote nothing)")

    warnings: list[str] = []
    skipped = 0
    records: list[tuple[int, dict[str, Any]]] = []
    for index, line in enumerate(lines):
        number = index + 1
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            skipped += 1
            if index == len(lines) - 1 and not ends_with_newline:
                warnings.append(f"line {number}: truncated last record ({len(line)} bytes, "
                                "the writer stopped mid-line), skipped")
            else:
                warnings.append(f"line {number}: not valid JSON, skipped")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("record"), str):
            skipped += 1
            warnings.append(f"line {number}: not a journal record (no 'record' type), skipped")
            continue
        records.append((number, record))

    if not records or records[0][1].get("record") != RECORD_HEADER or records[0][0] != 1:
        raise SessionError(f"{where}: not a flashtui session journal (line 1 is not a "
                           "valid header record)")
    _, header = records[0]
    _check_schema(header.get("schema"), where)
    session_dict = {k: v for k, v in header.items() if k != "record"}
    session_dict["cells"] = []
    try:
        session = Session.from_dict(session_dict)
    except SessionError as exc:
        raise SessionError(f"{where}: {exc}") from None
    if not header.get("status"):
        session.status = "running"

    has_footer = False
    for number, record in records[1:]:
        kind = record["record"]
        if has_footer:
            warnings.append(f"line {number}: {kind} record after the footer, applied anyway")
        if kind == RECORD_CELL:
            data = record.get("cell")
            try:
                if not isinstance(data, dict):
                    raise TypeError("'cell' is not an object")
                cell = Cell.from_dict(data)
                if not isinstance(cell.backend, str) or not isinstance(cell.seq, int) \
                        or not isinstance(cell.dtype, str):
                    raise TypeError("backend/seq/dtype have the wrong types")
            except TypeError as exc:
                skipped += 1
                warnings.append(f"line {number}: malformed cell record ({exc}), skipped")
                continue
            session.add_cell(cell)
        elif kind == RECORD_UPDATE:
            for key in UPDATABLE_KEYS:
                value = record.get(key)
                if value is None:
                    continue
                if not isinstance(value, dict):
                    warnings.append(f"line {number}: update of {key} is not an object, skipped")
                    continue
                getattr(session, key).update(value)
        elif kind == RECORD_FOOTER:
            has_footer = True
            if isinstance(record.get("status"), str):
                session.status = record["status"]
            session.finished_at = record.get("finished_at")
            expected = record.get("n_cells")
            if isinstance(expected, int) and expected != len(session.cells):
                warnings.append(f"footer says {expected} cells, the journal holds "
                                f"{len(session.cells)}")
        elif kind == RECORD_HEADER:
            skipped += 1
            warnings.append(f"line {number}: a second header record, skipped")
        else:
            skipped += 1
            warnings.append(f"line {number}: unknown record type {kind!r}, skipped")

    if not has_footer:
        warnings.append("no footer: the session did not finish (still running, or its "
                        f"writer was killed); {len(session.cells)} finished cell(s) recovered")
    return JournalContents(session=session, warnings=warnings, has_footer=has_footer,
                           skipped_lines=skipped)


def load_journal(path: str | os.PathLike[str]) -> tuple[Session, list[str]]:
    """``(session, warnings)`` from a journal; see :func:`read_journal`."""
    contents = read_journal(path)
    return contents.session, contents.warnings


__all__ = [
    "JournalContents", "RECORD_CELL", "RECORD_FOOTER", "RECORD_HEADER", "RECORD_UPDATE",
    "SessionJournal", "UPDATABLE_KEYS", "load_journal", "read_journal",
]
