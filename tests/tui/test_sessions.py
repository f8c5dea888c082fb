"""Sessions screen: journaled sessions listed, one opened, two compared, one exported."""

from __future__ import annotations

import json

from flashtui.testing import NoSampler, screen_text, wait_for
from flashtui.testing.scripted import ScriptedClient
from flashtui.testing.stored import A_ID, B_ID, CORRUPT_ID, write_store
from flashtui.tui.app import FlashTuiApp
from flashtui.tui.screens.sessions import DiffScreen, SessionsScreen, SessionViewScreen
from flashtui.tui.widgets.cell_tables import TimingTable

from .conftest import TINY_CPU


def scripted_app() -> FlashTuiApp:
    return FlashTuiApp(default_spec_overrides=TINY_CPU, worker_factory=ScriptedClient,
                       sampler_factory=NoSampler, journal=False)


async def open_sessions(pilot):
    await pilot.pause(0.1)
    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen) and pilot.app.screen.loaded,
                   10, "sessions listed")
    return pilot.app.screen


async def test_list_open_compare_flags_the_planted_regression_and_export(isolated_dirs):
    write_store()
    app = scripted_app()
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_sessions(pilot)
        assert [s.id for s in screen.summaries] == [B_ID, A_ID, CORRUPT_ID]
        text = screen_text(app)
        assert "2025-01-02 12:00" in text and "6/6" in text and "3.33x" in text and "complete" in text
        assert "unreadable:" in text  # the corrupt file is a row, not a crash
        await pilot.press("down", "down")
        assert "not a flashtui session journal" in screen_text(app)
        await pilot.press("enter")  # opening it: a notification, still on the list
        await pilot.pause(0.05)
        assert isinstance(app.screen, SessionsScreen)
        assert any("unreadable" in n.message for n in app._notifications)

        # Compare: select both readable sessions (space), c.
        await pilot.press("up", "space", "up", "space")
        assert sorted(screen.selected) == sorted([A_ID, B_ID])
        await pilot.press("c")
        await pilot.pause(0.1)
        assert isinstance(app.screen, DiffScreen)
        text = screen_text(app)
        assert f"against baseline A {A_ID}" in text  # the older one is the baseline
        assert "▲ 1 regression: sdpa-flash seq=128 fp32" in text
        row = next(line for line in text.splitlines() if "REGRESSION" in line)
        assert row.split()[:3] == ["sdpa-flash", "128", "fp32"] and "1.50x" in row
        assert app.screen.query_one("#diff-summary").has_class("-regression")
        await pilot.press("escape")

        # Open B: its cells in the Run screen's tables, read-only.
        await pilot.press("home", "enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, SessionViewScreen) and app.screen.session.id == B_ID
        table = app.screen.query_one("#view-timing", TimingTable)
        assert table.row_count == 6 and table.row_text("sdpa-flash|128|fp32")[3].startswith("57.6")
        await pilot.press("g")
        await pilot.pause(0.6)
        assert "speedup vs standard" in screen_text(app)

        # Export it through the export dialog.
        out = isolated_dirs / "b.json"
        await pilot.press("e")
        await pilot.pause(0.05)
        app.screen.query_one("#export-path").value = str(out)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert json.loads(out.read_text())["id"] == B_ID


async def test_compare_needs_two_and_an_empty_store_says_so(isolated_dirs):
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_sessions(pilot)
        assert "no sessions yet" in screen_text(app)
        await pilot.press("c", "enter", "e")
        await pilot.pause(0.05)
        notes = [n.message for n in app._notifications]
        assert any("select two sessions" in n for n in notes)
        assert isinstance(app.screen, SessionsScreen)
