"""Doctor screen against the REAL CPU worker: matrix, reasons, NVML line, busy worker."""

from __future__ import annotations

from flashtui.core.units import NA
from flashtui.testing import NoSampler, screen_text, wait_for
from flashtui.tui import messages as m
from flashtui.tui.app import FlashTuiApp
from flashtui.tui.screens.doctor import DoctorScreen

from .conftest import TINY_CPU


async def test_doctor_probes_the_real_worker_and_shows_matrix_reasons_and_advice(isolated_dirs):
    seen = []
    # A sweep that is certainly still running when d and r are pressed (TINY_CPU's six
    # cells now finish in well under a second).
    longer = {**TINY_CPU, "seqs": (64, 128, 256, 512, 1024), "reps": 60}
    app = FlashTuiApp(default_spec_overrides=longer, sampler_factory=NoSampler)
    async with app.run_test(size=(160, 50), message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 60, "WorkerReady")
        await pilot.press("d")
        assert isinstance(app.screen, DoctorScreen)
        await wait_for(pilot, lambda: app.doctor.report, 120, "ProbeFinished")
        await pilot.pause(0.1)
        assert any(isinstance(x, m.ProbeProgress) and x.text.startswith("probing ") for x in seen)
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
        await wait_for(pilot, lambda: app.sweep.running, 10, "sweep start")
        n_finished = sum(isinstance(x, m.ProbeFinished) for x in seen)
        await pilot.press("d")
        await pilot.press("r")
        await pilot.pause(0.1)
        assert "probe not run: a sweep is running" in app.screen.text()
        assert any("a sweep is running" in n.message for n in app._notifications)
        await wait_for(pilot, lambda: not app.sweep.running, 60, "sweep end")
        await pilot.press("r")
        await wait_for(pilot, lambda: sum(isinstance(x, m.ProbeFinished) for x in seen) > n_finished,
                       120, "second probe")
        assert "standard" in screen_text(app)


async def test_doctor_fills_in_live_then_a_new_app_answers_from_the_cache_and_r_probes(isolated_dirs, monkeypatch):
    """Real worker, real probe: the matrix updates per ProbeCellFinished before the report;
    the answer is cached; a second app's first visit answers from the cache (its age in
    the status line, no probe); r probes again."""
    import json

    from flashtui.client.doctor_cache import DoctorCache

    partial: list[tuple[str, bool]] = []  # (matrix text, report already built) per ProbeCell
    app = FlashTuiApp(default_spec_overrides=TINY_CPU, sampler_factory=NoSampler)
    assert app.doctor.cache is not None  # the local worker: its answer is this machine's

    def spy(message):
        if isinstance(message, m.ProbeCell):
            partial.append(("", app.doctor.report is not None))

    async with app.run_test(size=(160, 50), message_hook=spy) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 60, "WorkerReady")
        original = DoctorScreen.show_matrix

        def record(screen, matrix, progress=""):
            original(screen, matrix, progress)
            if progress:  # a ProbeCell's update (the finished report shows the matrix without)
                partial.append((screen.matrix_text(), app.doctor.report is not None))

        # On the class, before "d": the probe starts with the screen, and its first cells can
        # arrive before a hook set on the screen instance afterwards (a loaded box missed 9).
        monkeypatch.setattr(DoctorScreen, "show_matrix", record)
        await pilot.press("d")
        await wait_for(pilot, lambda: app.doctor.report, 120, "ProbeFinished")
        assert app.doctor.report["cached"] is False
        n_cells = len(app.doctor.report["matrix"]["cells"])
    monkeypatch.setattr(DoctorScreen, "show_matrix", original)  # the second app runs unhooked
    shown = [text for text, _ in partial if text]
    assert len(shown) == n_cells > 1  # one matrix update per cell
    assert not any(done for _, done in partial)  # every update came before the report
    assert shown[0].startswith(f"1/{n_cells} cells probed")
    first = next(line for line in shown[0].splitlines() if line.startswith("standard ")).split()
    assert first[1] == "ok" and set(first[2:10]) == {NA}  # one cell in, the rest not yet
    assert shown[-1].startswith(f"{n_cells}/{n_cells} cells probed")
    # The probe was cached where flashtui doctor looks; age it by 3 minutes.
    cache = DoctorCache()
    assert cache.lookup().entry is not None
    entry = json.loads(cache.path.read_text())
    entry["probed_at_unix"] -= 180
    cache.path.write_text(json.dumps(entry))

    seen = []
    again = FlashTuiApp(default_spec_overrides=TINY_CPU, sampler_factory=NoSampler)
    async with again.run_test(size=(160, 50), message_hook=seen.append) as pilot:
        await pilot.press("d")  # before the worker is even ready: the cache answers
        await wait_for(pilot, lambda: again.doctor.report, 20, "cached answer")
        assert again.doctor.report["cached"] is True
        text = again.screen.text()
        assert "cached 3 min ago, r probes again" in text.splitlines()[0]
        assert "standard " in text and "advice:" in text
        assert not any(isinstance(x, (m.ProbeCell, m.ProbeFinished)) for x in seen)
        # The worker starts although Setup was covered before its first refresh (the
        # Doctor's d at once used to hold the start back until Setup showed again).
        await wait_for(pilot, lambda: again.sweep.ready, 60, "WorkerReady")
        await pilot.press("r")
        await wait_for(pilot, lambda: any(isinstance(x, m.ProbeFinished) for x in seen), 120, "re-probe")
        await pilot.pause(0.1)
        assert any(isinstance(x, m.ProbeCell) for x in seen)
        assert again.doctor.report["cached"] is False
        assert again.screen.text().startswith("probe finished in")
    assert DoctorCache().lookup().age_s() < 60  # the re-probe replaced the aged entry


async def test_the_doctor_screen_probes_over_helper_workers_where_a_gpu_box_would(isolated_dirs, monkeypatch):
    """On a GPU box the slow backends probe in helper workers at once (as flashtui doctor
    does); FLASHTUI_DOCTOR_GROUPS forces it here: one answer, every cell, counted as one."""
    from flashtui.client.doctor_parallel import GROUPS_ENV

    monkeypatch.setenv(GROUPS_ENV, "sdpa-math;sdpa-flash")
    cells = []
    app = FlashTuiApp(default_spec_overrides=TINY_CPU, sampler_factory=NoSampler)

    def spy(message):
        if isinstance(message, m.ProbeCell):
            cells.append((message.event.index, message.event.n_cells))

    async with app.run_test(size=(160, 50), message_hook=spy) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 60, "WorkerReady")
        await pilot.press("d")
        await wait_for(pilot, lambda: app.doctor.report, 120, "ProbeFinished")
        report = app.doctor.report
        await pilot.pause(0.1)
        text = app.screen.text()
    workers = report["probe_workers"]
    assert [w["backends"] for w in workers[1:]] == [["sdpa-math"], ["sdpa-flash"]]
    assert len(report["matrix"]["cells"]) == 90
    assert [index for index, _ in cells] == list(range(90)) and {n for _, n in cells} == {90}
    standard = next(line for line in text.splitlines() if line.startswith("standard "))
    assert standard.split()[1:10] == ["ok"] * 9
    assert "sdpa-math " in text and "sdpa-flash " in text
