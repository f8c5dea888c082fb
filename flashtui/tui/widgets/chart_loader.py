"""The Charts panel class, or the one line that says why it cannot be built.

textual-plotext is imported only when charts are first shown (it costs first-frame
time). If that import fails (not installed, or installed beside a plotext it cannot
use, as plotext 6 on the H100 box was), the Charts tab says so and the rest of the app
keeps running: an exception there would stop the app's message loop and freeze every
live panel.
"""

from __future__ import annotations

from typing import Any

CHARTS_INSTALL_HINT = "charts need textual-plotext: pip install textual-plotext"
CHARTS_BROKEN_HINT = ("charts unavailable: textual-plotext failed to import ({error}); "
                      "reinstall it with the plotext it supports: pip install --force-reinstall textual-plotext")


def charts_panel_class() -> tuple[Any | None, str | None]:
    """``(ChartsPanel, None)``, or ``(None, reason)`` when the charts cannot be imported."""
    try:
        from flashtui.tui.widgets.charts import ChartsPanel
    except ImportError as exc:
        missing = (getattr(exc, "name", None) or "").split(".")[0]
        if missing == "textual_plotext":
            return None, CHARTS_INSTALL_HINT
        return None, CHARTS_BROKEN_HINT.format(error=exc)
    return ChartsPanel, None
