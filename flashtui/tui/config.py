"""User settings of the TUI, remembered in ``<config dir>/config.toml``.

The config dir (``$FLASHTUI_CONFIG_DIR`` or the XDG config dir) comes from ``flashtui.paths``.

The user's file is never destroyed:

- A missing file means defaults. A file that is not valid TOML is *kept*: it is renamed
  beside itself with the time (``config.toml.unparsable-20250314-091500``) and the one
  line the app shows as a notification says so; the app then runs on defaults and its
  next save starts a fresh file. A file that parses but holds a wrong value or an
  unknown key stays where it is (the bad entries are ignored and named).
- A save edits only the ``key = value`` lines of the settings it owns and keeps every
  other line (comments, blank lines, keys it does not know, tables) as the user wrote
  them. It goes through :func:`flashtui.store.atomic.atomic_write_text` (a unique temp
  file, fsync'd, renamed over the real file; a symlinked config, e.g. from a dotfiles
  repository, is written through and stays a link), so a crash mid-save leaves the old
  file, and two running apps never share a temp file.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from flashtui.paths import config_file
from flashtui.tui.toml_reader import tomllib

DEFAULT_THEME = "flashtui-dark"
UNPARSABLE_SUFFIX = ".unparsable-"
HEADER_COMMENT = "# flashtui TUI settings (written by the app; safe to edit)"


@dataclass
class TuiConfig:
    """What the TUI remembers between runs."""

    theme: str = DEFAULT_THEME
    """Name of the Textual theme last chosen (a shipped, user or built-in theme)."""
    nvml_rate_hz: float = 10.0
    """How often the NVML sampler reads the GPU while the app runs."""


def _parse(raw: bytes) -> dict:
    return tomllib.loads(raw.decode("utf-8", errors="replace"))


def keep_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.unparsable-<local time>`` beside it (never over a file).

    Returns the new path; raises OSError when the rename is refused. The real file of a
    symlinked config is moved, and the dangling link is left for the next save.
    """
    real = Path(os.path.realpath(path))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = real.with_name(f"{real.name}{UNPARSABLE_SUFFIX}{stamp}")
    candidate, n = base, 1
    while os.path.lexists(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    try:
        os.link(real, candidate)  # fails rather than replace anything; then drop the old name
    except FileExistsError:
        raise
    except OSError:  # no hard links on this filesystem: a plain rename (name checked above)
        os.rename(real, candidate)
        return candidate
    os.unlink(real)
    return candidate


def load_config(path: Path | None = None) -> tuple[TuiConfig, str | None]:
    """The saved config (or defaults) and, when the file is unusable, why (one line)."""
    path = path or config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return TuiConfig(), None
    except OSError as exc:
        return TuiConfig(), f"cannot read {path}: {exc.strerror or exc}; using defaults"
    try:
        data = _parse(raw)
    except tomllib.TOMLDecodeError as exc:
        try:
            kept = keep_aside(path)
        except OSError as move_exc:
            return TuiConfig(), (f"config {path} is not valid TOML ({exc}); using defaults "
                                 f"(left in place: cannot rename it: {move_exc.strerror or move_exc})")
        return TuiConfig(), (f"config {path} is not valid TOML ({exc}); kept it as {kept}; "
                             "using defaults")
    config = TuiConfig()
    problems: list[str] = []
    known = {f.name: f for f in fields(TuiConfig)}
    for key, value in data.items():
        if key not in known:
            problems.append(f"unknown key {key!r}")
            continue
        expected = type(getattr(config, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            problems.append(f"{key} must be a {expected.__name__}, got {value!r}")
            continue
        setattr(config, key, value)
    if problems:
        return config, f"config {path}: " + "; ".join(problems) + " (ignored)"
    return config, None


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


_TABLE = re.compile(r"^\s*\[")


def _key_line(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')\s*=")


def render_config(config: TuiConfig, existing: str | None = None) -> str:
    """The file text: ``existing`` with this app's keys set, everything else kept as is."""
    values = {f.name: f"{f.name} = {_toml_value(getattr(config, f.name))}" for f in fields(TuiConfig)}
    if not existing or not existing.strip():
        return "\n".join([HEADER_COMMENT, *values.values()]) + "\n"
    lines = existing.splitlines()
    first_table = next((i for i, line in enumerate(lines) if _TABLE.match(line)), len(lines))
    missing = []
    for name, line_text in values.items():
        pattern = _key_line(name)
        hits = [i for i in range(first_table) if pattern.match(lines[i])]
        if hits:
            lines[hits[0]] = line_text
        else:
            missing.append(line_text)
    if missing:
        last_key = max((i for i in range(first_table) if "=" in lines[i]
                        and not lines[i].lstrip().startswith("#")), default=None)
        at = last_key + 1 if last_key is not None else first_table
        lines[at:at] = missing
    return "\n".join(lines) + "\n"


def save_config(config: TuiConfig, path: Path | None = None) -> None:
    """Write the config atomically, keeping the user's other lines. Raises OSError.

    A file that does not parse (edited while the app ran) is kept aside first, as on load.
    """
    from flashtui.store.atomic import StorageError, atomic_write_text

    path = path or config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: str | None = None
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = None
    if raw is not None:
        try:
            _parse(raw)
            existing = raw.decode("utf-8")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            keep_aside(path)
    text = render_config(config, existing)
    try:
        merged = tomllib.loads(text)
        if any(merged.get(f.name) != getattr(config, f.name) for f in fields(TuiConfig)):
            raise ValueError("merge lost a value")
    except (tomllib.TOMLDecodeError, ValueError):
        # A layout the line editor cannot handle (a multi-line value): keep the old file
        # aside and write a fresh one, rather than write something that does not parse.
        keep_aside(path)
        text = render_config(config)
    try:
        atomic_write_text(path, text)
    except StorageError as exc:
        raise OSError(str(exc)) from None
