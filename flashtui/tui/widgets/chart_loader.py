"""The Charts panel class, or the one line that says why it cannot be built.

textual-plotext is imported only when charts are first shown (it costs first-frame
time). If that import fails (a trimmed install, a broken plotext), the Charts tab says
so and the rest of the app keeps running: an exception there would stop the app's
message loop and freeze every live panel.
"""

from __future__ import annotations

from typing import Any

CHARTS_INSTALL_HINT = "charts need textual-plotext: pip install textual-plotext"


def charts_panel_class() -> tuple[Any | None, str | None]:
    """``(ChartsPanel, None)``, or ``(None, reason)`` when the charts cannot be imported."""
    try:
        from .charts import ChartsPanel
    except ImportError as exc:
        return None, f"{CHARTS_INSTALL_HINT} ({exc})"
    return ChartsPanel, None
