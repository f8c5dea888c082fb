"""One colour and one marker per backend, for every chart flashtui draws (TUI, HTML).

Hex RGB, so no terminal or theme can remap them (a named ANSI colour is redrawn through
the terminal's own palette: "blue" and "magenta" both came out purple in Textual); the
Okabe-Ito hues first (told apart by most colour-blind eyes), each readable on dark and
light backgrounds. Markers differ for every backend, so series stay apart under NO_COLOR
and in print.
"""

from __future__ import annotations

from typing import NamedTuple


class BackendStyle(NamedTuple):
    color_hex: str  # "#RRGGBB"
    marker: str     # one character, distinct per backend


BACKEND_STYLES: dict[str, BackendStyle] = {
    "standard": BackendStyle("#D55E00", "●"),        # vermillion
    "sdpa": BackendStyle("#0072B2", "■"),            # blue
    "sdpa-math": BackendStyle("#999999", "▲"),       # grey
    "sdpa-flash": BackendStyle("#E69F00", "◆"),      # orange
    "sdpa-efficient": BackendStyle("#56B4E9", "✚"),  # sky blue
    "sdpa-cudnn": BackendStyle("#009E73", "✖"),      # bluish green
    "flex": BackendStyle("#CC79A7", "★"),            # reddish purple
    "fa2": BackendStyle("#A6761D", "○"),             # ochre
    "fa3": BackendStyle("#882255", "□"),             # wine
    "fa4": BackendStyle("#7B3FA0", "△"),             # purple
}
FALLBACK_STYLE = BackendStyle("#666666", "·")


def backend_style(series_name: str) -> BackendStyle:
    """The style of a backend, or of a series named 'backend dtype' (several dtypes)."""
    return BACKEND_STYLES.get(series_name.split(" ")[0], FALLBACK_STYLE)


def hex_to_rgb(color_hex: str) -> tuple[int, int, int]:
    value = color_hex.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


__all__ = ["BackendStyle", "BACKEND_STYLES", "FALLBACK_STYLE", "backend_style", "hex_to_rgb"]
