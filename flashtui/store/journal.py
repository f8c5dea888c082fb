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

import errno
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from flashtui.store.atomic import StorageError, describe_os_error, fsync_directory
from flashtui.core.results import SCHEMA_NAME, SCHEMA_VERSION, Cell
from flashtui.core.session import Session, SessionError
from flashtui.core.spec import CellKey

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

    The file appears whole: header (and any cells already in the session) go to a
    uniquely named temporary file that is then hard-linked to ``path`` (which fails if
    ``path`` exists), so a reader never sees a half-written header and two writers never
    share a file.

    ``lazy``: the file is created when the first cell arrives, so a run that never
    finished a cell (a model that fails to load, a Ctrl-C during start-up) leaves no
    empty session behind. ``finish`` without a cell writes nothing.

    ``fallback_dirs``: where the journal goes when ``path`` cannot be written (a full
    disk, a read-only data directory, at creation or in the middle of a sweep): the
    whole session so far is rewritten there and appending goes on; when no place takes
    it, the session stays in memory only. Either way nothing raises: :attr:`problem`
    and :meth:`warning` say what was not saved and where it went. Without fallbacks a
    write failure raises :class:`~flashtui.store.atomic.StorageError` (one line).

    ``fault``: a test hook ``fault(write_number, path) -> OSError | None`` raised in
    place of a write to the first path (see :mod:`flashtui.store.faults`).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True, lazy: bool = False,
                 fallback_dirs: Sequence[str | os.PathLike[str]] = (),
                 fault: Callable[[int, Path], OSError | None] | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        self.path = Path(path)
        self.first_path = self.path
        self.fsync = fsync
        self.lazy = lazy
        self.fallback_dirs = [Path(d) for d in fallback_dirs]
        self._fault = fault
        self._on_close = on_close
        self._writes = 0
        self._handle: Any = None
        self._good_size = 0
        self._created = False
        self._pending_updates: list[dict[str, Any]] = []
        self._written_cells: dict[CellKey, dict[str, Any]] = {}
        self._written_updates: dict[str, str] = {}
        self._session: Session | None = None
        self.finished = False
        # Each place that refused the journal and why, and whether nothing is on disk.
        self.problems: list[tuple[str, str]] = []
        self.in_memory_only = False
        self._last_warning: tuple[str, bool, int] | None = None

    # -- where it is -------------------------------------------------------------
    @property
    def saved_path(self) -> Path | None:
        """The file holding the session now (None: nothing written, or memory only)."""
        return self.path if self._created and not self.in_memory_only else None

    @property
    def moved(self) -> bool:
        return self.saved_path is not None and self.saved_path != self.first_path

    def warning(self) -> str | None:
        """One line: what could not be saved and where the session went instead."""
        if not self.problems:
            return None
        session_id = self._session.id if self._session is not None else self.first_path.stem
        n_cells = len(self._session.cells) if self._session is not None else 0
        if self.in_memory_only:
            tried = "; ".join(f"{where}: {why}" for where, why in self.problems)
            return (f"session {session_id} was not saved ({tried}): its {n_cells} "
                    "cell(s) are only in this output")
        where, why = self.problems[0]
        return (f"session {session_id} could not be saved in {where} ({why}); "
                f"it went to {self.path} instead ({n_cells} cell(s))")

    def new_warning(self) -> str | None:
        """:meth:`warning` when it changed since the last call (a UI notifies once per move)."""
        warning = self.warning()
        state = (str(self.path), self.in_memory_only, len(self.problems))
        if warning is None or state == self._last_warning:
            return None  # the same move as last time (only its cell count grew)
        self._last_warning = state
        return warning

    # -- writing -----------------------------------------------------------------
    def begin(self, session: Session) -> None:
        """Start the journal (never overwriting one): header and the session's cells.

        Lazy journals only check here that ``path`` is free; the file comes with the
        first cell.
        """
        if self._session is not None:
            raise SessionError(f"journal {self.path} was already begun")
        if os.path.lexists(self.path):
            raise StorageError(f"cannot create journal {self.path}: it already exists")
        self._session = session
        if not self.lazy or session.cells:
            self._create()

    def append_cell(self, cell: Cell) -> None:
        """Journal one finished cell (a re-run of the same key replaces it on load)."""
        _check_encodable({"record": RECORD_CELL, "cell": cell.to_dict()})
        if not self._created:
            self._create(extra_cell=cell)
            return
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
        if not self._created:
            if self._session is None:
                raise SessionError(f"journal {self.path} is not open (begin() first, or already finished)")
            self._pending_updates.append({"record": RECORD_UPDATE, **record})
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
        if not self._created:
            if not session.cells:
                # Nothing was measured: no session file at all (not an empty "failed" one).
                self.finished = True
                self.close()
                return
            self._session = self._session or session
            self._create()
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
            except OSError:
                pass  # every record was fsync'd already; a failing close loses nothing
            finally:
                self._handle = None
        if self._on_close is not None:
            callback, self._on_close = self._on_close, None
            callback()

    def __enter__(self) -> "SessionJournal":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not self.finished and self._session is not None:
            status = "cancelled" if issubclass(exc_type, KeyboardInterrupt) else "failed"
            try:
                self._session.finish(status)
                self.finish(self._session)
            except (OSError, StorageError, SessionError):
                pass  # the original exception matters more
        self.close()

    # -- the file ----------------------------------------------------------------
    def _header_records(self, extra_cell: Cell | None) -> tuple[list[dict[str, Any]], list[Cell]]:
        assert self._session is not None
        header = self._session.to_dict()
        header.pop("cells", None)
        records = [{"record": RECORD_HEADER, **header}]
        cells = list(self._session.cells)
        if extra_cell is not None and not any(c is extra_cell for c in cells):
            cells.append(extra_cell)  # journaled without session.add_cell: after the rest
        records += [{"record": RECORD_CELL, "cell": c.to_dict()} for c in cells]
        records += self._pending_updates
        return records, cells

    def _create(self, extra_cell: Cell | None = None, exclude: Path | None = None) -> None:
        """Write header + cells so far as a new file: at ``path``, else at a fallback."""
        if self._session is None:
            raise SessionError(f"journal {self.path} is not open (begin() first, or already finished)")
        records, cells = self._header_records(extra_cell)
        try:
            data = b"".join(_encode(r) for r in records)
        except ValueError as exc:
            raise SessionError(f"cannot journal a {records[-1].get('record')} record: {exc}") from None
        candidates = [self.path] + [d / self.first_path.name for d in self.fallback_dirs]
        for candidate in candidates:
            if exclude is not None and candidate == exclude:
                continue
            try:
                self._create_at(candidate, data)
            except OSError as exc:
                action = "create journal"
                message = describe_os_error(exc, candidate, action)
                if isinstance(exc, FileExistsError):
                    message = f"cannot create journal {candidate}: it already exists"
                if not self.fallback_dirs:
                    raise StorageError(message) from None
                self.problems.append(_short_reason(exc, candidate))
                continue
            self.path = candidate
            self._created = True
            self.in_memory_only = False
            self._pending_updates = []
            self._written_cells = {c.key: _cell_fingerprint(c) for c in cells}
            for key in UPDATABLE_KEYS:
                self._written_updates[key] = json.dumps(getattr(self._session, key), sort_keys=True)
            return
        # No place took it: the session lives on in memory (and in the command's output).
        self._created = True
        self.in_memory_only = True

    def _create_at(self, path: Path, data: bytes) -> None:
        self._maybe_fault(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # something that is not a directory holds the name
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent)) from None
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            try:
                os.link(tmp_name, path)  # atomic, and fails if path exists: never overwrites
            except FileExistsError:
                raise
            except OSError:  # no hard links here (some FUSE/vfat): exclusive create instead
                with open(path, "xb") as handle:
                    handle.write(data)
                    handle.flush()
                    if self.fsync:
                        os.fsync(handle.fileno())
        finally:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
        # Unbuffered: a refused write leaves no bytes behind in a buffer that a later
        # flush or close would append after the cut (see _fail_over).
        self._handle = open(path, "ab", buffering=0)
        self._good_size = len(data)
        fsync_directory(path.parent)  # the new file's name is durable too

    def _maybe_fault(self, path: Path) -> None:
        if self._fault is None or path != self.first_path:
            return
        self._writes += 1
        error = self._fault(self._writes, path)
        if error is not None:
            raise error

    def _write(self, record: dict[str, Any]) -> None:
        if self.in_memory_only:
            return
        if self._handle is None:
            raise SessionError(f"journal {self.path} is not open (begin() first, or already finished)")
        try:
            data = _encode(record)
        except ValueError as exc:
            raise SessionError(f"cannot journal a {record.get('record')} record: {exc}") from None
        try:
            self._maybe_fault(self.path)
            view = memoryview(data)
            while view:  # a raw write may take part of the line (a nearly full disk)
                view = view[self._handle.write(view):]
            if self.fsync:
                os.fsync(self._handle.fileno())
            self._good_size += len(data)
        except OSError as exc:
            if not self.fallback_dirs:
                raise StorageError(describe_os_error(exc, self.path, "append to journal")) from None
            self._fail_over(exc, record)

    def _fail_over(self, exc: OSError, record: dict[str, Any]) -> None:
        """The current file refused a write: rewrite the whole session elsewhere, go on."""
        failed = self.path
        self.problems.append(_short_reason(exc, failed))
        handle, self._handle = self._handle, None
        try:  # drop a half-written last line (shrinking needs no space), keep what was whole
            os.ftruncate(handle.fileno(), self._good_size)
        except (OSError, ValueError):
            pass
        try:
            handle.close()
        except OSError:
            pass
        self._created = False
        self._create(exclude=failed)
        if self.in_memory_only:
            return
        kind = record.get("record")
        if kind == RECORD_CELL:
            cell = Cell.from_dict(record["cell"])
            if self._written_cells.get(cell.key) == _cell_fingerprint(cell):
                return  # already in the rewritten file
        self._write(record)


def _short_reason(exc: OSError, path: Path) -> tuple[str, str]:
    """(the folder that refused, errno's text) for the one-line warning."""
    return str(path.parent), exc.strerror or str(exc)


def _check_encodable(record: dict[str, Any]) -> None:
    try:
        _encode(record)
    except ValueError as exc:
        raise SessionError(f"cannot journal a {record.get('record')} record: {exc}") from None


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
