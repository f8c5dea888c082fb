"""Atomic file writes with one-line errors.

An export or a session copy is either the complete new file or the old one, never a
half-written mix: the text goes to a temporary file in the *same directory* (so the
final ``os.replace`` is a rename within one filesystem, which POSIX makes atomic), is
fsync'd, and then renamed over the target. A failure (read-only directory, disk full,
missing directory, target is a directory) becomes a :class:`StorageError` whose
``str()`` is one line naming the path and the operating system's reason, which
``flashtui.cli.main`` prints without a traceback.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from flashtui.errors import StorageError

# Mode of a newly created file: what `open(path, "w")` gives under the usual 022 umask.
# (mkstemp makes 0600 files; reading the real umask is not thread-safe.)
NEW_FILE_MODE = 0o644


# The export command's name for the same failure.
ExportError = StorageError


def describe_os_error(exc: OSError, path: str | os.PathLike[str], action: str = "write") -> str:
    """``"cannot write /x/y.md: Read-only file system"``: the path and errno's text."""
    reason = exc.strerror or (errno.errorcode.get(exc.errno or 0) if exc.errno else None) or str(exc)
    return f"cannot {action} {os.fspath(path)}: {reason}"


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path. Raises StorageError."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.exists():
        raise StorageError(f"cannot write {target}: directory {directory} does not exist")
    if not directory.is_dir():
        raise StorageError(f"cannot write {target}: {directory} is not a directory")
    if target.is_dir():
        raise StorageError(f"cannot write {target}: it is a directory")
    try:
        mode = target.stat().st_mode & 0o7777 if target.exists() else NEW_FILE_MODE
    except OSError:
        mode = NEW_FILE_MODE
    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise StorageError(describe_os_error(exc, target)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except OSError as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise StorageError(describe_os_error(exc, target)) from None
    _fsync_directory(directory)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return the path. Raises StorageError."""
    return atomic_write_bytes(path, text.encode(encoding))


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = [
    "ExportError", "NEW_FILE_MODE", "StorageError", "atomic_write_bytes", "atomic_write_text",
    "describe_os_error",
]
