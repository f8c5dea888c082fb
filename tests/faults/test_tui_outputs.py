"""The TUI's own outputs: export dialog paths, screenshots, and a session moved by a full disk.

The real app through Pilot, the real worker on the CPU, real files: the export dialog
names a FIFO (or device, or directory) and stays open, a symlink is written through,
a screenshot into a read-only place or a file-as-directory is one notification, and
when the data directory refuses the journal mid-sweep the user is told where the
session went, once.
"""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.store import index as store

TINY_CPU = dict(device="cpu", backends=("standard", "sdpa-math"), seqs=(64, 128), dtypes=("fp32",),
                reps=3, warmup_ms=5.0, heads=2, head_dim=32)


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


class NoSampler:
    def __init__(self, **kwargs):
        self.status = type("S", (), {"available": False, "reason": "no GPU in this test",
                                     "to_dict": lambda self: {}})()

    def start(self):
        return self.status

    def stop(self, *a, **k):
        pass

    def watch_pid(self, pid):
        pass

    def on_sample(self, cb):
        return lambda: None

    def samples(self, *a):
        return []

    def stats(self):
        return {}

    def window(self, *a, **k):
        return {}

    def latest(self):
        return None

    rate_hz = 10.0


async def _wait(pilot, predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _stored_session() -> Session:
    session = Session(spec={"mode": "kernel", "device": "cpu", "seqs": [64]},
                      provenance={"device_kind": "cpu", "device_name": "test CPU"})
    journal = store.open_journal(session)
    cell = Cell("standard", 64, "fp32", median_ms=2.0)
    session.add_cell(cell)
    journal.append_cell(cell)
    session.finish("complete")
    journal.finish(session)
    return session


async def test_export_dialog_refuses_a_fifo_then_writes_through_a_symlink(dirs):
    from flashtui.tui.app import FlashTuiApp
    from flashtui.tui.screens.sessions import SessionsScreen, SessionViewScreen

    session = _stored_session()
    fifo = dirs / "pipe.json"
    os.mkfifo(fifo)
    target = dirs / "exports" / "run-1.json"
    target.parent.mkdir()
    link = dirs / "latest.json"
    link.symlink_to(target)
    app = FlashTuiApp(worker_factory=None, sampler_factory=NoSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.1)
        await pilot.press("o")
        await _wait(pilot, lambda: isinstance(app.screen, SessionsScreen) and app.screen.loaded, 10, "sessions")
        await pilot.press("home", "enter")
        await _wait(pilot, lambda: isinstance(app.screen, SessionViewScreen), 10, "the session")
        await pilot.press("e")
        await pilot.pause(0.05)
        app.screen.query_one("#export-path").value = str(fifo)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.screen.id == "export"  # the dialog stays open for another path
        error = str(app.screen.query_one("#export-error").render())
        assert "is a FIFO" in error and str(fifo) in error
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        app.screen.query_one("#export-path").value = str(link)
        await pilot.press("enter")
        await _wait(pilot, lambda: target.exists(), 5, "the export")
    assert os.path.islink(link) and json.loads(target.read_text())["id"] == session.id


@pytest.mark.parametrize("where, needle", [("file", "is not a directory"), ("ro", "read-only file system")])
async def test_screenshot_into_a_place_that_cannot_take_it_is_one_notification(where, needle, dirs, mount_tmpfs):
    from flashtui.tui.app import FlashTuiApp

    if where == "file":
        folder = dirs / "plain-file"
        folder.write_text("keep me\n")
    else:
        folder = mount_tmpfs("ro-shots", read_only=True)
    app = FlashTuiApp(worker_factory=None, sampler_factory=NoSampler, screenshot_dir=str(folder))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        app.action_screenshot()  # what "s" (and the palette's Screenshot) runs
        await pilot.pause(0.1)
        notes = [n.message for n in app._notifications if n.severity == "error"]
        assert len(notes) == 1 and "cannot save the screenshot" in notes[0] and needle in notes[0], notes
        assert "\n" not in notes[0]
    if where == "file":
        assert folder.read_text() == "keep me\n"


async def test_screenshot_is_written_whole_with_no_temp_left(dirs):
    from flashtui.tui.app import FlashTuiApp

    shots = dirs / "shots"
    shots.mkdir()
    app = FlashTuiApp(worker_factory=None, sampler_factory=NoSampler, screenshot_dir=str(shots))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        app.action_screenshot()  # what "s" (and the palette's Screenshot) runs
        await pilot.pause(0.1)
    (svg,) = list(shots.iterdir())
    assert svg.suffix == ".svg" and svg.read_text().rstrip().endswith("</svg>")


async def test_tui_sweep_whose_store_fills_up_says_where_the_session_went(dirs, monkeypatch):
    from flashtui.tui.app import FlashTuiApp

    fallback = dirs / "fallback"
    monkeypatch.setenv("FLASHTUI_FALLBACK_DIRS", str(fallback))
    monkeypatch.setenv("FLASHTUI_INJECT_STORE_FAULT", "enospc@2")  # the file, then refused
    app = FlashTuiApp(default_spec_overrides=TINY_CPU, sampler_factory=NoSampler)
    async with app.run_test(size=(120, 40)) as pilot:
        await _wait(pilot, lambda: app.sweep.ready, 120, "WorkerReady")
        await pilot.press("enter")
        await _wait(pilot, lambda: app.sweep.session is not None and len(app.sweep.session.cells) == 4
                    and not app.sweep.running, 180, "the sweep")
        await pilot.pause(0.2)
        notes = [n.message for n in app._notifications if n.severity == "warning" and "could not be saved" in n.message]
        assert len(notes) == 1, [n.message for n in app._notifications]
        assert "No space left on device" in notes[0] and str(fallback) in notes[0]
    (moved,) = fallback.glob("*.jsonl")
    loaded, _ = store.load_path(moved)
    assert loaded.status == "complete" and len(loaded.cells) == 4
