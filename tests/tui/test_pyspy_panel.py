"""py-spy panel with REAL py-spy against the REAL CPU worker during a sweep.

Frames of flashtui's worker appear while the py-spy tab is open; a recording stops
after the next cells, leaves a valid speedscope file next to the session and an
attachment in the journal; with py-spy missing the panel shows the one-line hint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flashtui.monitor import pyspy
from flashtui.store.index import load
from flashtui.testing import NoSampler, wait_for
from flashtui.tui import messages as m
from flashtui.tui.app import FlashTuiApp
from flashtui.tui.widgets.pyspy_panel import PySpyPanel

from .conftest import TINY_CPU

needs_pyspy = pytest.mark.skipif(pyspy.find_pyspy() is None, reason="py-spy is not installed")
# Long enough that py-spy sees the worker busy; cancelled once the recording is saved.
SLOW = dict(seqs=(256, 512, 1024, 2048), reps=40)


def panel(app) -> PySpyPanel:
    return app.run_screen.query_one("#pyspy-panel", PySpyPanel)


@needs_pyspy
async def test_hottest_frames_of_the_worker_and_a_recording(isolated_dirs, monkeypatch):
    # The panel must never pause the worker it watches: every dump is non-blocking.
    real_hottest, calls = pyspy.hottest_frames, []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_hottest(*args, **kwargs)

    monkeypatch.setattr(pyspy, "hottest_frames", spy)
    seen = []
    app = FlashTuiApp(default_spec_overrides={**TINY_CPU, **SLOW}, sampler_factory=NoSampler)
    async with app.run_test(size=(160, 50), message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 60, "WorkerReady")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.sweep.running and app.run_screen is not None, 10, "sweep")
        await pilot.press("y")
        # The first refreshes may catch the worker importing torch; wait for its own code.
        frames = await wait_for(pilot, lambda: [x for x in seen if isinstance(x, m.PySpyFrames) and any(
            "/flashtui/" in f.filename for f in x.hot.frames)], 60, "py-spy frames of flashtui's code")
        hot = frames[-1].hot
        assert hot.pid == app.bridge.worker_pid and hot.n_dumps >= 1
        assert calls and all(call.get("nonblocking") is True for call in calls)
        await pilot.pause(0.05)
        rows = panel(app).frame_rows()
        assert rows and all(r[2].endswith("%") and r[3].endswith("%") for r in rows)
        assert any(":" in r[1] for r in rows)  # file:line

        # Record: p starts py-spy record, it stops by itself after the next cells.
        cells_before_record = list(app.sweep.session.cells)
        await pilot.press("p")
        await wait_for(pilot, lambda: any(isinstance(x, (m.RecordingStopped, m.RecordingFailed)) for x in seen),
                       90, "recording stopped")
        failed = [x for x in seen if isinstance(x, m.RecordingFailed)]
        assert not failed, failed[0].reason
        profile = app.sweep.session.attachments["profile"]
        assert Path(profile["path"]).is_file() and profile["path"].endswith(".speedscope.json")
        assert Path(profile["path"]).parent == Path(app.sweep.recorder.journal.path).parent
        # One flat shape, as `bench --profile` writes it, plus the recording's details.
        assert profile["format"] == "speedscope" and profile["n_samples"] > 0 and profile["cells"]
        assert profile["pid"] == app.bridge.worker_pid and profile["stopped"] and profile["started_at"]
        # The cells timed while py-spy record was attached say so (its pauses are in them).
        recorded = {f"{c.backend} seq={c.seq} {c.dtype}" for c in app.sweep.session.cells
                    if c.extra.get("timed_under_pyspy_record")}
        assert set(profile["cells"]) <= recorded
        assert all(c.extra.get("timed_under_pyspy_record") is None for c in cells_before_record)
        log_text = "\n".join(str(line) for line in app.run_screen.query_one("#worker-log").lines)
        assert "timed under py-spy record" in log_text
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.sweep.running and app.sweep.recorder.closed, 90, "sweep end")
        stored, _ = load(app.sweep.session.id)
        assert stored.attachments["profile"]["path"] == profile["path"]
        assert json.loads(Path(profile["path"]).read_text())["$schema"] == pyspy.SPEEDSCOPE_SCHEMA


async def test_missing_pyspy_shows_the_hint_not_a_crash(isolated_dirs, monkeypatch):
    monkeypatch.setattr(pyspy, "find_pyspy", lambda: None)
    app = FlashTuiApp(default_spec_overrides=TINY_CPU, sampler_factory=NoSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 60, "WorkerReady")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_screen is not None, 10, "run screen")
        await pilot.press("y")
        await pilot.pause(0.1)
        status = str(panel(app).query_one("#pyspy-status").render())
        assert status == pyspy.INSTALL_HINT
        await pilot.press("p")
        await pilot.pause(0.05)
        assert any(pyspy.INSTALL_HINT in n.message or "start a sweep" in n.message for n in app._notifications)
        await wait_for(pilot, lambda: not app.sweep.running, 60, "sweep end")
        assert app.pyspy.recording is None and panel(app).frame_rows() == []
