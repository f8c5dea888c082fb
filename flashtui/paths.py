"""Every place flashtui reads or writes on disk, each with its environment override.

| location              | default (Linux, via platformdirs / XDG)   | override                  |
| --------------------- | ----------------------------------------- | ------------------------- |
| data dir              | ``~/.local/share/flashtui``               | ``$FLASHTUI_DATA_DIR``    |
|   sessions (journals) | ``<data dir>/sessions/<id>.jsonl``        |                           |
|   py-spy profiles     | ``<data dir>/sessions/<id>.profile*.json``|                           |
| sessions, store full  | ``$TMPDIR/flashtui-<uid>/sessions``, then | ``$FLASHTUI_FALLBACK_DIRS``|
|                       | ``/dev/shm/flashtui-<uid>/sessions``      | (``os.pathsep`` list)     |
| config dir            | ``~/.config/flashtui``                    | ``$FLASHTUI_CONFIG_DIR``  |
|   TUI settings        | ``<config dir>/config.toml``              |                           |
|   user themes         | ``<config dir>/themes/*.toml``            |                           |
| cache dir             | ``~/.cache/flashtui``                     | ``$FLASHTUI_CACHE_DIR``   |
| worker logs           | the system temp dir (one file a start)    | ``$TMPDIR``               |
| TUI screenshots       | the current directory                     | ``$FLASHTUI_SCREENSHOT_DIR``|

Shipped themes are package data (``flashtui.themes``, read with importlib.resources),
not a path: see ``flashtui.tui.themes``. Nothing here creates a directory; writers do,
when they first write. UI side only (platformdirs); the engine never needs a path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

APP_NAME = "flashtui"
DATA_DIR_ENV = "FLASHTUI_DATA_DIR"
CONFIG_DIR_ENV = "FLASHTUI_CONFIG_DIR"
CACHE_DIR_ENV = "FLASHTUI_CACHE_DIR"
SCREENSHOT_DIR_ENV = "FLASHTUI_SCREENSHOT_DIR"
FALLBACK_DIRS_ENV = "FLASHTUI_FALLBACK_DIRS"
CONFIG_FILE_NAME = "config.toml"


def _override(env: str) -> Path | None:
    value = os.environ.get(env)
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """``$FLASHTUI_DATA_DIR`` or the platform's per-user data dir (sessions live here)."""
    override = _override(DATA_DIR_ENV)
    if override:
        return override
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def sessions_dir() -> Path:
    """Session journals, ``<id>.jsonl`` each."""
    return data_dir() / "sessions"


def profiles_dir() -> Path:
    """py-spy recordings the TUI makes: beside the journal of the session they belong to."""
    return sessions_dir()


def fallback_sessions_dirs() -> list[Path]:
    """Where a session goes when the store cannot take it (full disk, read-only data dir).

    ``$FLASHTUI_FALLBACK_DIRS`` when set (see :func:`fallback_dirs_chosen`); else a
    per-user folder in the temp dir, then one in /dev/shm (memory-backed, so it still
    works when the disk holding both the data dir and /tmp is full). The store checks
    the default ones before use (``flashtui.store.index.fallback_dirs``).
    """
    override = os.environ.get(FALLBACK_DIRS_ENV)
    if override is not None:
        return [Path(p).expanduser() for p in override.split(os.pathsep) if p.strip()]
    user = f"flashtui-{os.getuid()}" if hasattr(os, "getuid") else "flashtui"
    return [Path(tempfile.gettempdir()) / user / "sessions", Path("/dev/shm") / user / "sessions"]


def fallback_dirs_chosen() -> bool:
    """True when the user named the fallback places (``$FLASHTUI_FALLBACK_DIRS``)."""
    return os.environ.get(FALLBACK_DIRS_ENV) is not None


def config_dir() -> Path:
    """``$FLASHTUI_CONFIG_DIR`` or the platform's per-user config dir."""
    override = _override(CONFIG_DIR_ENV)
    if override:
        return override
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def config_file() -> Path:
    """The TUI's remembered settings."""
    return config_dir() / CONFIG_FILE_NAME


def user_themes_dir() -> Path:
    """Themes a user adds (``*.toml``); one with a shipped theme's name replaces it."""
    return config_dir() / "themes"


def cache_dir() -> Path:
    """``$FLASHTUI_CACHE_DIR`` or the platform's per-user cache dir: safe to delete."""
    override = _override(CACHE_DIR_ENV)
    if override:
        return override
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME, appauthor=False))


def worker_log_dir() -> Path:
    """Where each worker start's log file goes: the system temp dir (``$TMPDIR``)."""
    return Path(tempfile.gettempdir())


def screenshots_dir() -> Path:
    """Where the TUI's ``s`` saves SVG screenshots: ``$FLASHTUI_SCREENSHOT_DIR`` or the cwd."""
    return _override(SCREENSHOT_DIR_ENV) or Path.cwd()
