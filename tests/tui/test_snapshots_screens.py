"""Snapshots of the Doctor, Sessions, Diff and py-spy screens at 80x24 and 160x50.

Deterministic inputs: the scripted client answers the probe with a recorded CPU
result, NVML and py-spy's location are pinned, sessions have fixed ids and dates, and
the py-spy panel is fed a fixed HotFrames. Update deliberately with --snapshot-update.
"""

from __future__ import annotations

import pytest

from flashtui.monitor import pyspy
from flashtui.testing import NoSampler, wait_for
from flashtui.testing.scripted import ScriptedClient
from flashtui.testing.stored import write_store
from flashtui.tui.app import FlashTuiApp
from flashtui.tui.screens.sessions import SessionsScreen

from .conftest import TINY_CPU

SIZES = [(80, 24), (160, 50)]
NVML = {"available": False, "reason": "NVML library not found (no NVIDIA driver on this machine)"}


def fixed_frames() -> pyspy.HotFrames:
    def frame(name, short, line, self_count, total_count):
        return pyspy.FrameCount(name, f"/src/flashtui/engine/{short}", short, line, self_count, total_count)

    return pyspy.HotFrames(pid=4242, n_dumps=10, n_stacks=10, frames=[
        frame("_time_once", "timing.py", 88, 6, 9), frame("attention", "standard.py", 41, 3, 5),
        frame("run_cell", "kernel.py", 132, 1, 10),
    ])


@pytest.fixture
def pinned(monkeypatch):
    monkeypatch.setattr(pyspy, "find_pyspy", lambda: "/usr/local/bin/py-spy")


def scripted_app() -> FlashTuiApp:
    app = FlashTuiApp(default_spec_overrides=TINY_CPU, worker_factory=ScriptedClient,
                      sampler_factory=NoSampler, journal=False)
    app.doctor.nvml = dict(NVML)
    return app


async def _doctor(pilot):
    await wait_for(pilot, lambda: pilot.app.sweep.ready, 10, "ready")
    await pilot.press("d")
    await wait_for(pilot, lambda: pilot.app.doctor.report, 10, "probe")
    await pilot.pause(0.2)


async def _sessions(pilot):
    await pilot.pause(0.1)
    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen) and pilot.app.screen.loaded,
                   10, "sessions")
    await pilot.pause(0.1)


async def _diff(pilot):
    await _sessions(pilot)
    await pilot.press("space", "down", "space", "c")
    await pilot.pause(0.2)


async def _pyspy(pilot):
    await wait_for(pilot, lambda: pilot.app.sweep.ready, 10, "ready")
    await pilot.press("enter")
    await wait_for(pilot, lambda: pilot.app.sweep.session and len(pilot.app.sweep.session.cells) == 6
                   and not pilot.app.sweep.running, 10, "sweep")
    await pilot.press("y")
    pilot.app.run_screen.pyspy_panel().show_frames(fixed_frames())
    status = pilot.app.run_screen.pyspy_panel().query_one("#pyspy-status")
    status.update("worker pid 4242 · 10 dumps · 10 busy stacks · 12:00:00")
    pilot.app.clear_notifications()
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", ["doctor", "sessions", "diff", "pyspy"])
def test_snapshot(snap_compare, pinned, isolated_dirs, size, state):
    if state in ("sessions", "diff"):
        write_store(corrupt=False)  # a corrupt file's row names the tmp path: not stable
    before = {"doctor": _doctor, "sessions": _sessions, "diff": _diff, "pyspy": _pyspy}[state]
    assert snap_compare(scripted_app(), terminal_size=size, run_before=before)
