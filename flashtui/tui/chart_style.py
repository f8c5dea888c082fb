"""One colour and one marker per backend, the same in every chart and legend.

Pure data (no plotext import): the Charts tab, the stored-session viewer and the tests
all read :func:`backend_style`. Markers differ for every backend, so the series stay
apart under NO_COLOR (where Textual draws every colour as grey) and in a monochrome
screenshot. A series named 'backend dtype' (several dtypes) keeps its backend's style.
"""

from __future__ import annotations

from typing import NamedTuple

from flashtui.core.spec import BACKENDS


class Style(NamedTuple):
    color: str   # a plotext colour name
    marker: str  # one character, distinct per backend


# In BACKENDS order; colours chosen to read on dark and light themes.
_PALETTE = (("red", "●"), ("blue", "■"), ("green", "▲"), ("orange", "◆"), ("magenta", "✚"),
            ("cyan", "✖"), ("yellow", "★"), ("white", "○"), ("gray", "□"), ("violet", "△"))
STYLES: dict[str, Style] = {name: Style(*_PALETTE[i % len(_PALETTE)]) for i, name in enumerate(BACKENDS)}
_FALLBACK = Style("white", "·")


def backend_style(series_name: str) -> Style:
    """The style of a backend, or of a series 'backend dtype'."""
    return STYLES.get(series_name.split(" ")[0], _FALLBACK)
