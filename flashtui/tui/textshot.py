"""The app's current screen as plain text: what a reader sees, without colours.

For scripts and tests that check a screen's words (the SVG screenshot has the same
text, spread over positioned <text> elements).
"""

from __future__ import annotations

import io
from typing import Any


def screen_text(app: Any) -> str:
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)
