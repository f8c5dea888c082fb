"""User settings of the TUI, remembered in ``<user config dir>/flashtui/config.toml``.

The directory is ``platformdirs.user_config_dir("flashtui")`` (``~/.config/flashtui``
on Linux, following XDG_CONFIG_HOME) or ``$FLASHTUI_CONFIG_DIR`` when set (tests).
A missing file means defaults; a corrupt one means defaults plus one readable line the
app shows as a notification -- never a traceback, and never overwritten silently
until the user changes a setting.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

CONFIG_DIR_ENV = "FLASHTUI_CONFIG_DIR"
CONFIG_FILE = "config.toml"
DEFAULT_THEME = "flashtui-dark"


@dataclass
class TuiConfig:
    """What the TUI remembers between runs."""

    theme: str = DEFAULT_THEME
    """Name of the Textual theme last chosen (a shipped, user or built-in theme)."""
    nvml_rate_hz: float = 10.0
    """How often the NVML sampler reads the GPU while the app runs."""


def config_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("flashtui", appauthor=False))


def config_path() -> Path:
    return config_dir() / CONFIG_FILE


def load_config(path: Path | None = None) -> tuple[TuiConfig, str | None]:
    """The saved config (or defaults) and, when the file is unusable, why (one line)."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return TuiConfig(), None
    except OSError as exc:
        return TuiConfig(), f"cannot read {path}: {exc.strerror or exc}; using defaults"
    try:
        data = tomllib.loads(raw.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        return TuiConfig(), f"config {path} is not valid TOML ({exc}); using defaults"
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


def save_config(config: TuiConfig, path: Path | None = None) -> None:
    """Write the config atomically (temp file + rename). Raises OSError on failure."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# flashtui TUI settings (written by the app; safe to edit)"]
    lines += [f"{f.name} = {_toml_value(getattr(config, f.name))}" for f in fields(TuiConfig)]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
