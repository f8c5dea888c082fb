"""Screenshots, written the way every flashtui output is.

:func:`save_screenshot` saves the SVG of the screen, named like Textual's own
``App.save_screenshot`` (title + local time), but checked first and written
atomically (:mod:`flashtui.store.atomic`): never onto a FIFO, device or directory,
through a symlink, never half a file. Errors are one-line ``StorageError`` lines.
"""

from __future__ import annotations

import os
from typing import Any

from flashtui.store.atomic import atomic_write_text, check_output_path


def screenshot_path(app: Any, directory: str | os.PathLike[str] | None) -> str:
    """Where the next screenshot goes (checked: raises StorageError with one line)."""
    from textual.app import generate_datetime_filename

    name = generate_datetime_filename(app.title, ".svg")
    path = os.path.expanduser(os.path.join(os.fspath(directory or "./"), name))
    check_output_path(path)
    return path


def save_screenshot(app: Any, directory: str | os.PathLike[str] | None) -> str:
    """Save an SVG screenshot of ``app``'s screen into ``directory``; return its path."""
    path = screenshot_path(app, directory)
    atomic_write_text(path, app.export_screenshot())
    return path


__all__ = ["save_screenshot", "screenshot_path"]
