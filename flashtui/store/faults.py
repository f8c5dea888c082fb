"""Storage fault injection for tests: make the session store fail on cue.

``FLASHTUI_INJECT_STORE_FAULT=KIND@N`` makes the N-th write to a journal in the store
(1 = creating the file, then one per record) and every write after it raise the error
``KIND`` names: ``enospc`` (No space left on device) or ``erofs`` (Read-only file
system). The fallback places (``flashtui.store.index.fallback_dirs``) are not affected,
so a test sees exactly what a full disk or a data directory remounted read-only in
the middle of a sweep does. Real faults (a small tmpfs filled up, a read-only mount)
are tested too; this hook covers what cannot be produced on a test box (a remount
read-only while a file is open for writing is refused by the kernel: EBUSY).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

from flashtui.errors import UsageError

STORE_FAULT_ENV = "FLASHTUI_INJECT_STORE_FAULT"
ERRORS = {"enospc": errno.ENOSPC, "erofs": errno.EROFS}


def parse(text: str) -> tuple[int, int]:
    """``"enospc@3"`` -> ``(errno.ENOSPC, 3)``. Raises UsageError (one line) on anything else."""
    kind, _, at = text.strip().partition("@")
    if kind not in ERRORS:
        raise UsageError(f"{STORE_FAULT_ENV}: unknown fault {kind!r}; choose from {', '.join(ERRORS)}")
    try:
        first = int(at or "1")
    except ValueError:
        raise UsageError(f"{STORE_FAULT_ENV}: {at!r} is not a write number") from None
    return ERRORS[kind], max(first, 1)


def from_env() -> Callable[[int, Path], OSError | None] | None:
    """The journal fault hook the environment asks for (None: no fault)."""
    text = os.environ.get(STORE_FAULT_ENV)
    if not text:
        return None
    code, first = parse(text)

    def fault(write_number: int, path: Path) -> OSError | None:
        if write_number >= first:
            return OSError(code, os.strerror(code), str(path))
        return None
    return fault


__all__ = ["ERRORS", "STORE_FAULT_ENV", "from_env", "parse"]
