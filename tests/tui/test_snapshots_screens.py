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


# ------------------------------------------------- long lines wrap at 80x24 (issue 16)
EDGES = [-12.0 + 0.5 * i for i in range(29)]


def _dist(bins: dict[float, int], p99: float) -> dict:
    counts = [bins.get(edge, 0) for edge in EDGES[:-1]]
    return {"n": sum(counts), "edges_log10": EDGES, "counts": counts, "below": 0, "above": 0,
            "quantiles": {"p50": p99 / 10, "p90": p99 / 2, "p99": p99, "p99.9": p99 * 2}}


ABS_DIFF_CELL = {"backend": "sdpa-flash", "seq": 4096, "dtype": "bf16", "status": "ok",
                 "parity": {"reference": "fp64", "max_abs": 7.6e-3, "mean_abs": 2.8e-4,
                            "abs_diff": _dist({-4.0: 3000, -3.5: 1000, -3.0: 96}, 9.0e-4),
                            "standard_abs_diff": _dist({-4.0: 2500, -3.5: 1500, -3.0: 96}, 1.0e-3)}}


async def _doctor_end(pilot):
    await _doctor(pilot)
    pilot.app.screen.query_one("#doctor-body").scroll_end(animate=False)
    await pilot.pause(0.2)


async def _abs_diff(pilot):
    from flashtui.tui.screens.abs_diff import AbsDiffScreen

    await wait_for(pilot, lambda: pilot.app.sweep.ready, 10, "ready")
    await pilot.app.push_screen(AbsDiffScreen(ABS_DIFF_CELL))
    await pilot.pause(0.2)


async def _export(pilot):
    await wait_for(pilot, lambda: pilot.app.sweep.ready, 10, "ready")
    await pilot.press("enter")
    await wait_for(pilot, lambda: pilot.app.sweep.session and not pilot.app.sweep.running, 10, "sweep")
    pilot.app.clear_notifications()
    await pilot.press("e")
    await pilot.pause(0.1)
    pilot.app.screen.query_one("#export-path").value = "/nonexistent-flashtui-dir/results/kernel-sweep.html"
    await pilot.press("enter")
    await pilot.pause(0.2)


@pytest.mark.parametrize("state", ["doctor-end", "abs-diff", "export"])
def test_snapshot_long_lines_wrap_at_80x24(snap_compare, pinned, isolated_dirs, state):
    """The Doctor's advice, the |diff| view's prose and the export dialog's prompt and
    error wrap inside the screen; only the tables (matrix, histogram) scroll sideways."""
    before = {"doctor-end": _doctor_end, "abs-diff": _abs_diff, "export": _export}[state]
    assert snap_compare(scripted_app(), terminal_size=(80, 24), run_before=before)


async def test_long_lines_wrap_with_their_words_kept_at_80x24(pinned, isolated_dirs):
    """What the snapshots show, in words: no line runs past the screen, nothing is cut."""
    from flashtui.testing import screen_text

    import re

    def words(selector: str) -> str:
        """The dialog's region of the screen, borders (box-drawing characters) out, lines joined."""
        region = app.screen.query_one(selector).region
        lines = screen_text(app).splitlines()[region.y:region.bottom]
        assert all(len(line) <= 80 for line in lines)
        text = "\n".join(line[region.x:region.right] for line in lines)
        return " ".join(re.sub("[\u2500-\u259f]", " ", text).split())

    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _abs_diff(pilot)
        flat = words("#abs-diff-dialog")
        assert "4,096 output elements vs the fp64 reference; max 7.6e-03, mean 2.8e-04" in flat
        assert "the error is the dtype's rounding, not the kernel" in flat
        await pilot.press("escape")
        await _export(pilot)
        flat = words("#export-dialog")
        assert "Export session to (.html .md .csv .json), Enter to write, Esc to cancel" in flat
        assert "nonexistent-flashtui-dir" in flat
