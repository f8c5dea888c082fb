"""Session exports, one module per format: JSON (the schema), Markdown, CSV, HTML.

Every exporter is a pure function ``render(session) -> str``; :func:`export_session`
renders and, given a path, writes atomically (a failed write leaves no partial file
and raises a one-line :class:`~flashtui.store.atomic.StorageError`). No torch, no textual.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from flashtui.store.atomic import atomic_write_text
from flashtui.errors import UsageError
from flashtui.core.session import Session

# Format name -> module under flashtui.reports holding `render(session) -> str`.
FORMAT_MODULES = {"json": "json_export", "md": "markdown", "csv": "csv_export", "html": "html"}
FORMATS = tuple(FORMAT_MODULES)
FORMAT_ALIASES = {"markdown": "md", "htm": "html"}
FILE_SUFFIXES = {"json": ".json", "md": ".md", "csv": ".csv", "html": ".html"}


def normalize_format(fmt: str) -> str:
    key = (fmt or "").strip().lower()
    key = FORMAT_ALIASES.get(key, key)
    if key not in FORMAT_MODULES:
        raise UsageError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    return key


def render_session(session: Session, fmt: str) -> str:
    """The session as text in ``fmt`` (json, md, csv, html)."""
    module = importlib.import_module(f"{__name__}.{FORMAT_MODULES[normalize_format(fmt)]}")
    return module.render(session)


def export_session(session: Session, fmt: str, path: str | os.PathLike[str] | None = None) -> str:
    """Render ``session`` as ``fmt``; write it atomically to ``path`` when given.

    Returns the rendered text either way, so a caller can print it when ``path`` is None.
    """
    text = render_session(session, fmt)
    if path is not None:
        atomic_write_text(Path(path), text)
    return text


__all__ = ["FILE_SUFFIXES", "FORMATS", "export_session", "normalize_format", "render_session"]
