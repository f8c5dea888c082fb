"""Themes as data: ``themes/*.toml`` files turned into Textual ``Theme`` objects.

Shipped themes live in the repository's top-level ``themes/`` folder, which installs as
the package ``flashtui.themes`` (pyproject's ``package-dir``) and is read with
importlib.resources, so a wheel, an editable install and a bare checkout all find them;
users add their own in ``paths.user_themes_dir()`` (``<config dir>/themes/``). A file that
does not parse or names a colour Textual cannot read is skipped with one readable line
(the app shows it as a notification) and the app falls back to a working theme.

File format (all colours are CSS colour strings)::

    name = "flashtui-dark"
    dark = true
    primary = "#4EA8DE"          # required
    secondary = "#..."           # optional: warning, error, success, accent,
                                 # foreground, background, surface, panel, boost
    [variables]                  # optional Textual theme variables
    "footer-key-foreground" = "#..."
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from textual.color import Color, ColorParseError
from textual.theme import Theme

from flashtui import paths
from flashtui.tui.toml_reader import tomllib

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

COLOR_FIELDS = ("primary", "secondary", "warning", "error", "success", "accent",
                "foreground", "background", "surface", "panel", "boost")
FALLBACK_THEME = "flashtui-dark"


def shipped_themes_root() -> Traversable:
    """The shipped theme files: package data ``flashtui.themes`` when flashtui is installed
    (wheel or editable), else the ``themes/`` folder of the checkout it runs from."""
    try:
        if importlib.util.find_spec("flashtui.themes") is not None:
            return importlib.resources.files("flashtui.themes")
    except (ImportError, ValueError):
        pass
    return Path(__file__).resolve().parents[2] / "themes"


def parse_theme(text: str, source: str) -> Theme:
    """One theme from TOML text; ValueError with a one-line reason naming ``source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"theme {source} is not valid TOML: {exc}") from None
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"theme {source} needs a name")
    if "primary" not in data:
        raise ValueError(f"theme {source} needs a primary colour")
    kwargs: dict[str, object] = {"name": name.strip()}
    for key in COLOR_FIELDS:
        if key in data:
            value = data[key]
            try:
                Color.parse(value)
            except (ColorParseError, TypeError, ValueError):
                raise ValueError(f"theme {source}: {key} = {value!r} is not a colour") from None
            kwargs[key] = value
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ValueError(f"theme {source}: dark must be true or false")
    kwargs["dark"] = dark
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ValueError(f"theme {source}: [variables] must map names to strings")
    kwargs["variables"] = dict(variables)
    unknown = set(data) - set(COLOR_FIELDS) - {"name", "dark", "variables", "description"}
    if unknown:
        raise ValueError(f"theme {source}: unknown key(s) {', '.join(sorted(unknown))}")
    return Theme(**kwargs)  # type: ignore[arg-type]


def load_theme_dir(directory: Path | Traversable) -> tuple[list[Theme], list[str]]:
    """All themes in ``directory`` (sorted by file name) and one error line per bad file."""
    themes: list[Theme] = []
    errors: list[str] = []
    if not directory.is_dir():
        return themes, errors
    for path in sorted((f for f in directory.iterdir() if f.name.endswith(".toml")),
                       key=lambda f: f.name):
        try:
            themes.append(parse_theme(path.read_bytes().decode("utf-8", errors="replace"), path.name))
        except OSError as exc:
            errors.append(f"theme {path.name} cannot be read: {exc.strerror or exc}")
        except ValueError as exc:
            errors.append(str(exc))
    return themes, errors


def load_themes(user_dirs: list[Path] | None = None) -> tuple[list[Theme], list[str]]:
    """Shipped themes then user themes (``paths.user_themes_dir()`` unless given; a later
    one with the same name wins)."""
    by_name: dict[str, Theme] = {}
    errors: list[str] = []
    if user_dirs is None:
        user_dirs = [paths.user_themes_dir()]
    for directory in [shipped_themes_root(), *user_dirs]:
        themes, errs = load_theme_dir(directory)
        errors += errs
        for theme in themes:
            by_name[theme.name] = theme
    return list(by_name.values()), errors
