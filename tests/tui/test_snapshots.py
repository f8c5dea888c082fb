"""Snapshots of the main screens at 80x24 and 160x50.

``snap_compare`` (pytest-textual-snapshot) pins the SVG; update deliberately with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the diff. A
structural check of the screen text runs too, so a layout regression reads as words.
Data comes from the scripted client (fixed numbers); behaviour is tested live elsewhere.
"""

from __future__ import annotations

import pytest

from flashtui.testing import NoSampler, screen_text, wait_for
from flashtui.testing.scripted import ScriptedClient
from flashtui.tui.app import FlashTuiApp

from .conftest import TINY_CPU

SIZES = [(80, 24), (160, 50)]


def scripted_app() -> FlashTuiApp:
    return FlashTuiApp(default_spec_overrides=TINY_CPU, worker_factory=ScriptedClient,
                       sampler_factory=NoSampler, journal=False)


async def _ready(pilot):
    await wait_for(pilot, lambda: pilot.app.sweep.ready, 10, "ready")
    await pilot.pause(0.1)


async def _ran(pilot):
    await _ready(pilot)
    await pilot.press("enter")
    await wait_for(pilot, lambda: pilot.app.sweep.session and len(pilot.app.sweep.session.cells) == 6
                   and not pilot.app.sweep.running, 10, "sweep")
    pilot.app.clear_notifications()
    await pilot.pause(0.2)


async def _charts(pilot):
    await _ran(pilot)
    await pilot.press("g")

    def drawn_all():  # the last throttled redraw has happened, with every cell
        panels = list(pilot.app.screen.query("#charts-panel"))
        return panels and not panels[0]._redraw_pending and len(panels[0]._drawn_cells or ()) == 6

    await wait_for(pilot, drawn_all, 10, "charts drawn with every cell")
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", ["setup", "run", "charts"])
def test_snapshot(snap_compare, size, state):
    before = {"setup": _ready, "run": _ran, "charts": _charts}[state]
    assert snap_compare(scripted_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", ["setup", "run", "charts"])
def test_snapshot_no_color(snap_compare, monkeypatch, size, state):
    """NO_COLOR (no-color.org): the same screens in monochrome; markers carry the meaning."""
    monkeypatch.setenv("NO_COLOR", "1")
    before = {"setup": _ready, "run": _ran, "charts": _charts}[state]
    assert snap_compare(scripted_app(), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_screen_structure(size, isolated_dirs):
    app = scripted_app()
    async with app.run_test(size=size) as pilot:
        await _ready(pilot)
        text = screen_text(app)
        for word in ("mode", "seq lengths", "64,128", "backends", "standard", "fa2 — runs on CUDA",
                     "✓ 6 cells", "Run ▶", "worker ready on cpu"):
            assert word in text, word
        await _ran(pilot)
        text = screen_text(app)
        for word in ("timing (median ± IQR)", "parity vs fp64", "median ± IQR", "speedup",
                     "sdpa-flash", "3.33x", "pass", "6/6 cells", "Cancel", "Quit" if size[0] > 100 else "Re-run"):
            assert word in text, word
        if size[0] >= 120:  # side by side: memory and log visible without scrolling
            for word in ("memory", "NVML unavailable", "worker log", "sweep complete"):
                assert word in text, word
