"""The charts' style per backend, in plotext's terms (RGB tuples), from core.palette.

Pure data (no plotext import): the Charts tab, the stored-session viewer and the tests
all read :func:`backend_style`; the HTML export reads the same palette, so a backend has
one colour and one marker in every chart and legend. A series named 'backend dtype'
(several dtypes) keeps its backend's style.
"""

from __future__ import annotations

from typing import NamedTuple

from flashtui.core import palette
from flashtui.core.spec import BACKENDS


class Style(NamedTuple):
    color: tuple[int, int, int]  # plotext takes RGB tuples: drawn as truecolor, never remapped
    marker: str                  # one character, distinct per backend


def _style(source: palette.BackendStyle) -> Style:
    return Style(palette.hex_to_rgb(source.color_hex), source.marker)


STYLES: dict[str, Style] = {name: _style(palette.backend_style(name)) for name in BACKENDS}
_FALLBACK = _style(palette.FALLBACK_STYLE)


def backend_style(series_name: str) -> Style:
    """The style of a backend, or of a series 'backend dtype'."""
    return STYLES.get(series_name.split(" ")[0], _FALLBACK)
