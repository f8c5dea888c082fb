"""Under ``flashtui serve`` a screenshot and an export also reach the browser as downloads.

Pilot has no web driver, so ``App.is_web`` is patched on and ``deliver_binary`` records
what it was handed (the real one would stream it to textual-serve). The local file is
still written, and in a terminal nothing is delivered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flashtui.testing import NoSampler, wait_for
from flashtui.testing.scripted import ScriptedClient
from flashtui.tui.app import FlashTuiApp

from .conftest import TINY_CPU


def scripted_app(tmp_path: Path) -> FlashTuiApp:
    return FlashTuiApp(default_spec_overrides=TINY_CPU, worker_factory=ScriptedClient, sampler_factory=NoSampler,
                       journal=False, screenshot_dir=tmp_path / "shots")


def record_deliveries(app: FlashTuiApp) -> list[tuple[Path, dict, bytes]]:
    sent: list[tuple[Path, dict, bytes]] = []

    def deliver_binary(path_or_file, **kwargs):
        sent.append((Path(path_or_file), kwargs, Path(path_or_file).read_bytes()))
        return "key"

    app.deliver_binary = deliver_binary
    return sent


@pytest.mark.parametrize("web", [True, False], ids=["browser", "terminal"])
async def test_screenshot_and_export_are_delivered_to_the_browser(tmp_path, monkeypatch, web):
    monkeypatch.setattr(FlashTuiApp, "is_web", property(lambda self: web))
    (tmp_path / "shots").mkdir()
    app = scripted_app(tmp_path)
    sent = record_deliveries(app)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.sweep.session and len(app.sweep.session.cells) == 6
                       and not app.sweep.running, 10, "sweep")
        await pilot.press("s")
        await pilot.pause(0.1)
        shots = list((tmp_path / "shots").glob("*.svg"))
        assert len(shots) == 1 and shots[0].read_text().startswith("<svg")  # written locally, as before
        out = tmp_path / "out.md"
        await pilot.press("e")
        await pilot.pause(0.05)
        app.screen.query_one("#export-path").value = str(out)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert out.read_text().startswith("#")  # the markdown report, on the server's disk
        notes = [n.message for n in app._notifications]
    if not web:
        assert sent == []
        assert not any("browser" in n for n in notes)
        return
    (shot_path, shot_kwargs, shot_bytes), (out_path, out_kwargs, out_bytes) = sent
    assert shot_path == shots[0] and shot_bytes == shots[0].read_bytes()
    assert shot_kwargs == {"save_filename": shots[0].name, "open_method": "download", "name": "screenshot"}
    assert out_path == out and out_bytes == out.read_bytes()
    assert out_kwargs["save_filename"] == "out.md" and out_kwargs["name"] == "export"
    assert any(n.startswith(f"exported to {out} (and sent to your browser") for n in notes)
    assert any(n.startswith("screenshot saved: ") and "sent to your browser" in n for n in notes)
