"""The Run screen fits the terminal: at 80x24 the timing table keeps backend, seq,
median, speedup and a status marker, the footer keeps Run/Cancel/Charts/Quit and the
palette key, and no header word is cut; wider again, every column comes back."""

from __future__ import annotations

from flashtui.tui.present import TIMING_COLUMNS, TIMING_COLUMNS_NARROW
from flashtui.tui.widgets.cell_tables import TimingTable
from flashtui.tui.widgets.footer import fit_keys

from flashtui.testing import screen_text
from .test_snapshots import _ran, scripted_app


def footer_line(app) -> str:
    return screen_text(app).splitlines()[-1]


def test_fit_keys_keeps_essentials_first_then_fills_in_order():
    keys = [("run", 7), ("rerun", 10), ("export", 10), ("charts", 10), ("quit", 8)]
    assert fit_keys(keys, ("run", "charts", "quit"), 100) == {"run", "rerun", "export", "charts", "quit"}
    assert fit_keys(keys, ("run", "charts", "quit"), 36) == {"run", "charts", "quit", "rerun"}
    assert fit_keys(keys, ("run", "charts", "quit"), 20) == {"run", "charts", "quit"}  # never dropped


async def test_run_screen_at_80x24_then_wider(isolated_dirs):
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _ran(pilot)
        table = app.screen.query_one("#timing-table", TimingTable)
        assert tuple(str(c.label) for c in table.columns.values()) == TIMING_COLUMNS_NARROW
        assert table.row_text("sdpa-flash|128|fp32") == ("sdpa-flash", "128", "38.4 ± 1.92 us", "3.33x", "✓")
        text = screen_text(app)
        header = next(line for line in text.splitlines() if "backend" in line and "speedup" in line)
        for word in ("backend", "seq", "median ± IQR", "speedup", "status"):
            assert word in header, word  # whole, not cut
        footer = footer_line(app)
        for key in ("r Run", "c Cancel", "g Charts", "q Quit", "^p palette"):
            assert key in footer, (key, footer)
        assert "▏" not in footer.split("^p")[0][:-2].rstrip()[-1:]  # the last key is whole

        await pilot.resize_terminal(160, 50)
        await pilot.pause(0.3)
        assert tuple(str(c.label) for c in table.columns.values()) == TIMING_COLUMNS
        assert table.row_text("sdpa-flash|128|fp32")[5] == "3.33x"
        footer = footer_line(app)
        for key in ("h |diff|", "p Profile", "s Shot", "esc Setup"):
            assert key in footer, (key, footer)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert "c Cancel" in footer_line(app) and "p Profile" not in footer_line(app)
