"""Atomic file writes with one-line errors, and the check every output path gets first.

An export or a session copy is either the complete new file or the old one, never a
half-written mix: the text goes to a temporary file in the *same directory* as the
real target (so the final ``os.replace`` is a rename within one filesystem, which POSIX
makes atomic), is fsync'd, and then renamed over the target.

What may be written (:func:`check_output_path`, called before any work, so a typo in
``--out`` costs no sweep):

- the target is absent, a regular file, or a symlink (chain) ending at one of those;
  a symlink is written *through*: the file it points at is replaced atomically and the
  link itself stays a link;
- never a directory, FIFO, socket or device node (``--out /dev/full`` must not replace
  the device), and nothing on the kernel's pseudo-filesystems (/proc, /sys);
- the directory that will hold the file exists, is a directory, is writable, and is
  not on a read-only filesystem.

A failure becomes a :class:`StorageError` whose ``str()`` is one line,
``cannot write PATH: REASON``, which ``flashtui.cli.main`` prints without a traceback
(exit 2).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from flashtui.errors import StorageError

# Mode of a newly created file: what `open(path, "w")` gives under the usual 022 umask.
# (mkstemp makes 0600 files; reading the real umask is not thread-safe.)
NEW_FILE_MODE = 0o644
# Kernel pseudo-filesystems: writing a "file" there talks to the kernel, never stores data.
PSEUDO_FS_ROOTS = ("/proc", "/sys")


# The export command's name for the same failure.
ExportError = StorageError


def describe_os_error(exc: OSError, path: str | os.PathLike[str], action: str = "write") -> str:
    """``"cannot write /x/y.md: Read-only file system"``: the path and errno's text."""
    reason = exc.strerror or (errno.errorcode.get(exc.errno or 0) if exc.errno else None) or str(exc)
    return f"cannot {action} {os.fspath(path)}: {reason}"


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "it is a directory"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "it is a socket, not a regular file"
    return "it is not a regular file"


def _on_pseudo_fs(real: str) -> str | None:
    for root in PSEUDO_FS_ROOTS:
        if real == root or real.startswith(root + "/"):
            return root
    return None


def check_output_path(path: str | os.PathLike[str], what: str | None = None) -> Path:
    """Check that ``path`` may be written as a regular file; return the file to replace.

    The result is the real path (every symlink resolved), so the caller writes the file a
    link points at and the link survives. ``what`` (e.g. ``"--out"``) prefixes the error.
    Raises :class:`StorageError` with one line; creates nothing.
    """
    prefix = f"{what}: " if what else ""
    text = os.fspath(path)
    if not str(text).strip():
        raise StorageError(f"{prefix}empty output path")
    shown = text
    given = Path(text).expanduser()

    def refuse(reason: str) -> StorageError:
        return StorageError(f"{prefix}cannot write {shown}: {reason}")

    real = os.path.realpath(given)
    link_note = f" (a link to {real})" if os.path.islink(given) else ""
    root = _on_pseudo_fs(real)
    if root is not None:
        raise refuse(f"{root} is a kernel pseudo-filesystem, not a place for files{link_note}")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None  # reported below: a parent is not a directory
    except OSError as exc:  # ELOOP (a symlink loop), EACCES on a parent, ...
        raise refuse((exc.strerror or str(exc)) + link_note) from None
    if st is not None:
        kind = _kind(st.st_mode)
        if kind is not None:
            raise refuse(kind + link_note)
    directory = os.path.dirname(real) or "."
    if not os.path.exists(directory):
        raise refuse(f"directory {directory} does not exist")
    if not os.path.isdir(directory):
        raise refuse(f"{directory} is not a directory")
    try:
        read_only_fs = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        read_only_fs = False
    if read_only_fs:
        raise refuse(f"directory {directory} is on a read-only file system")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise refuse(f"directory {directory} is not writable: Permission denied")
    if st is not None and not os.access(real, os.W_OK):
        raise refuse(f"the file is read-only{link_note}")  # replacing it would defeat chmod -w
    return Path(real)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (through a symlink); return the user's path.

    Raises StorageError (one line naming ``path``).
    """
    target = check_output_path(path)
    shown = os.fspath(path)
    directory = target.parent
    try:
        mode = target.stat().st_mode & 0o7777 if target.exists() else NEW_FILE_MODE
    except OSError:
        mode = NEW_FILE_MODE
    try:
        # A unique name per writer: two processes exporting at once never share a temp file.
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise StorageError(describe_os_error(exc, shown)) from None
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
        raise StorageError(describe_os_error(exc, shown)) from None
    fsync_directory(directory)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return the path. Raises StorageError."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_move(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Rename ``source`` (a finished file in the target's directory) over ``path``.

    For files another program wrote (py-spy's profile): ``path`` is checked like any
    output, and a symlink is written through. Raises StorageError; ``source`` is
    removed on failure.
    """
    try:
        target = check_output_path(path)
        os.replace(source, target)
    except OSError as exc:
        _unlink_quietly(source)
        raise StorageError(describe_os_error(exc, path)) from None
    except StorageError:
        _unlink_quietly(source)
        raise
    fsync_directory(target.parent)
    return Path(path)


def temp_path_beside(path: str | os.PathLike[str]) -> Path:
    """A fresh, empty, uniquely named file in the directory of ``path``'s real target.

    For a program that writes the file itself (py-spy): it writes here, then
    :func:`atomic_move` puts the result in place. Raises StorageError.
    """
    target = check_output_path(path)
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise StorageError(describe_os_error(exc, path)) from None
    os.close(fd)
    return Path(name)


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_directory(directory: Path) -> None:
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
    "ExportError", "NEW_FILE_MODE", "StorageError", "atomic_move", "atomic_write_bytes",
    "atomic_write_text", "check_output_path", "describe_os_error", "temp_path_beside",
]
