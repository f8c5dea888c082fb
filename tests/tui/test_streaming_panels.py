"""What the panels show while cells stream in: cached table lines, coalesced pushes, hidden charts.

The tables reuse rendered lines keyed by content (widgets/line_cache.py) and the charts
skip redraws while hidden; these tests pin that the screen still shows every cell.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Button, DataTable

from flashtui.core.spec import CellKey
from flashtui.testing import NoSampler, wait_for
from flashtui.testing.scripted import ScriptedClient, fake_cell
from flashtui.tui.app import FlashTuiApp
from flashtui.tui.widgets.cell_tables import MemoryTable, ParityTable, TimingTable

BACKENDS = ("standard", "sdpa-math", "sdpa-flash")


def cell_dicts(seqs: tuple[int, ...], speedup: float = 1.5) -> list[dict]:
    return [dict(fake_cell(CellKey(b, s, "fp32")), speedup_vs_standard=speedup)
            for s in seqs for b in BACKENDS]


class TableApp(App):
    CSS = "TimingTable { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield Button("elsewhere", id="elsewhere")
        yield TimingTable(id="table")


def assert_lines_match_datatable(table: TimingTable) -> None:
    """Every visible line from the cache equals what DataTable itself renders now."""
    for y in range(table.size.height):
        assert list(table.render_line(y)) == list(DataTable.render_line(table, y)), f"line {y}"


async def test_cached_table_lines_match_datatable_through_streaming_cursor_focus_and_resize():
    app = TableApp()
    async with app.run_test(size=(100, 14)) as pilot:
        table = app.query_one(TimingTable)
        cells = cell_dicts(tuple(range(64, 64 * 9, 64)))  # 24 rows, more than fit
        for n in (1, 4, 10, 24):  # rows arrive, later ones below the visible area
            table.cells = tuple(cells[:n])
            await pilot.pause()
            assert_lines_match_datatable(table)
        assert table.__dict__.get("_line_strips"), "the line cache is in use"
        cells[1] = dict(cells[1], speedup_vs_standard=2.5, status="failed", reason="refused")
        table.cells = tuple(cells)  # an existing visible row changes (and the last column widens)
        await pilot.pause()
        assert "2.50x" in table.row_text("sdpa-math|64|fp32")
        assert_lines_match_datatable(table)
        table.focus()
        await pilot.press("down", "down", "down")
        assert table.cursor_row == 3
        assert_lines_match_datatable(table)
        await pilot.press("pagedown")  # scrolls: other rows under the same screen lines
        await pilot.pause()
        assert table.scroll_offset.y > 0
        assert_lines_match_datatable(table)
        app.query_one("#elsewhere").focus()  # blurred: cursor drawn in the unfocused style
        await pilot.pause()
        assert_lines_match_datatable(table)
        await pilot.resize_terminal(80, 12)
        await pilot.pause()
        assert_lines_match_datatable(table)


async def test_streamed_sweep_with_keys_shows_every_cell_in_every_table_and_chart(isolated_dirs):
    """Cells stream in (coalesced pushes) while the user moves the cursor and flips to the
    charts and back; at the end every table has every cell and the charts drew all seqs."""
    seqs = (128, 256, 384, 512)
    app = FlashTuiApp(default_spec_overrides=dict(device="cpu", backends=BACKENDS, seqs=seqs, dtypes=("fp32",),
                                                  reps=3, warmup_ms=5.0),
                      worker_factory=lambda: ScriptedClient(cell_delay_s=0.05),
                      sampler_factory=NoSampler, journal=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.sweep.session and len(app.sweep.session.cells) >= 2, 10, "first cells")
        await pilot.press("g")  # charts shown with a few cells, then hidden while the rest stream
        await pilot.pause(0.1)
        await pilot.press("g")
        app.screen.query_one("#timing-table").focus()
        await pilot.press("down", "down")
        await wait_for(pilot, lambda: not app.sweep.running, 10, "sweep end")
        await pilot.pause(0.7)  # past the coalescing and chart redraw intervals

        want = {f"{b}|{s}|fp32" for b in BACKENDS for s in seqs}
        for cls, selector in ((TimingTable, "#timing-table"), (ParityTable, "#parity-table"),
                              (MemoryTable, "#memory-table")):
            table = app.screen.query_one(selector, cls)
            assert {key.value for key in table.rows} == want, selector
        timing = app.screen.query_one("#timing-table", TimingTable)
        assert timing.row_text("sdpa-flash|512|fp32")[5] == "3.33x"

        await pilot.press("g")  # shown again: the charts catch up with every cell
        await pilot.pause(0.3)
        plot = app.screen.query_one("#chart-time")
        assert all(str(s) in plot.render().plain for s in seqs)
