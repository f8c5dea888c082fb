"""The charts import: the panel class, or one line saying what to install."""

from __future__ import annotations

import sys

import pytest

from flashtui.tui.widgets.chart_loader import CHARTS_INSTALL_HINT, charts_panel_class


@pytest.fixture
def fresh_charts_import(monkeypatch):
    """Make the next ``from .charts import ChartsPanel`` import for real."""
    for name in ("flashtui.tui.widgets.charts", "textual_plotext", "textual_plotext.plotext_plot"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return monkeypatch


def test_installed_charts_give_the_panel_class(fresh_charts_import):
    panel_class, reason = charts_panel_class()
    assert reason is None and panel_class.__name__ == "ChartsPanel"


def test_missing_textual_plotext_says_install_it(fresh_charts_import):
    fresh_charts_import.setitem(sys.modules, "textual_plotext", None)
    assert charts_panel_class() == (None, CHARTS_INSTALL_HINT)


def test_textual_plotext_with_an_unusable_plotext_says_reinstall(fresh_charts_import):
    # What the H100 box had: textual-plotext 1.0.1 beside plotext 6.1 (no plotext._dict).
    fresh_charts_import.setitem(sys.modules, "plotext", None)
    fresh_charts_import.delitem(sys.modules, "plotext._dict", raising=False)
    panel_class, reason = charts_panel_class()
    assert panel_class is None
    assert reason.startswith("charts unavailable: textual-plotext failed to import (")
    assert "plotext" in reason and reason.endswith("pip install --force-reinstall textual-plotext")
    assert "\n" not in reason
