"""Doctor screen against the REAL CPU worker: matrix, reasons, NVML line, busy worker."""

from __future__ import annotations

from flashtui.tui import messages as m
from flashtui.tui.app import FlashTuiApp
from flashtui.tui.screens.doctor import DoctorScreen

from .conftest import TINY_CPU, NoSampler, screen_text, wait_for


async def test_doctor_probes_the_real_worker_and_shows_matrix_reasons_and_advice(isolated_dirs):
    seen = []
    app = FlashTuiApp(default_spec_overrides=TINY_CPU, sampler_factory=NoSampler)
    async with app.run_test(size=(160, 50), message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.ready, 60, "WorkerReady")
        await pilot.press("d")
        assert isinstance(app.screen, DoctorScreen)
        await wait_for(pilot, lambda: app.doctor_report, 120, "ProbeFinished")
        await pilot.pause(0.1)
        assert any(isinstance(x, m.ProbeProgress) and x.text.startswith("probing ") for x in seen)
        # The matrix filled in cell by cell before the report came.
        cells = [x for x in seen if isinstance(x, m.ProbeCell)]
        assert [c.index for c in cells] == list(range(cells[0].n_cells)) == list(range(len(cells)))
        assert len(app.doctor_report["matrix"]["cells"]) == len(cells)
        text = app.screen.text()
        lines = text.splitlines()
        standard = next(line for line in lines if line.startswith("standard "))
        assert standard.split()[1:10] == ["ok"] * 9, standard
        assert any(line.strip().startswith("fa4: not available: fa4 runs on CUDA GPUs only") for line in lines)
        assert "fastest here: " in text and "a hint, not a benchmark" in text
        assert "advice:" in text and "need a CUDA GPU" in text
        assert "probe finished in" in text
        assert "NVML unavailable:" in text  # no driver on this machine, said in words
        assert "torch" in text and "CPU-only build" in text
        # Back to setup; a sweep runs; the doctor then refuses to probe (client not re-entrant).
        await pilot.press("escape")
        assert app.screen.id == "setup"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.sweep_running, 10, "sweep start")
        n_finished = sum(isinstance(x, m.ProbeFinished) for x in seen)
        await pilot.press("d")
        await pilot.press("r")
        await pilot.pause(0.1)
        assert "probe not run: a sweep is running" in app.screen.text()
        assert any("a sweep is running" in n.message for n in app._notifications)
        await wait_for(pilot, lambda: not app.sweep_running, 60, "sweep end")
        await pilot.press("r")
        await wait_for(pilot, lambda: sum(isinstance(x, m.ProbeFinished) for x in seen) > n_finished,
                       120, "second probe")
        assert "standard" in screen_text(app)


async def test_doctor_fills_in_live_then_a_new_app_answers_from_the_cache(isolated_dirs):
    app = FlashTuiApp(default_spec_overrides=TINY_CPU, sampler_factory=NoSampler)
    partial: list[str] = []
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: app.ready, 60, "WorkerReady")
        await pilot.press("d")
        screen = app.screen
        original = screen.show_partial_matrix

        def spy(*args):
            original(*args)
            partial.append(str(screen.query_one("#doctor-matrix").render()))

        screen.show_partial_matrix = spy
        await wait_for(pilot, lambda: app.doctor_report, 120, "ProbeFinished")
        assert app.doctor_report["cached"] is False
    assert partial[0].startswith("1/") and " cells probed" in partial[0]
    assert "standard " in partial[-1]
    seen = []
    again = FlashTuiApp(default_spec_overrides=TINY_CPU, sampler_factory=NoSampler)
    async with again.run_test(size=(160, 50), message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: again.ready, 60, "WorkerReady")
        await pilot.press("d")
        await pilot.pause(0.2)
        assert again.doctor_report and again.doctor_report["cached"] is True
        assert not any(isinstance(x, (m.ProbeCell, m.ProbeFinished)) for x in seen)
        text = again.screen.text()
        assert "ago, r probes again" in text and "standard" in text
