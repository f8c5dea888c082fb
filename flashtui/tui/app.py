"""FlashTuiApp: Setup -> Run (live panels, charts) -> Export, in front of the worker.

Threads: the worker client and the NVML sampler live in a :class:`WorkerBridge`; they
only ``post_message`` typed messages (messages.py, each carrying its protocol event) to
this app. The app keeps no sweep state of its own: it routes each message to a plain
Python controller (controllers.py: the sweep and its recorder, py-spy, the doctor),
applies the View that comes back, and pushes data down into the screens.

Injectable for tests and benchmarks (``FlashTuiApp(default_spec_overrides=...,
worker_factory=..., sampler_factory=...)``) so a Pilot test can drive the real app
against a real, tiny CPU sweep. Nothing here imports torch: the first frame is drawn
while the worker is still importing it in its own process.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any, Callable

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import BUILTIN_THEMES

from flashtui import paths
from flashtui.errors import EXIT_HANGUP, one_line
from flashtui.core import protocol as proto
from flashtui.core.spec import CellKey, SweepSpec, cpu_defaults, cuda_defaults
from flashtui.tui import messages as m
from flashtui.tui.bridge import WorkerBridge
from flashtui.tui.controllers import DoctorController, Note, PySpyController, SweepController, View, nvml_state
from flashtui.tui.config import TuiConfig, load_config, save_config
from flashtui.tui.screens.setup import SetupScreen
from flashtui.tui.themes import FALLBACK_THEME, load_themes

# Redraw the memory sparkline at most this often, however fast samples come.
SAMPLE_REDRAW_MIN_INTERVAL_S = 0.25
# Push finished cells into the three tables at most this often (a burst of cells, or a
# re-run that changes every speedup, becomes one redraw instead of many).
CELLS_REDRAW_MIN_INTERVAL_S = 0.2
# The worker starts after Setup's first frame, or after this long at the latest.
WORKER_START_FALLBACK_S = 0.3


def default_worker_factory() -> Any:
    from flashtui.client.worker_client import WorkerClient

    return WorkerClient()


def _doctor_cache() -> Any:
    """The cache ``flashtui doctor`` uses for the same options: auto device, the fastest
    probe, quick unless the worker inherits FLASHTUI_PROBE_FULL (as its probe then does)."""
    from flashtui.client.doctor_cache import DoctorCache, probe_options

    full = os.environ.get("FLASHTUI_PROBE_FULL", "") not in ("", "0")
    return DoctorCache(probe_options(None, full=full, fastest=True))


def default_sampler_factory(ready: proto.WorkerReady, rate_hz: float | None = None) -> Any:
    """An NVML sampler aimed at the worker's device (it reports its own 'why not')."""
    from flashtui.monitor import nvml

    hint = nvml.device_hint_from_provenance(ready.provenance)
    return nvml.NvmlSampler(**hint) if rate_hz is None else nvml.NvmlSampler(rate_hz=rate_hz, **hint)


class FlashTuiApp(App[int]):
    """The flashtui terminal UI."""

    # Absolute, so subclasses defined elsewhere (tests, benchmarks) find it too.
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "flashtui"
    SUB_TITLE = "what does FlashAttention buy me here?"
    BINDINGS = [
        Binding("ctrl+t", "cycle_theme", "Theme", show=False),
        Binding("d", "doctor", "Doctor"),
        Binding("o", "sessions", "Sessions"),
        # Ctrl+C: cancel a running sweep; pressed again (or with nothing running), quit.
        Binding("ctrl+c", "interrupt", "Cancel/Quit", show=False, priority=True),
        Binding("ctrl+q", "request_quit", "Quit", show=False, priority=True),
    ]

    # SIGHUP (the SSH session dropped) is turned into a clean exit by run_app; tests
    # running under Pilot leave the process's signal handling alone.
    handle_hangup = False

    def __init__(
        self,
        *,
        default_spec_overrides: dict[str, Any] | None = None,
        worker_factory: Callable[[], Any] | None = default_worker_factory,
        sampler_factory: Callable[[proto.WorkerReady], Any] | None = default_sampler_factory,
        config_path: Path | None = None,
        screenshot_dir: str | os.PathLike[str] | None = None,
        journal: bool = True,
        doctor_cache: bool | None = None,
    ) -> None:
        super().__init__()
        self.default_spec_overrides = dict(default_spec_overrides or {})
        self.worker_factory = worker_factory
        self.sampler_factory = sampler_factory
        self.config_path = config_path
        self.screenshot_dir = str(screenshot_dir) if screenshot_dir else None
        self.config = TuiConfig()
        self.shipped_theme_names: list[str] = []
        # State, in plain Python (controllers.py); the app routes and renders.
        self.sweep = SweepController(journal=journal)
        self.pyspy = PySpyController()
        # The doctor's cache describes this machine: used with the local worker only (a
        # scripted or remote worker's answer is not this environment's), unless told.
        if doctor_cache is None:
            doctor_cache = worker_factory is default_worker_factory
        self.doctor = DoctorController(cache=_doctor_cache() if doctor_cache else None)
        # Threads and timers.
        self.bridge: WorkerBridge | None = None
        self._worker_start_requested = False
        self.pyspy_poller: Any | None = None
        self.sweep_timer: Any | None = None
        # Screens the app pushes data into.
        self.setup_screen: SetupScreen | None = None
        self.run_screen: Any | None = None
        # The monitor: why NVML has no samples, and the redraw throttles.
        self.monitor_reason: str | None = None
        self._last_sample_redraw_s = 0.0
        self._sample_redraw_pending = False
        self._cells_redraw_pending = False
        # Ctrl+C cancelled the running sweep: the next Ctrl+C quits.
        self._interrupt_armed = False

    # ------------------------------------------------------------- start-up
    def defaults(self) -> dict[str, Any]:
        """Spec defaults for the detected device, then the injected overrides."""
        ready = self.sweep.ready
        base = cuda_defaults() if ready is not None and ready.device_kind == "cuda" else cpu_defaults()
        return {**base, **self.default_spec_overrides}

    def on_mount(self) -> None:
        self.config, config_error = load_config(self.config_path)
        themes, theme_errors = load_themes()
        for theme in themes:
            self.register_theme(theme)
        self.shipped_theme_names = [t.name for t in themes]
        wanted = self.config.theme
        if wanted not in self.available_themes:
            theme_errors.append(f"theme {wanted!r} is not available; using {FALLBACK_THEME}")
            wanted = FALLBACK_THEME if FALLBACK_THEME in self.available_themes else "textual-dark"
        self.theme = wanted
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        if self.handle_hangup:
            self._install_hangup_handler()
        self.setup_screen = SetupScreen(self.defaults())
        self.push_screen(self.setup_screen)
        for line in ([config_error] if config_error else []) + theme_errors:
            self.notify(line, severity="warning", title="settings", timeout=8)
        if self.worker_factory is not None:
            sampler_factory = self.sampler_factory
            if sampler_factory is default_sampler_factory or getattr(sampler_factory, "takes_rate_hz", False):
                sampler_factory = functools.partial(sampler_factory, rate_hz=self.config.nvml_rate_hz)
            self.bridge = WorkerBridge(self.worker_factory(), self.post_message, sampler_factory)
            from flashtui.tui.profiler import PySpyPoller

            bridge = self.bridge
            self.pyspy_poller = PySpyPoller(lambda: bridge.worker_pid, self.post_message)
            # After the first frame: the worker's interpreter and torch import compete
            # for the same cores, and the user should see the form at once. A screen's
            # after-refresh callbacks run only while that screen is current, so a key that
            # covers Setup at once (d: the Doctor) would hold the start back: a timer makes
            # sure it happens anyway (whichever comes first starts it, once).
            self.call_after_refresh(self._start_worker)
            self.set_timer(WORKER_START_FALLBACK_S, self._start_worker)

    def _start_worker(self) -> None:
        if self.bridge is None or self._worker_start_requested:
            return
        self._worker_start_requested = True
        self.bridge.start()

    def _install_hangup_handler(self) -> None:
        import asyncio
        import signal

        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hung_up)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):
            pass  # no SIGHUP on this platform, or not the main thread

    def _hung_up(self) -> None:
        """The terminal is gone: end the journal (every finished cell is already in it),
        stop the worker, and leave without drawing: every write to the tty would fail."""
        self._shut_down()
        os._exit(EXIT_HANGUP)

    def on_unmount(self) -> None:
        self._shut_down()

    def _shut_down(self) -> None:
        """Journal first (what was measured must survive), then py-spy and the worker."""
        self.sweep.close("cancelled" if self.sweep.running else None)
        if self.pyspy_poller is not None:
            self.pyspy_poller.stop()
        recording, self.pyspy.recording = self.pyspy.recording, None
        if recording is not None:
            try:
                recording.stop(timeout_s=3.0, check=False)
            except Exception:
                pass
        if self.bridge is not None:
            self.bridge.close()

    # -------------------------------------------------------------- themes
    def _remember_theme(self, theme: Any) -> None:
        if self.config.theme == theme.name:
            return
        self.config.theme = theme.name
        try:
            save_config(self.config, self.config_path)
        except OSError as exc:
            self.notify(f"cannot save the theme choice: {exc.strerror or exc}",
                        severity="warning", title="settings")

    def action_cycle_theme(self) -> None:
        """Next shipped theme (all themes are in the command palette: ctrl+p, Theme)."""
        names = self.shipped_theme_names or sorted(BUILTIN_THEMES)
        index = names.index(self.theme) + 1 if self.theme in names else 0
        self.theme = names[index % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def get_system_commands(self, screen: Screen) -> Any:
        """Textual's own commands (less its Quit and Screenshot: ours replace them), then
        every action the footers offer, so the palette reaches all of them from anywhere."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Screenshot"):
                yield command
        yield from self.palette_commands(screen)

    def palette_commands(self, screen: Screen) -> Any:
        """flashtui's palette entries: one per footer action, one Screenshot."""
        from flashtui.tui.screens.run import RunScreen

        on_run = isinstance(screen, RunScreen)
        if isinstance(screen, SetupScreen):
            yield SystemCommand("Run", "Run the sweep the form describes", screen.action_run)
        else:
            yield SystemCommand("Run", "Run the last sweep again (or go to Setup)", self.action_run_again)
        if self.sweep.running:
            yield SystemCommand("Cancel sweep", "Stop after the cell in flight", self.action_cancel_sweep)
        yield SystemCommand("Charts", "The charts of this session's cells", self.action_charts)
        yield SystemCommand("Live panels", "Timing, parity, memory and the worker log", self.action_live)
        if on_run:
            yield SystemCommand("|diff|", "The selected cell's |out - reference| distribution",
                                screen.action_show_abs_diff)
            yield SystemCommand("Re-run cell", "Measure the selected cell again", self.action_rerun_cell)
            yield SystemCommand("py-spy", "Show or hide the worker's hot frames", screen.action_toggle_pyspy)
            yield SystemCommand("Profile", "py-spy record the worker for a few cells", self.action_toggle_record)
            yield SystemCommand("Setup", "Back to the form", self.action_back_to_setup)
        yield SystemCommand("Restart worker", "Start a fresh worker process", self.action_restart_worker)
        yield SystemCommand("Next theme", "Cycle through flashtui's themes", self.action_cycle_theme)
        yield SystemCommand("Screenshot", "Save an SVG screenshot of this screen", self.action_screenshot)
        yield SystemCommand("Doctor", "What this machine can run (capability probe)", self.action_doctor)
        yield SystemCommand("Sessions", "Open, compare and export stored sessions", self.action_sessions)
        if self.sweep.session is not None:
            yield SystemCommand("Export", "Export the session (html, md, csv, json)", self.action_export)
        yield SystemCommand("Quit", "Quit flashtui (asks first while a sweep runs)", self.action_request_quit)

    # ------------------------------------------------------------- rendering
    def show(self, view: View) -> None:
        """Apply a controller's View: log lines, notifications, the "now" line."""
        for level, text in view.logs:
            self._run_log(level, text)
        for note in view.notes:
            self.tell(note)
        if view.now is not None and self.run_screen is not None:
            self.run_screen.set_now(view.now)

    def tell(self, note: Note) -> None:
        self.notify(note.text, severity=note.severity, title=note.title or "", timeout=note.timeout)

    def _busy_with(self) -> str | None:
        """What holds the worker now ("sweep", "restart", "probe"), None when idle."""
        if self.bridge is None or not self.bridge.running:
            return None
        return self.bridge.busy_with or "sweep"

    def _run_log(self, level: str, text: str) -> None:
        if self.run_screen is not None and self.run_screen.is_mounted:
            self.run_screen.log_line(level, text)

    def _tick_progress(self, final: bool = False) -> None:
        if self.run_screen is not None and self.run_screen.is_mounted:
            done, total, text = self.sweep.progress(final)
            pool = getattr(self.bridge, "pool", None)
            if pool is not None and not final:  # a sweep over several workers: each one's progress
                text = f"{text} · {pool.status_line()}"
            self.run_screen.set_progress(done, total, text)

    def _schedule_cells_redraw(self) -> None:
        if not self._cells_redraw_pending:
            self._cells_redraw_pending = True
            self.set_timer(CELLS_REDRAW_MIN_INTERVAL_S, self._redraw_cells)

    def _redraw_cells(self) -> None:
        self._cells_redraw_pending = False
        if self.run_screen is not None:
            self.run_screen.show_cells(self.sweep.cell_dicts())

    # --------------------------------------------------------- worker events
    @on(m.WorkerReady)
    def _worker_ready(self, message: m.WorkerReady) -> None:
        self.sweep.worker_ready(message.event)
        self.doctor.ready = message.event
        if self.setup_screen is not None:
            self.setup_screen.set_worker_info(message.event, self.defaults())

    @on(m.WorkerStartFailed)
    def _worker_start_failed(self, message: m.WorkerStartFailed) -> None:
        self.notify(message.reason, severity="error", title="worker", timeout=15)
        if self.setup_screen is not None:
            self.setup_screen.set_worker_failed(message.reason)
        self._run_log("error", f"worker failed to start: {message.reason}")

    @on(SetupScreen.RunRequested)
    async def _run_requested(self, message: SetupScreen.RunRequested) -> None:
        await self.start_sweep(message.spec, gpus=getattr(message, "gpus", None))

    async def _ensure_run_screen(self) -> Any:
        from flashtui.tui.screens.run import RunScreen

        if self.run_screen is None:
            self.run_screen = RunScreen()
            self.install_screen(self.run_screen, name="run")
        if self.screen is not self.run_screen:
            await self.push_screen("run")
            self._redraw_monitor()
        return self.run_screen

    async def start_sweep(self, spec: SweepSpec, cells: list[CellKey] | None = None,
                          gpus: str | None = None) -> bool:
        """Start ``spec`` (all cells, or only ``cells`` into the current session);
        ``gpus`` ('all', '0,1'): one worker per GPU (the bridge builds the pool)."""
        refusal = self.sweep.refusal(has_worker=self.bridge is not None, busy_with=self._busy_with())
        if refusal is not None or self.bridge is None:
            if refusal is not None:
                self.tell(refusal)
            return False
        screen = await self._ensure_run_screen()
        view = self.sweep.start(spec, cells, ready_wall_s=self.bridge.ready_wall_s,
                                sampler=self.bridge.sampler, on_storage_error=self._journal_failed)
        self.pyspy.sweep_starting()
        self._interrupt_armed = False
        screen.show_cells(self.sweep.cell_dicts())
        done, total, _ = self.sweep.progress()
        screen.set_progress(done, total, "starting…")
        self.show(view)
        if gpus:
            self.bridge.run_sweep(spec, cells, gpus=gpus)
        else:
            self.bridge.run_sweep(spec, cells)
        if self.sweep_timer is None:
            self.sweep_timer = self.set_interval(1.0, self._tick_progress)
        self.update_pyspy_sampling()
        return True

    @on(m.SweepStarted)
    def _sweep_started(self, message: m.SweepStarted) -> None:
        self.sweep.sweep_started(message.event)
        self._tick_progress()

    @on(m.CellStarted)
    def _cell_started(self, message: m.CellStarted) -> None:
        self.show(self.sweep.cell_started(message.event))
        if getattr(self.bridge, "pool", None) is not None:
            self._tick_progress()  # each GPU's cell, as it starts

    @on(m.Progress)
    def _progress(self, message: m.Progress) -> None:
        self.show(View(now=message.event.text))

    @on(m.Log)
    def _log(self, message: m.Log) -> None:
        self._run_log(message.event.level, message.event.text)

    @on(m.CellFinished)
    def _cell_finished(self, message: m.CellFinished) -> None:
        cell, view = self.sweep.cell_finished(message.event)
        self.show(view)
        if cell is None:
            return
        stop_why = self.pyspy.cell_recorded(cell)
        if stop_why is not None:
            self._stop_recording(stop_why)
        self._schedule_cells_redraw()
        self._tick_progress()

    @on(m.WorkerDied)
    def _worker_died(self, message: m.WorkerDied) -> None:
        self.show(self.sweep.worker_died(message.event))

    @on(m.WorkerRestarted)
    def _worker_restarted(self, message: m.WorkerRestarted) -> None:
        self.show(self.sweep.worker_restarted(message.event))

    @on(m.RequestFailed)
    def _request_failed(self, message: m.RequestFailed) -> None:
        self.show(self.sweep.request_failed(message.event))

    @on(m.BridgeError)
    def _bridge_error(self, message: m.BridgeError) -> None:
        self.notify(message.reason, severity="error", title="sweep", timeout=10)
        self._run_log("error", message.reason)

    @on(m.SweepFinished)
    def _sweep_finished(self, message: m.SweepFinished) -> None:
        if self.sweep_timer is not None:
            self.sweep_timer.stop()
            self.sweep_timer = None
        if self.sweep.recorder is not None and self.bridge is not None:
            self.sweep.recorder.attach_worker_log(getattr(self.bridge.client, "log_path", None))
        view = self.sweep.sweep_finished(message.event)
        self._redraw_cells()
        self._tick_progress(final=True)
        self.update_pyspy_sampling()
        if self.pyspy.state is not None:
            # The profile goes into the journal before its footer: close it afterwards.
            self.pyspy.close_after = True
            if self.pyspy.state == "recording":
                self._stop_recording("the sweep finished")
        else:
            self.show(self.sweep.close())
        self.show(view)

    def _journal_failed(self, exc: BaseException) -> None:
        self.notify(f"session journal disabled: {one_line(exc)}", severity="warning", title="storage")

    # ------------------------------------------------------------ sessions
    def action_sessions(self) -> None:
        """The stored sessions: open one, compare two, export one."""
        from flashtui.tui.screens.sessions import SessionsScreen

        if isinstance(self.screen, SessionsScreen):
            return
        self.push_screen(SessionsScreen())

    # -------------------------------------------------------------- doctor
    def _doctor_screen(self) -> Any:
        from flashtui.tui.screens.doctor import DoctorScreen

        for screen in self.screen_stack:
            if isinstance(screen, DoctorScreen):
                return screen
        return None

    def _doctor_status(self, text: str, state: str) -> None:
        self.doctor.status = (text, state)  # kept: a screen mounted later shows it too
        screen = self._doctor_screen()
        if screen is not None:
            screen.set_status(text, state)

    def action_doctor(self) -> None:
        """Show the Doctor screen; probe on the first visit (later: r re-probes)."""
        from flashtui.tui.screens.doctor import DoctorScreen

        if isinstance(self.screen, DoctorScreen):
            return
        if not self.is_screen_installed("doctor"):
            self.install_screen(DoctorScreen(self.doctor), name="doctor")
        self.push_screen("doctor")
        if self.doctor.nvml is None:
            self.run_worker(self._probe_nvml, thread=True, exclusive=True, group="nvml")
        if self.doctor.report is None and not self.doctor.probe_running:
            if self.doctor.cache is None:
                self.action_probe()
                return
            self._doctor_status("checking the doctor cache…", "running")
            self.run_worker(self._lookup_doctor_cache, thread=True, exclusive=True, group="doctor-cache")

    def _lookup_doctor_cache(self) -> None:
        """In a thread: the fingerprint reads installed packages and NVML (milliseconds)."""
        lookup = self.doctor.lookup_cache()
        nvml = nvml_state() if lookup is not None and lookup.entry is not None and self.doctor.nvml is None \
            else None
        self.call_from_thread(self._doctor_cache_answered, lookup, nvml)

    def _doctor_cache_answered(self, lookup: Any, nvml: dict[str, Any] | None) -> None:
        """Show the cached answer when the environment is unchanged; else probe."""
        if self.doctor.report is not None or self.doctor.probe_running:
            return  # r was pressed meanwhile: the probe answers
        if nvml is not None:
            self._nvml_probed(nvml)
        status = self.doctor.answer_from_cache(lookup)
        if status is None:
            self.action_probe()
            return
        screen = self._doctor_screen()
        if screen is not None and self.doctor.report is not None:
            screen.show_report(self.doctor.report)
        self._doctor_status(status, "done")

    def _probe_nvml(self) -> None:
        """In a thread: NVML init can take a moment on a GPU box."""
        self.call_from_thread(self._nvml_probed, nvml_state())

    def _nvml_probed(self, state: dict[str, Any]) -> None:
        self.doctor.nvml_probed(state)
        screen = self._doctor_screen()
        if screen is not None:
            screen.set_nvml(state)

    def action_probe(self, force: bool = False) -> None:
        """Run the worker's capability probe, unless the worker is busy (then say so)."""
        refusal = self.doctor.refusal(has_worker=self.bridge is not None, sweep_running=self.sweep.running,
                                      busy_with=self._busy_with())
        if refusal is not None:
            status, note = refusal
            if note is not None:
                self.tell(note)
            if status:
                self._doctor_status(status, "error")
            return
        assert self.bridge is not None
        if self.bridge.probe(fastest=True):
            self._doctor_status(self.doctor.probe_started(), "running")

    @on(m.ProbeProgress)
    def _probe_progress(self, message: m.ProbeProgress) -> None:
        self._doctor_status(self.doctor.probe_progress(message.text), "running")

    @on(m.ProbeCell)
    def _probe_cell(self, message: m.ProbeCell) -> None:
        """The matrix fills in as its cells finish (the slow backends come last)."""
        progress, matrix = self.doctor.probe_cell(message.event)
        screen = self._doctor_screen()
        if screen is not None:
            screen.show_matrix(matrix, progress)

    @on(m.ProbeFinished)
    def _probe_finished(self, message: m.ProbeFinished) -> None:
        if self.doctor.nvml is None:
            self.doctor.nvml_probed(nvml_state())
        if self.sweep.ready is None:
            self.sweep.worker_ready(message.ready)
        status = self.doctor.probe_finished(message.event, message.ready, message.seconds)
        screen = self._doctor_screen()
        if screen is not None and self.doctor.report is not None:
            screen.show_report(self.doctor.report)
        self._doctor_status(status, "done")

    @on(m.ProbeFailed)
    def _probe_failed(self, message: m.ProbeFailed) -> None:
        status, note = self.doctor.probe_failed(message.reason)
        self._doctor_status(status, "error")
        self.tell(note)

    # -------------------------------------------------------------- py-spy
    def _pyspy_panel(self) -> Any:
        return self.run_screen.pyspy_panel() if self.run_screen is not None else None

    @on(m.RunTabShown)
    def _run_tab_shown(self, message: m.RunTabShown) -> None:
        self.update_pyspy_sampling()

    def update_pyspy_sampling(self) -> None:
        """Sample frames only while a sweep runs, the py-spy tab shows and nothing records."""
        screen = self.run_screen
        visible = screen is not None and screen.is_mounted and screen.active_tab == "pyspy"
        if visible and self.pyspy.fatal is None:
            from flashtui.monitor import pyspy

            why_not = self._pyspy_unavailable()
            if why_not is not None:
                self.pyspy.frames_failed(why_not, fatal=True)
        if visible and self.pyspy.fatal is not None:
            panel = self._pyspy_panel()
            if panel is not None:
                panel.show_hint(self.pyspy.fatal)
        if self.pyspy_poller is not None:
            self.pyspy_poller.set_wanted(self.pyspy.sampling_wanted(visible=visible,
                                                                    sweep_running=self.sweep.running))

    @on(m.PySpyFrames)
    def _pyspy_frames(self, message: m.PySpyFrames) -> None:
        panel = self._pyspy_panel()
        if panel is not None:
            panel.show_frames(message.hot)

    @on(m.PySpyStatus)
    def _pyspy_status(self, message: m.PySpyStatus) -> None:
        self.pyspy.frames_failed(message.reason, message.fatal)
        if message.fatal:
            self.update_pyspy_sampling()
        panel = self._pyspy_panel()
        if panel is not None:
            panel.show_hint(message.reason)

    def _pyspy_unavailable(self) -> str | None:
        """Why py-spy cannot reach the worker (not installed; the worker is on another host)."""
        from flashtui.monitor import pyspy

        host = getattr(self.bridge.client, "remote_host", None) if self.bridge is not None else None
        if host:
            from flashtui.client.remote import pyspy_hint

            return pyspy_hint(host)
        return pyspy.INSTALL_HINT if pyspy.find_pyspy() is None else None

    def action_toggle_record(self) -> None:
        """py-spy record: start on the worker (stops after RECORD_CELLS cells), or stop now."""
        from flashtui.monitor import pyspy
        from flashtui.tui.profiler import profile_path, start_recording

        session = self.sweep.session
        step = self.pyspy.toggle(sweep_running=self.sweep.running, has_session=session is not None,
                                 pid=self.bridge.worker_pid if self.bridge is not None else None,
                                 pyspy_found=self._pyspy_unavailable() is None,
                                 install_hint=self._pyspy_unavailable() or pyspy.INSTALL_HINT)
        if step.stop:
            self._stop_recording(step.why)
        if step.note is not None:
            self.tell(step.note)
        if not step.start or session is None or step.pid is None:
            return
        try:
            path = profile_path(session.id)
        except OSError as exc:
            self.notify(f"cannot create the profile file: {exc.strerror or exc}", severity="error")
            return
        line = self.pyspy.starting(step.pid)
        self.sweep.mark_pyspy(True)  # py-spy's pauses are in these cells' timings
        self.update_pyspy_sampling()  # two tracers cannot attach at once: pause the panel
        self._record_text(line, True)
        start_recording(step.pid, path, self.post_message)

    def _record_text(self, text: str | None, recording: bool = False) -> None:
        panel = self._pyspy_panel()
        if panel is not None:
            panel.set_record_text(text, recording)

    @on(m.RecordingStarted)
    def _recording_started(self, message: m.RecordingStarted) -> None:
        line, view = self.pyspy.started(message.path, message.recording)
        self._record_text(line, True)
        self.show(view)
        if not self.sweep.running:
            self._stop_recording("the sweep finished")

    def _stop_recording(self, why: str) -> None:
        from flashtui.tui.profiler import stop_recording

        stopping = self.pyspy.stop(why)
        if stopping is None:
            return
        self._record_text("● stopping py-spy, writing the profile…", True)
        stop_recording(*stopping, self.post_message)

    @on(m.RecordingStopped)
    def _recording_stopped(self, message: m.RecordingStopped) -> None:
        line, view = self.pyspy.stopped(message.path, message.summary, message.details)
        self.sweep.mark_pyspy(False)
        if self.sweep.recorder is not None:
            self.sweep.recorder.attach_profile(message.path, summary=message.summary, **message.details)
        self._record_text(line)
        self.show(view)
        self._after_recording()

    @on(m.RecordingFailed)
    def _recording_failed(self, message: m.RecordingFailed) -> None:
        line, view = self.pyspy.failed(message.reason)
        self.sweep.mark_pyspy(False)
        self._record_text(line)
        self.show(view)
        self._after_recording()

    def _after_recording(self) -> None:
        if self.pyspy.take_close_after(self.sweep.running):
            self.show(self.sweep.close())
        self.update_pyspy_sampling()

    # ------------------------------------------------------------- monitor
    @on(m.MonitorStatus)
    def _monitor_status(self, message: m.MonitorStatus) -> None:
        self.monitor_reason = None if message.available else (message.reason or "no samples")
        self._redraw_monitor()

    @on(m.MonitorSampled)
    def _monitor_sampled(self, message: m.MonitorSampled) -> None:
        now = time.monotonic()
        wait_s = SAMPLE_REDRAW_MIN_INTERVAL_S - (now - self._last_sample_redraw_s)
        if wait_s <= 0:
            self._redraw_monitor()
        elif not self._sample_redraw_pending:
            self._sample_redraw_pending = True
            self.set_timer(wait_s, self._redraw_monitor)

    def _redraw_monitor(self) -> None:
        self._sample_redraw_pending = False
        self._last_sample_redraw_s = time.monotonic()
        if self.run_screen is not None:
            trace = self.bridge.trace_snapshot() if self.bridge is not None else []
            self.run_screen.show_monitor(trace, self.monitor_reason)

    # ------------------------------------------------------------- actions
    async def action_run_again(self) -> None:
        if self.sweep.spec is None:
            self.action_back_to_setup()
            return
        await self.start_sweep(self.sweep.spec)

    async def action_charts(self) -> None:
        """The Run screen's Charts tab (from any screen)."""
        screen = await self._ensure_run_screen()
        screen.show_tab("charts")

    async def action_live(self) -> None:
        screen = await self._ensure_run_screen()
        screen.show_tab("live")

    def action_interrupt(self) -> None:
        """Ctrl+C: cancel the running sweep; a second Ctrl+C (or one when idle) quits."""
        if self.sweep.running and not self._interrupt_armed:
            self._interrupt_armed = True
            self.action_cancel_sweep()
            self.notify("press Ctrl+C again to quit", timeout=4)
            return
        self.exit(self.return_code or 0)

    def action_request_quit(self) -> None:
        """q / Ctrl+Q: quit, but ask first while a sweep runs."""
        if not self.sweep.running:
            self.exit(self.return_code or 0)
            return
        from flashtui.tui.screens.confirm_quit import ConfirmQuitScreen

        if isinstance(self.screen, ConfirmQuitScreen):
            return
        done, total, _ = self.sweep.progress()

        def answered(quit_app: bool | None) -> None:
            if quit_app:
                self.exit(self.return_code or 0)

        self.push_screen(ConfirmQuitScreen(done, total), answered)

    def action_cancel_sweep(self) -> None:
        if self.bridge is None or not self.sweep.running:
            self.notify("no sweep is running", timeout=3)
            return
        self.bridge.cancel()
        self.notify("cancelling after the cell in flight…", timeout=3)
        self._run_log("info", "cancel requested")

    async def action_rerun_cell(self) -> None:
        if self.run_screen is None or self.sweep.spec is None:
            return
        key = self.run_screen.selected_cell_key()
        if key is None:
            self.notify("select a cell in the timing table first", severity="warning")
            return
        await self.start_sweep(self.sweep.spec, [key])

    def action_restart_worker(self) -> None:
        if self.bridge is None:
            return
        if not self.bridge.restart():
            self.notify("a sweep is running; cancel it first (c)", severity="warning")
            return
        self.notify("restarting the worker…", timeout=3)
        self._run_log("info", "restarting the worker")

    def action_back_to_setup(self) -> None:
        if self.screen is self.run_screen:
            self.pop_screen()

    def action_screenshot(self) -> None:
        from flashtui.tui.storage import save_screenshot

        try:  # checked and atomic: never onto a FIFO, device or directory (StorageError)
            path = save_screenshot(self, self.screenshot_dir or paths.screenshots_dir())
        except (OSError, ValueError) as exc:
            self.notify(f"cannot save the screenshot: {getattr(exc, 'strerror', None) or exc}", severity="error")
            return
        sent = self.deliver_to_browser(path, "screenshot")
        self.notify(f"screenshot saved: {path}{sent}", title="screenshot", timeout=6)

    def deliver_to_browser(self, path: str, what: str) -> str:
        """Under ``flashtui serve`` (Textual's web driver) the file written on the server
        also goes to the browser as a download (App.deliver_binary); in a terminal, nothing.
        Returns the words to add to the notification."""
        if not self.is_web:
            return ""
        try:
            self.deliver_binary(Path(path), save_filename=Path(path).name, open_method="download", name=what)
        except Exception as exc:  # noqa: BLE001 - the file on the server stands
            self.notify(f"cannot send the {what} to the browser: {one_line(exc)}", severity="warning")
            return ""
        return " (and sent to your browser as a download)"

    def action_export(self) -> None:
        session = self.sweep.session
        if session is None or not session.cells:
            self.notify("nothing to export yet: run a sweep first", severity="warning")
            return
        from flashtui.tui.screens.sessions import export_with_dialog

        export_with_dialog(self, session)  # the same dialog and writer as the Sessions screen's


def run_app(args: Any = None) -> int:
    """Entry point of ``flashtui`` / ``flashtui tui`` (``--host``: the worker over ssh)."""
    factories: dict[str, Any] = {}
    if getattr(args, "host", None):
        from flashtui.client.remote import SshTarget, tui_factories

        target = SshTarget.from_options(args.host, getattr(args, "remote_python", None))
        factories["worker_factory"], factories["sampler_factory"] = tui_factories(target)
    app = FlashTuiApp(**factories)
    app.handle_hangup = True
    app.run()
    return int(app.return_code or 0)
