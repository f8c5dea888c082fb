"""Keys that work: r runs from Setup, Ctrl+C cancels then quits, q mid-sweep asks first,
and the command palette reaches every footer action (with one Screenshot entry).

The worker is the scripted stand-in with a per-cell delay, so a sweep is reliably
still running when the keys are pressed."""

from __future__ import annotations

from flashtui.tui.app import FlashTuiApp
from flashtui.tui.screens.confirm_quit import ConfirmQuitScreen
from flashtui.tui.screens.run import RunScreen
from flashtui.tui.screens.setup import SetupScreen

from flashtui.testing import NoSampler, wait_for
from flashtui.testing.scripted import ScriptedClient

SLOW_SWEEP = dict(device="cpu", backends=("standard", "sdpa-math"), seqs=(64, 128, 256, 512),
                  dtypes=("fp32",), reps=3, warmup_ms=5.0)


def make_app(cell_delay_s: float = 0.3) -> FlashTuiApp:
    return FlashTuiApp(default_spec_overrides=SLOW_SWEEP, sampler_factory=NoSampler, journal=False,
                       worker_factory=lambda: ScriptedClient(cell_delay_s=cell_delay_s))


async def start_with_r(app, pilot):
    await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
    assert isinstance(app.screen, SetupScreen)
    await pilot.press("r")  # the Run button has focus: r is the Run key, not a typed letter
    await wait_for(pilot, lambda: app.sweep.running and isinstance(app.screen, RunScreen), 10, "sweep running")


async def test_r_runs_from_setup_and_ctrl_c_cancels_then_quits(isolated_dirs):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await start_with_r(app, pilot)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.sweep.running, 10, "sweep cancelled")
        assert app.is_running, "the first Ctrl+C only cancels"
        session = app.sweep.session
        assert 0 < len(session.cells) < 8, "cancelled part-way"
        await pilot.press("ctrl+c")
        await pilot.pause(0.2)
        assert not app.is_running, "the second Ctrl+C quits"


async def test_r_in_a_text_field_types_and_does_not_run(isolated_dirs):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
        model = app.screen.query_one("#model")
        model.focus()
        await pilot.press("r")
        await pilot.pause(0.1)
        assert model.value.endswith("r") and not app.sweep.running


async def test_q_mid_sweep_asks_first(isolated_dirs):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await start_with_r(app, pilot)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), 5, "the question")
        assert "Quit anyway?" in str(app.screen.query_one("#confirm-quit-text").render())
        await pilot.press("n")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunScreen) and app.is_running and app.sweep.running
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), 5, "the question again")
        await pilot.press("y")
        await pilot.pause(0.2)
        assert not app.is_running


async def test_q_when_idle_quits_without_asking(isolated_dirs):
    app = make_app(cell_delay_s=0.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
        await pilot.press("r")
        await wait_for(pilot, lambda: app.sweep.session and not app.sweep.running
                       and isinstance(app.screen, RunScreen), 10, "sweep done")
        await pilot.press("q")
        await pilot.pause(0.2)
        assert not app.is_running


def titles(app) -> list[str]:
    return [command.title for command in app.get_system_commands(app.screen)]


async def test_palette_offers_every_footer_action_and_one_screenshot(isolated_dirs):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
        on_setup = titles(app)
        assert on_setup.count("Screenshot") == 1 and on_setup.count("Quit") == 1
        await start_with_r(app, pilot)
        on_run = titles(app)
        assert on_run.count("Screenshot") == 1
        # Every footer binding of the Run screen has a palette entry.
        footer = {b.description for b in RunScreen.BINDINGS if b.show}
        aliases = {"Cancel": "Cancel sweep", "Re-run": "Re-run cell", "Restart": "Restart worker",
                   "Shot": "Screenshot", "Theme": "Next theme"}
        missing = {d for d in footer if aliases.get(d, d) not in on_run}
        assert not missing, missing
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.sweep.running, 10, "cancelled")
        assert "Cancel sweep" not in titles(app)


async def test_palette_run_runs_a_sweep_and_palette_charts_shows_them(isolated_dirs):
    app = make_app(cell_delay_s=0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 10, "ready")
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"run")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.sweep.session and len(app.sweep.session.cells) == 8
                       and not app.sweep.running, 10, "the palette's sweep")
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"charts")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.active_tab == "charts",
                       5, "the charts tab")
