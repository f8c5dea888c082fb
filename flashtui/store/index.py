"""Where sessions live on disk, and how a user names one.

Sessions are journals at ``<data dir>/sessions/<id>.jsonl``; where the data dir is
(``$FLASHTUI_DATA_DIR`` or the XDG data dir) is ``flashtui.paths``' business.

A session reference (``resolve``) is an id, a unique prefix of one, ``latest``, or a
path to a ``.jsonl`` journal or an exported ``.json`` file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flashtui.core.session import Session, SessionError
from flashtui.paths import (DATA_DIR_ENV, FALLBACK_DIRS_ENV, data_dir, fallback_dirs_chosen,
                            fallback_sessions_dirs, sessions_dir)
from flashtui.store.journal import SessionJournal, read_journal

JOURNAL_SUFFIX = ".jsonl"
# How many candidates an "ambiguous prefix" error names before "and N more".
_AMBIGUOUS_SHOWN = 4


def journal_path(session_id: str) -> Path:
    """Where the journal of ``session_id`` goes (the directory may not exist yet)."""
    if not session_id or "/" in session_id or os.sep in session_id or session_id.startswith("."):
        raise SessionError(f"invalid session id {session_id!r}")
    return sessions_dir() / f"{session_id}{JOURNAL_SUFFIX}"


def fallback_dirs() -> list[Path]:
    """Where a session goes when the store cannot take it (full disk, read-only data dir):
    ``paths.fallback_sessions_dirs()``, less the store itself, and the default places
    only when safe to use (a user's own ``$FLASHTUI_FALLBACK_DIRS`` are taken as given).
    """
    chosen = fallback_dirs_chosen()
    primary = sessions_dir()
    out: list[Path] = []
    for folder in fallback_sessions_dirs():
        if folder != primary and folder not in out and (chosen or _safe_fallback(folder)):
            out.append(folder)
    return out


def _safe_fallback(folder: Path) -> bool:
    """A shared /tmp may hold a planted symlink or someone else's folder: use neither."""
    for part in (folder.parent, folder):
        try:
            st = os.lstat(part)
        except FileNotFoundError:
            continue
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode):  # lstat: a symlink is not a directory here
            return False
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return False
    return True


def open_journal(session: Session, *, fsync: bool = True) -> SessionJournal:
    """The session's journal in the store; return the writer.

    The file appears with the first finished cell (a run that measured nothing leaves
    no session). A store that cannot be written, then or later in the sweep, sends the
    session to :func:`fallback_dirs` instead: the sweep goes on and
    ``journal.warning()`` says where it went. While it is open, a marker in
    ``<sessions>/.live/`` tells other flashtui processes a sweep is running
    (:func:`live_sweeps`).
    """
    from flashtui.store import faults, live

    journal = SessionJournal(journal_path(session.id), fsync=fsync, lazy=True,
                             fallback_dirs=fallback_dirs(), fault=faults.from_env(),
                             on_close=live.mark(sessions_dir(), session))
    journal.begin(session)
    return journal


def live_sweeps(exclude: str | None = None) -> list[dict[str, Any]]:
    """Sweeps running now on this host (their journal open), other than ``exclude``."""
    from flashtui.store import live

    return [m for m in live.running(sessions_dir()) if m.get("session_id") != exclude]


@dataclass
class SessionSummary:
    """One line of ``flashtui sessions``: enough to pick a session without opening it."""

    id: str
    path: str
    created_at: str | None
    device: str | None
    mode: str | None
    n_cells: int
    n_ok: int
    # Best speedup_vs_standard over all ok cells, and where (NA when none measured).
    best_speedup: float | None
    best_speedup_at: str | None
    # The session's status; without a footer "running" while its writer lives (a marker
    # in .live/), else "incomplete"; "unreadable" when it cannot be read at all.
    status: str
    warnings: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def empty(self) -> bool:
        """Nothing measured and nothing running: an old run that never finished a cell."""
        return self.n_cells == 0 and self.status not in ("running", "unreadable")


def summarize(session: Session, path: str | os.PathLike[str], *, has_footer: bool = True,
              warnings: int = 0, running: bool = False) -> SessionSummary:
    best: float | None = None
    best_at: str | None = None
    # Only speedups whose both ends are trustworthy (measured, not noisy) count.
    clean_baselines = {(c.seq, c.dtype) for c in session.cells if c.backend == "standard" and c.trustworthy}
    for cell in session.cells:
        if (cell.trustworthy and cell.backend != "standard" and cell.speedup_vs_standard is not None
                and (cell.seq, cell.dtype) in clean_baselines):
            if best is None or cell.speedup_vs_standard > best:
                best = cell.speedup_vs_standard
                best_at = f"{cell.backend} seq={cell.seq} {cell.dtype}"
    device = session.provenance.get("device_name") or session.spec.get("device")
    status = session.status if has_footer else ("running" if running else "incomplete")
    return SessionSummary(
        id=session.id, path=os.fspath(path), created_at=session.created_at,
        device=str(device) if device is not None else None,
        mode=session.spec.get("mode"), n_cells=len(session.cells),
        n_ok=sum(1 for c in session.cells if c.status == "ok"),
        best_speedup=best, best_speedup_at=best_at, status=status, warnings=warnings,
    )


def _journal_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.suffix == JOURNAL_SUFFIX and p.is_file() and not p.name.startswith("."))


def _sort_key(summary: SessionSummary) -> tuple[str, str]:
    return (_normalized_time(summary.created_at), summary.id)


def _normalized_time(stamp: str | None) -> str:
    if not stamp:
        return ""
    try:
        parsed = _dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.astimezone(_dt.timezone.utc).isoformat()


def list_sessions(directory: str | os.PathLike[str] | None = None) -> list[SessionSummary]:
    """Every journal in the store, newest first. Unreadable files are listed, not fatal."""
    from flashtui.store import live

    folder = Path(directory) if directory is not None else sessions_dir()
    summaries = []
    running = {m.get("session_id") for m in live.running(folder)}
    for path in _journal_files(folder):
        try:
            contents = read_journal(path)
        except SessionError as exc:
            summaries.append(SessionSummary(
                id=path.stem, path=str(path), created_at=None, device=None, mode=None,
                n_cells=0, n_ok=0, best_speedup=None, best_speedup_at=None,
                status="unreadable", error=str(exc)))
            continue
        summaries.append(summarize(contents.session, path, has_footer=contents.has_footer,
                                   warnings=len(contents.warnings),
                                   running=contents.session.id in running))
    summaries.sort(key=_sort_key, reverse=True)
    return summaries


def _looks_like_path(ref: str) -> bool:
    return ("/" in ref or os.sep in ref or ref.endswith((".json", JOURNAL_SUFFIX))
            or ref.startswith((".", "~")))


def resolve(ref: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """The file a session reference names. Raises SessionError (one line) otherwise."""
    ref = (ref or "").strip()
    if not ref:
        raise SessionError("empty session reference; give an id, a prefix, 'latest' or a path")
    folder = Path(directory) if directory is not None else sessions_dir()
    if ref == "latest":
        summaries = [s for s in list_sessions(folder) if s.status != "unreadable"]
        if not summaries:
            raise SessionError(f"no sessions yet in {folder}; run `flashtui bench` first")
        return Path(summaries[0].path)
    candidate = Path(ref).expanduser()
    if _looks_like_path(ref):
        if candidate.is_file():
            return candidate
        raise SessionError(f"no such session file: {ref}")
    exact = folder / f"{ref}{JOURNAL_SUFFIX}"
    if exact.is_file():
        return exact
    matches = [p for p in _journal_files(folder) if p.stem.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = [p.stem for p in matches]
        shown = ", ".join(names[:_AMBIGUOUS_SHOWN])
        more = f" and {len(names) - _AMBIGUOUS_SHOWN} more" if len(names) > _AMBIGUOUS_SHOWN else ""
        raise SessionError(f"ambiguous session {ref!r}: matches {shown}{more}; type more of the id")
    if candidate.is_file():  # a file in the current directory without a known suffix
        return candidate
    raise SessionError(f"unknown session {ref!r}; `flashtui sessions` lists them ({folder})")


def load_path(path: str | os.PathLike[str]) -> tuple[Session, list[str]]:
    """Load a journal (``.jsonl``) or an exported session JSON (``.json``)."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SessionError(f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise SessionError(f"{path}: not a flashtui session (not UTF-8 text)") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SessionError(f"{path}: not valid JSON ({exc})") from None
        try:
            return Session.from_dict(data), []
        except SessionError as exc:
            raise SessionError(f"{path}: {exc}") from None
    contents = read_journal(path)
    return contents.session, contents.warnings


def load(ref: str, directory: str | os.PathLike[str] | None = None) -> tuple[Session, list[str]]:
    """Resolve a reference and load it: ``(session, warnings)``."""
    return load_path(resolve(ref, directory))


__all__ = [
    "DATA_DIR_ENV", "FALLBACK_DIRS_ENV", "JOURNAL_SUFFIX", "fallback_dirs", "live_sweeps", "SessionSummary", "data_dir", "journal_path",
    "list_sessions", "load", "load_path", "open_journal", "resolve", "sessions_dir", "summarize",
]
