"""The private Textual internals flashtui leans on, checked by name.

pyproject pins textual to the range tested (``>=8.0,<9``). Three modules reach past its
public API; when a Textual release moves one of these, this file fails and names it
(the modules themselves would only degrade quietly: the line cache would turn itself
off, the tick would lose its mark, screen_text would raise):

* ``tui/widgets/line_cache.py``: ``DataTable._labelled_row_exists``,
  ``DataTable._show_hover_cursor``, ``DataTable.render_line``/``render_lines``;
  ``tui/widgets/cell_tables.py``: ``DataTable._clear_caches``;
* ``tui/widgets/tick.py``: ``ToggleButton._button`` (a property) and ``BUTTON_INNER``;
* ``tui/textshot.py``: ``Screen._compositor.render_update(full=, screen_stack=)`` and
  ``App._background_screens``.
"""

from __future__ import annotations

import inspect

import textual
from textual.app import App, ComposeResult
from textual.widgets import Checkbox, DataTable

from flashtui.tui.textshot import screen_text
from flashtui.tui.widgets.line_cache import LineCachedTable
from flashtui.tui.widgets.tick import Tick

VERSION = f"textual {textual.__version__}"


class RowTable(LineCachedTable):
    def row_content(self, row_key: str):
        return tuple(str(v) for v in self.get_row(row_key))


class Probe(App[None]):
    def compose(self) -> ComposeResult:
        yield RowTable(id="table", cursor_type="row")
        yield Tick("ticked", value=True, id="on")
        yield Tick("unticked", value=False, id="off")


def _moved(internal: str, user: str) -> str:
    return f"{VERSION}: {internal} moved or changed; {user} relies on it (see this file's docstring)"


def test_datatable_internals_the_line_cache_reads():
    table = DataTable()
    for name in ("_labelled_row_exists", "_show_hover_cursor"):
        assert hasattr(table, name), _moved(f"DataTable.{name}", "tui/widgets/line_cache.py")
    assert isinstance(table._labelled_row_exists, bool), _moved("DataTable._labelled_row_exists (a bool)",
                                                                 "tui/widgets/line_cache.py")
    assert callable(getattr(table, "_clear_caches", None)), _moved("DataTable._clear_caches()",
                                                                   "tui/widgets/cell_tables.py")
    for name in ("render_line", "render_lines"):
        assert name in vars(DataTable) or hasattr(DataTable, name), _moved(f"DataTable.{name}", "line_cache.py")


def test_toggle_button_internals_the_tick_overrides():
    button = inspect.getattr_static(Checkbox, "_button", None)
    assert isinstance(button, property), _moved("ToggleButton._button (a property)", "tui/widgets/tick.py")
    assert isinstance(getattr(Checkbox, "BUTTON_INNER", None), str), _moved("ToggleButton.BUTTON_INNER",
                                                                          "tui/widgets/tick.py")


async def test_the_internals_still_do_what_flashtui_uses_them_for():
    app = Probe()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(RowTable)
        table.add_columns("backend", "seq")
        table.add_row("standard", "64", key="a")
        table.add_row("sdpa-flash", "64", key="b")
        await pilot.pause()
        # line_cache: the cache is on for a plain row table and fills as it paints.
        assert table._cacheable(), _moved("DataTable._labelled_row_exists / header_height / fixed_*",
                                          "line_cache.py (the cache turned itself off)")
        first = table.render_line(1)  # the "standard" row, through DataTable.render_line
        assert table.render_line(1) is first, _moved("DataTable.render_line", "line_cache.py (no cache hit)")
        # ... and an updated cell is painted anew, not served stale from it.
        table.update_cell("b", table.ordered_columns[1].key, "128")
        await pilot.pause()
        assert "128" in table.render_line(2).text and "standard" in table.render_line(1).text
        text = screen_text(app)  # textshot: Screen._compositor.render_update, App._background_screens
        assert "standard" in text and "128" in text, _moved("Screen._compositor.render_update", "textshot.py")
        # tick: an X only when checked.
        on, off = app.query_one("#on", Tick), app.query_one("#off", Tick)
        assert "X" in on._button.plain and "X" not in off._button.plain, _moved("ToggleButton._button",
                                                                               "tick.py")
        assert Checkbox.BUTTON_INNER == "X"  # the class attribute is restored after each draw
