"""Model-mode Setup: heads/head_dim are greyed out (the model's config decides them) and a
built-in name says it runs with random weights."""

from __future__ import annotations

from textual.widgets import Input, Select

from flashtui.tui.app import FlashTuiApp

from flashtui.testing import NoSampler, wait_for
from flashtui.testing.scripted import ScriptedClient


async def test_model_mode_disables_heads_and_says_random_weights(isolated_dirs):
    app = FlashTuiApp(default_spec_overrides=dict(device="cpu", backends=("standard",), seqs=(64,),
                                                  dtypes=("fp32",)),
                      worker_factory=ScriptedClient, sampler_factory=NoSampler, journal=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
        screen = app.screen
        note = screen.query_one("#model-note")
        assert not screen.query_one("#heads", Input).disabled and not note.display
        screen.query_one("#mode", Select).value = "prefill"
        screen.query_one("#model", Input).value = "gpt2"
        await pilot.pause(0.1)
        assert screen.query_one("#heads", Input).disabled and screen.query_one("#head_dim", Input).disabled
        assert not screen.query_one("#batch", Input).disabled
        text = str(note.render())
        assert note.display and "random weights" in text and "ignored" in text
        spec = screen.validate_form()
        assert spec is not None and spec.mode == "prefill" and spec.model == "gpt2"
        screen.query_one("#model", Input).value = "./my-local-model"
        await pilot.pause(0.1)
        assert "random weights" not in str(note.render())
        screen.query_one("#mode", Select).value = "kernel"
        await pilot.pause(0.1)
        assert not screen.query_one("#heads", Input).disabled and not note.display
