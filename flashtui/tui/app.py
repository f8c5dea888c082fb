"""FlashTuiApp: Setup -> Run (live panels, charts) -> Export, in front of the worker.

Threads: the worker client and the NVML sampler live in a :class:`WorkerBridge`; they
only ``post_message`` typed messages (messages.py) to this app, which keeps the
session (the one source of truth) and pushes data into the panels' reactives.

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

from flashtui.errors import EXIT_HANGUP
from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.core.spec import CellKey, SweepSpec, cpu_defaults, cuda_defaults
from flashtui.core.units import fmt_clock, fmt_ms_iqr
from flashtui.tui import messages as m
from flashtui.tui import present
from flashtui.tui.bridge import WorkerBridge
from flashtui.tui.config import TuiConfig, config_dir, load_config, save_config
from flashtui.tui.screens.setup import SetupScreen
from flashtui.tui.themes import FALLBACK_THEME, load_themes

# Redraw the memory sparkline at most this often, however fast samples come.
SAMPLE_REDRAW_MIN_INTERVAL_S = 0.25
# Push finished cells into the three tables at most this often (a burst of cells, or a
# re-run that changes every speedup, becomes one redraw instead of many).
CELLS_REDRAW_MIN_INTERVAL_S = 0.2


def default_worker_factory() -> Any:
    from flashtui.client.worker_client import WorkerClient

    return WorkerClient()


def default_sampler_factory(ready: dict[str, Any], rate_hz: float | None = None) -> Any:
    """An NVML sampler aimed at the worker's device (it reports its own 'why not')."""
    from flashtui.monitor import nvml

    hint = nvml.device_hint_from_provenance(ready.get("provenance"))
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
    ]

    def __init__(
        self,
        *,
        default_spec_overrides: dict[str, Any] | None = None,
        worker_factory: Callable[[], Any] | None = default_worker_factory,
        sampler_factory: Callable[[dict[str, Any]], Any] | None = default_sampler_factory,
        config_path: Path | None = None,
        screenshot_dir: str | os.PathLike[str] | None = None,
        journal: bool = True,
    ) -> None:
        super().__init__()
        self.default_spec_overrides = dict(default_spec_overrides or {})
        self.worker_factory = worker_factory
        self.sampler_factory = sampler_factory
        self.config_path = config_path
        self.screenshot_dir = str(screenshot_dir) if screenshot_dir else None
        self.use_journal = journal
        self.config = TuiConfig()
        self.shipped_theme_names: list[str] = []
        self.bridge: WorkerBridge | None = None
        self.ready: dict[str, Any] | None = None
        self.session: Session | None = None
        self.spec: SweepSpec | None = None
        self.setup_screen: SetupScreen | None = None
        self.run_screen: Any | None = None
        self.journal: Any | None = None
        self.sweep_total = 0
        self.sweep_done = 0
        self.sweep_started_s: float | None = None
        self.sweep_running = False
        self._last_sample_redraw_s = 0.0
        self._sample_redraw_pending = False
        self._saving_theme = False
        # Doctor: the last report (build_report's object), NVML's status, probe in flight.
        self.doctor_report: dict[str, Any] | None = None
        self.nvml_state: dict[str, Any] | None = None
        self.probe_running = False
        # py-spy: the frames poller, a recording in flight and its bookkeeping.
        self.pyspy_poller: Any | None = None
        self.pyspy_fatal: str | None = None  # py-spy cannot be used (until the next sweep)
        self.recording: Any | None = None
        self.recording_state: str | None = None  # None | starting | recording | stopping
        self.record_cells: list[str] = []
        self.record_cells_left = 0
        self._record_info: dict[str, Any] = {}
        self._pending_journal_status: str | None = None

    # ------------------------------------------------------------- start-up
    def defaults(self) -> dict[str, Any]:
        """Spec defaults for the detected device, then the injected overrides."""
        device = ((self.ready or {}).get("provenance") or {}).get("device_kind", "cpu")
        base = cuda_defaults() if device == "cuda" else cpu_defaults()
        return {**base, **self.default_spec_overrides}

    def on_mount(self) -> None:
        self.config, config_error = load_config(self.config_path)
        themes, theme_errors = load_themes([config_dir() / "themes"])
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
            if sampler_factory is default_sampler_factory:
                sampler_factory = functools.partial(sampler_factory, rate_hz=self.config.nvml_rate_hz)
            self.bridge = WorkerBridge(self.worker_factory(), self.post_message, sampler_factory)
            from flashtui.tui.profiler import PySpyPoller

            bridge = self.bridge
            self.pyspy_poller = PySpyPoller(lambda: bridge.worker_pid, self.post_message)
            # After the first frame: the worker's interpreter and torch import compete
            # for the same cores, and the user should see the form at once.
            self.call_after_refresh(self.bridge.start)

    # SIGHUP (the SSH session dropped) is turned into a clean exit by run_app; tests
    # running under Pilot leave the process's signal handling alone.
    handle_hangup = False

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
        self._close_journal("cancelled" if self.sweep_running else None)
        if self.pyspy_poller is not None:
            self.pyspy_poller.stop()
        if self.recording is not None:
            try:
                self.recording.stop(timeout_s=3.0, check=False)
            except Exception:
                pass
            self.recording = None
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
        yield from super().get_system_commands(screen)
        yield SystemCommand("Next theme", "Cycle through flashtui's themes", self.action_cycle_theme)
        yield SystemCommand("Screenshot", "Save an SVG screenshot", self.action_screenshot)
        yield SystemCommand("Doctor", "What this machine can run (capability probe)", self.action_doctor)
        yield SystemCommand("Sessions", "Open, compare and export stored sessions", self.action_sessions)
        if self.session is not None:
            yield SystemCommand("Export", "Export the session (html, md, csv, json)", self.action_export)

    # --------------------------------------------------------- worker events
    @on(m.WorkerReady)
    def _worker_ready(self, message: m.WorkerReady) -> None:
        self.ready = message.data
        if self.setup_screen is not None:
            self.setup_screen.set_worker_info(message.data, self.defaults())

    @on(m.WorkerStartFailed)
    def _worker_start_failed(self, message: m.WorkerStartFailed) -> None:
        self.notify(message.reason, severity="error", title="worker", timeout=15)
        if self.setup_screen is not None:
            self.setup_screen.set_worker_failed(message.reason)
        self._run_log("error", f"worker failed to start: {message.reason}")

    @on(SetupScreen.RunRequested)
    async def _run_requested(self, message: SetupScreen.RunRequested) -> None:
        await self.start_sweep(message.spec)

    async def _ensure_run_screen(self) -> Any:
        from flashtui.tui.screens.run import RunScreen

        if self.run_screen is None:
            self.run_screen = RunScreen()
            self.install_screen(self.run_screen, name="run")
        if self.screen is not self.run_screen:
            await self.push_screen("run")
            self._redraw_monitor()
        return self.run_screen

    async def start_sweep(self, spec: SweepSpec, cells: list[CellKey] | None = None) -> bool:
        """Start ``spec`` (all cells, or only ``cells`` into the current session)."""
        if self.bridge is None:
            self.notify("no worker (started without one)", severity="error")
            return False
        if self.bridge.running:
            if self.bridge.busy_with == "probe":
                self.notify("the doctor probe is running; the sweep can start when it is done",
                            severity="warning")
            else:
                self.notify("a sweep is already running; cancel it first (c)", severity="warning")
            return False
        screen = await self._ensure_run_screen()
        if cells is None or self.session is None:
            self.spec = spec
            self._close_journal("cancelled" if self.sweep_running else None)
            self.session = Session(spec=spec.to_dict(), provenance=dict((self.ready or {}).get("provenance") or {}))
            if self.ready:
                self.session.backends_unavailable = {
                    name: info.get("reason") or "unavailable"
                    for name, info in (self.ready.get("backends") or {}).items() if not info.get("available")
                }
            screen.show_cells(())
            self._open_journal()
        self.pyspy_fatal = None  # py-spy gets one more try per sweep
        self.sweep_running = True
        self.sweep_done = 0
        self.sweep_total = len(cells) if cells else 0
        self.sweep_started_s = time.monotonic()
        screen.set_progress(0, self.sweep_total or None, "starting…")
        what = ", ".join(c.label() for c in cells) if cells else f"{len(spec.seqs)} seqs × {len(spec.dtypes)} dtypes"
        screen.log_line("info", f"▶ sweep: {what}")
        self.bridge.run_sweep(spec, cells)
        if self.sweep_timer is None:
            self.sweep_timer = self.set_interval(1.0, self._tick_progress)
        self.update_pyspy_sampling()
        return True

    sweep_timer: Any = None

    @on(m.SweepStarted)
    def _sweep_started(self, message: m.SweepStarted) -> None:
        self.sweep_total = int(message.data.get("n_cells") or 0)
        self._tick_progress()

    @on(m.CellStarted)
    def _cell_started(self, message: m.CellStarted) -> None:
        d = message.data
        if self.run_screen is not None:
            self.run_screen.set_now(f"running {d.get('backend')} seq={d.get('seq')} {d.get('dtype')}")

    @on(m.Progress)
    def _progress(self, message: m.Progress) -> None:
        if self.run_screen is not None:
            self.run_screen.set_now(str(message.data.get("text", "")))

    @on(m.Log)
    def _log(self, message: m.Log) -> None:
        self._run_log(str(message.data.get("level", "info")), str(message.data.get("text", "")))

    @on(m.CellFinished)
    def _cell_finished(self, message: m.CellFinished) -> None:
        try:
            cell = Cell.from_dict(message.data["cell"])
        except (KeyError, TypeError) as exc:
            self.notify(f"malformed cell from the worker: {exc}", severity="error")
            return
        if self.session is None:
            return
        if self.recording_state is not None:
            # py-spy record pauses the worker ~100 times a second: this cell's timings
            # include those pauses. Kept with the cell (journal, exports) and said below.
            cell.extra["timed_under_pyspy_record"] = True
        self.session.add_cell(cell)
        self.sweep_done += 1
        if self.recording_state == "recording":
            self.record_cells.append(f"{cell.backend} seq={cell.seq} {cell.dtype}")
            self.record_cells_left -= 1
            if self.record_cells_left <= 0:
                self._stop_recording(f"after {len(self.record_cells)} cells")
        if self.journal is not None:
            try:
                self.journal.append_cell(cell)
            except Exception as exc:
                self._journal_failed(exc)
            self._storage_notice(self.journal)
        data = cell.to_dict()
        self._run_log("info" if cell.status == "ok" else "error",
                      f"{cell.backend} seq={cell.seq} {cell.dtype}: "
                      f"{fmt_ms_iqr(cell.median_ms, cell.iqr_ms)} · {present.status_text(data)}"
                      + (" · timed under py-spy record (its pauses included)"
                         if cell.extra.get("timed_under_pyspy_record") else ""))
        if cell.status == "failed":
            self.notify(f"{cell.backend} seq={cell.seq} {cell.dtype} failed: {cell.reason}",
                        severity="error", title="cell failed", timeout=10)
        self._schedule_cells_redraw()
        self._tick_progress()

    _cells_redraw_pending = False

    def _schedule_cells_redraw(self) -> None:
        if not self._cells_redraw_pending:
            self._cells_redraw_pending = True
            self.set_timer(CELLS_REDRAW_MIN_INTERVAL_S, self._redraw_cells)

    def _redraw_cells(self) -> None:
        self._cells_redraw_pending = False
        if self.run_screen is not None:
            self.run_screen.show_cells(self.cell_dicts())

    @on(m.WorkerDied)
    def _worker_died(self, message: m.WorkerDied) -> None:
        reason = str(message.data.get("reason") or "unknown reason")
        self.notify(f"the worker died: {reason}; restarting it and going on",
                    severity="error", title="worker crashed", timeout=10)
        self._run_log("error", f"worker died: {reason}")
        if self.session is not None:
            self.session.worker["crashes"] = int(self.session.worker.get("crashes", 0)) + 1

    @on(m.WorkerRestarted)
    def _worker_restarted(self, message: m.WorkerRestarted) -> None:
        self._run_log("info", f"worker restarted (pid {message.data.get('pid')}, "
                              f"restarts {message.data.get('restarts')})")
        self.notify(f"worker restarted (pid {message.data.get('pid')})", title="worker", timeout=4)

    @on(m.BridgeError)
    def _bridge_error(self, message: m.BridgeError) -> None:
        self.notify(message.reason, severity="error", title="sweep", timeout=10)
        self._run_log("error", message.reason)

    @on(m.SweepFinished)
    def _sweep_finished(self, message: m.SweepFinished) -> None:
        cancelled = bool(message.data.get("cancelled"))
        self.sweep_running = False
        if self.sweep_timer is not None:
            self.sweep_timer.stop()
            self.sweep_timer = None
        self._redraw_cells()
        self._tick_progress(final=True)
        status = "cancelled" if cancelled else "complete"
        if self.session is not None and not cancelled:
            if any(c.status == "failed" for c in self.session.cells):
                status = "failed"
        self.update_pyspy_sampling()
        if self.recording_state is not None:
            # The profile goes into the journal before its footer: close it afterwards.
            self._pending_journal_status = status
            if self.recording_state == "recording":
                self._stop_recording("the sweep finished")
        else:
            self._close_journal(status)
        if self.run_screen is not None:
            self.run_screen.set_now(f"sweep {status}")
        self._run_log("info", f"■ sweep {status}")
        self.notify(f"sweep {status}", severity="warning" if cancelled else "information", timeout=4)

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

    def action_doctor(self) -> None:
        """Show the Doctor screen; probe on the first visit (later: r re-probes)."""
        from flashtui.tui.screens.doctor import DoctorScreen

        if isinstance(self.screen, DoctorScreen):
            return
        if not self.is_screen_installed("doctor"):
            self.install_screen(DoctorScreen(), name="doctor")
        self.push_screen("doctor")
        if self.nvml_state is None:
            self.run_worker(self._probe_nvml, thread=True, exclusive=True, group="nvml")
        if self.doctor_report is None and not self.probe_running and not self._doctor_from_cache():
            self.action_probe()

    def _doctor_cache(self) -> tuple[Any, dict[str, Any], Any]:
        """(cache file, fingerprint, lookup) for the app's worker (auto device, quick probe)."""
        from flashtui.client import environment
        from flashtui.store import probe_cache

        options = {"device": None, "full": False, "fastest": True}
        preview = environment.preview()
        fingerprint = environment.fingerprint(preview, options)
        path = probe_cache.cache_file(environment.cache_root(), options)
        return path, fingerprint, probe_cache.load(path, fingerprint)

    def _doctor_from_cache(self) -> bool:
        """Show the cached answer when the environment is unchanged (r probes again)."""
        from flashtui.reports.doctor import build_report

        if self.bridge is None:
            return False
        try:
            path, _, lookup = self._doctor_cache()
        except Exception:  # noqa: BLE001 - no cache is no answer, the probe runs
            return False
        if lookup.entry is None:
            return False
        if self.nvml_state is None:
            self._probe_nvml_now()
        cache = {"cached": True, "cached_age_s": round(lookup.age_s() or 0.0, 1),
                 "probed_at_unix": lookup.entry["probed_at_unix"], "path": str(path)}
        self.doctor_report = build_report(lookup.entry["ready"], lookup.entry["probe"],
                                          self.nvml_state or {}, _pyspy_state(), cache=cache)
        screen = self._doctor_screen()
        if screen is not None:
            screen.show_report(self.doctor_report)  # says "cached N min ago, r probes again"
        return True

    def _probe_nvml(self) -> None:
        """In a thread: NVML init can take a moment on a GPU box."""
        from flashtui.monitor.nvml import probe_nvml

        try:
            state = probe_nvml().to_dict()
        except Exception as exc:
            state = {"available": False, "reason": f"NVML probe failed: {exc}"}
        self.call_from_thread(self._nvml_probed, state)

    def _nvml_probed(self, state: dict[str, Any]) -> None:
        self.nvml_state = state
        screen = self._doctor_screen()
        if screen is not None:
            screen.set_nvml(state)

    def doctor_preview(self) -> dict[str, Any]:
        """A report with the environment only (before or without a probe)."""
        from flashtui.reports.doctor import build_report

        return build_report(self.ready or {}, {}, self.nvml_state or {}, _pyspy_state())

    def action_probe(self, force: bool = False) -> None:
        """Run the worker's capability probe, unless the worker is busy (then say so)."""
        screen = self._doctor_screen()

        def status(text: str, state: str) -> None:
            if screen is not None:
                screen.set_status(text, state)

        if self.bridge is None:
            status("probe not run: no worker (the app was started without one)", "error")
            return
        if self.probe_running:
            self.notify("the probe is already running", timeout=3)
            return
        if self.sweep_running or self.bridge.running:
            what = self.bridge.busy_with or "sweep"
            self.notify(f"a {what} is running: the probe shares its worker; "
                        "press r on the Doctor screen when it is done", severity="warning",
                        title="doctor", timeout=6)
            status(f"probe not run: a {what} is running (r when it is done)", "error")
            return
        if self.bridge.probe(fastest=True):
            self.probe_running = True
            self._probe_started_s = time.monotonic()
            self._probe_cells: list[dict[str, Any]] = []
            status("probing: starting…", "running")

    _probe_started_s = 0.0

    @on(m.ProbeProgress)
    def _probe_progress(self, message: m.ProbeProgress) -> None:
        screen = self._doctor_screen()
        if screen is not None:
            elapsed = time.monotonic() - self._probe_started_s
            screen.set_status(f"probing: {message.text} ({fmt_clock(elapsed)})", "running")

    @on(m.ProbeCell)
    def _probe_cell(self, message: m.ProbeCell) -> None:
        """Fill the matrix in as cells finish (the slow backends come last)."""
        cells = getattr(self, "_probe_cells", None)
        if cells is None:
            cells = self._probe_cells = []
        cells.append(message.cell)
        screen = self._doctor_screen()
        if screen is not None:
            names = list((self.ready or {}).get("backends") or dict.fromkeys(c["backend"] for c in cells))
            screen.show_partial_matrix(cells, names, message.n_cells)

    @on(m.ProbeFinished)
    def _probe_finished(self, message: m.ProbeFinished) -> None:
        from flashtui.reports.doctor import build_report
        from flashtui.store import probe_cache

        self.probe_running = False
        if self.nvml_state is None:
            self._probe_nvml_now()
        self.ready = self.ready or message.ready
        cache: dict[str, Any] = {"cached": False, "probed_at_unix": time.time()}
        if not (message.result.get("matrix") or {}).get("poisoned") and message.result.get("matrix"):
            try:  # the next first visit answers from here
                path, fingerprint, _ = self._doctor_cache()
                cache["path"] = str(path)
                cache["write_error"] = probe_cache.save(path, fingerprint, dict(message.ready),
                                                        dict(message.result), cache["probed_at_unix"])
            except Exception as exc:  # noqa: BLE001 - the answer stands without a cache
                cache["write_error"] = str(exc)
        self.doctor_report = build_report(message.ready, message.result, self.nvml_state or {},
                                          _pyspy_state(), cache=cache)
        screen = self._doctor_screen()
        if screen is not None:
            screen.show_report(self.doctor_report)
            screen.set_status(f"probe finished in {fmt_clock(message.seconds)} "
                              f"(r probes again)", "done")

    def _probe_nvml_now(self) -> None:
        from flashtui.monitor.nvml import probe_nvml

        try:
            self.nvml_state = probe_nvml().to_dict()
        except Exception as exc:
            self.nvml_state = {"available": False, "reason": f"NVML probe failed: {exc}"}

    @on(m.ProbeFailed)
    def _probe_failed(self, message: m.ProbeFailed) -> None:
        self.probe_running = False
        screen = self._doctor_screen()
        if screen is not None:
            screen.set_status(f"probe failed: {message.reason} (r tries again)", "error")
        self.notify(f"probe failed: {message.reason}", severity="error", title="doctor", timeout=10)

    # -------------------------------------------------------------- py-spy
    def _pyspy_panel(self) -> Any:
        return self.run_screen.pyspy_panel() if self.run_screen is not None else None

    def update_pyspy_sampling(self) -> None:
        """Sample frames only while a sweep runs, the py-spy tab shows and nothing records."""
        screen = self.run_screen
        visible = (screen is not None and screen.is_mounted and screen.active_tab == "pyspy")
        if visible and self.pyspy_fatal is None:
            from flashtui.monitor import pyspy

            if pyspy.find_pyspy() is None:
                self.pyspy_fatal = pyspy.INSTALL_HINT
        if visible and self.pyspy_fatal is not None:
            panel = self._pyspy_panel()
            if panel is not None:
                panel.show_hint(self.pyspy_fatal)
        wanted = (visible and self.sweep_running and self.pyspy_fatal is None
                  and self.recording_state is None)
        if self.pyspy_poller is not None:
            self.pyspy_poller.set_wanted(wanted)

    @on(m.PySpyFrames)
    def _pyspy_frames(self, message: m.PySpyFrames) -> None:
        panel = self._pyspy_panel()
        if panel is not None:
            panel.show_frames(message.hot)

    @on(m.PySpyStatus)
    def _pyspy_status(self, message: m.PySpyStatus) -> None:
        if message.fatal:
            self.pyspy_fatal = message.reason
            self.update_pyspy_sampling()
        panel = self._pyspy_panel()
        if panel is not None:
            panel.show_hint(message.reason)

    def action_toggle_record(self) -> None:
        """py-spy record: start on the worker (stops after RECORD_CELLS cells), or stop now."""
        from flashtui.monitor import pyspy
        from flashtui.tui.profiler import RECORD_CELLS, profile_path, start_recording

        if self.recording_state == "recording":
            self._stop_recording("stopped by you")
            return
        if self.recording_state is not None:
            self.notify(f"py-spy record is {self.recording_state}; a moment", timeout=3)
            return
        pid = self.bridge.worker_pid if self.bridge is not None else None
        if not self.sweep_running or self.session is None or pid is None:
            self.notify(f"start a sweep first: a recording covers its next {RECORD_CELLS} cells",
                        severity="warning", title="py-spy")
            return
        if pyspy.find_pyspy() is None:
            self.notify(pyspy.INSTALL_HINT, severity="warning", title="py-spy")
            return
        try:
            path = profile_path(self.session.id)
        except OSError as exc:
            self.notify(f"cannot create the profile file: {exc.strerror or exc}", severity="error")
            return
        self.recording_state = "starting"
        self.record_cells = []
        self.record_cells_left = RECORD_CELLS
        self._record_info = {"pid": pid, "session": self.session.id}
        self.update_pyspy_sampling()  # two tracers cannot attach at once: pause the panel
        self._record_text(f"● starting py-spy record on pid {pid}…", True)
        start_recording(pid, path, self.post_message)

    def _record_text(self, text: str | None, recording: bool = False) -> None:
        panel = self._pyspy_panel()
        if panel is not None:
            panel.set_record_text(text, recording)

    @on(m.RecordingStarted)
    def _recording_started(self, message: m.RecordingStarted) -> None:
        self.recording = message.recording
        self.recording_state = "recording"
        self._record_info["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self._record_text(f"● recording → {message.path} (p stops; stops after "
                          f"{self.record_cells_left} cells)", True)
        self._run_log("info", f"py-spy record started → {message.path} (timings of these cells "
                              "include py-spy's sampling pauses)")
        if not self.sweep_running:
            self._stop_recording("the sweep finished")

    def _stop_recording(self, why: str) -> None:
        from flashtui.tui.profiler import stop_recording

        recording, self.recording = self.recording, None
        if recording is None:
            return
        self.recording_state = "stopping"
        self._record_text("● stopping py-spy, writing the profile…", True)
        stop_recording(recording, {**self._record_info, "cells": list(self.record_cells), "stopped": why},
                       self.post_message)

    @on(m.RecordingStopped)
    def _recording_stopped(self, message: m.RecordingStopped) -> None:
        self.recording_state = None
        attachment = message.attachment
        summary = attachment.get("summary") or {}
        if self.session is not None:
            self.session.attachments["profile"] = attachment
            if self.journal is not None:
                try:
                    self.journal.update(attachments={"profile": attachment})
                except Exception as exc:
                    self._journal_failed(exc)
        text = (f"profile saved: {attachment['path']} ({summary.get('n_samples', 'NA')} samples, "
                f"{len(attachment.get('cells') or [])} cells; open it in speedscope.app)")
        self._record_text(text)
        self._run_log("info", text)
        self.notify(text, title="py-spy", timeout=8)
        self._after_recording()

    @on(m.RecordingFailed)
    def _recording_failed(self, message: m.RecordingFailed) -> None:
        self.recording_state = None
        self.recording = None
        self._record_text(f"✗ {message.reason}")
        self._run_log("error", f"py-spy record: {message.reason}")
        self.notify(message.reason, severity="error", title="py-spy record", timeout=10)
        self._after_recording()

    def _after_recording(self) -> None:
        if self._pending_journal_status is not None and not self.sweep_running:
            status, self._pending_journal_status = self._pending_journal_status, None
            self._close_journal(status)
        self.update_pyspy_sampling()

    # ------------------------------------------------------------- monitor
    @on(m.MonitorStatus)
    def _monitor_status(self, message: m.MonitorStatus) -> None:
        self.monitor_reason = None if message.available else (message.reason or "no samples")
        self._redraw_monitor()

    monitor_reason: str | None = None

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
        screen = self.run_screen
        if screen is None or not screen.is_mounted:
            return
        from flashtui.tui.widgets.memory_panel import MemoryPanel

        panels = list(screen.query("#memory-panel").results(MemoryPanel))
        if not panels or not panels[0].is_mounted:
            return
        panel = panels[0]
        trace = self.bridge.trace_snapshot() if self.bridge is not None else []
        panel.nvml_reason = None if trace else self.monitor_reason
        if trace:
            panel.show_sample(trace)

    # ------------------------------------------------------------- helpers
    def cell_dicts(self) -> tuple[dict[str, Any], ...]:
        """The session's cells as dicts (cached: asdict of every cell per update is O(n))."""
        if self.session is None:
            return ()
        cache: dict[tuple[str, int, str], dict[str, Any]] = self.__dict__.setdefault("_dict_cache", {})
        out = []
        for cell in self.session.cells:
            data = cache.get(cell.key)
            if data is None or data.get("_cell") is not cell:
                data = cell.to_dict()
                data["_cell"] = cell
                cache[cell.key] = data
            data["speedup_vs_standard"] = cell.speedup_vs_standard  # derived, may change
            out.append(data)
        return tuple(out)

    def _run_log(self, level: str, text: str) -> None:
        if self.run_screen is not None and self.run_screen.is_mounted:
            self.run_screen.log_line(level, text)

    def _tick_progress(self, final: bool = False) -> None:
        if self.run_screen is None or not self.run_screen.is_mounted:
            return
        elapsed = time.monotonic() - self.sweep_started_s if self.sweep_started_s else 0.0
        text = present.progress_text(self.sweep_done, self.sweep_total, elapsed)
        if final and self.sweep_done < self.sweep_total:
            text = f"{self.sweep_done}/{self.sweep_total} cells · stopped after {fmt_clock(elapsed)}"
        self.run_screen.set_progress(self.sweep_done, self.sweep_total or None, text)

    def _open_journal(self) -> None:
        if not self.use_journal or self.session is None:
            return
        try:
            from flashtui.store.index import open_journal

            self.journal = open_journal(self.session)
        except Exception as exc:
            self._journal_failed(exc)

    def _close_journal(self, status: str | None) -> None:
        journal, self.journal = self.journal, None
        if journal is None or self.session is None:
            if status and self.session is not None:
                self.session.finish(status)  # journaling off: the session still ends
            return
        try:
            if status:
                self.session.finish(status)
                journal.finish(self.session)
            journal.close()
        except Exception as exc:
            self._journal_failed(exc)
        self._storage_notice(journal)

    def _storage_notice(self, journal: Any) -> None:
        """A full disk or read-only data dir moved the session: say where, once."""
        notice = journal.new_warning() if hasattr(journal, "new_warning") else None
        if notice:
            self.notify(notice, severity="warning", title="storage", timeout=12)

    def _journal_failed(self, exc: BaseException) -> None:
        self.journal = None
        self.notify(f"session journal disabled: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                    severity="warning", title="storage")

    # ------------------------------------------------------------- actions
    async def action_run_again(self) -> None:
        if self.spec is None:
            self.action_back_to_setup()
            return
        await self.start_sweep(self.spec)

    def action_cancel_sweep(self) -> None:
        if self.bridge is None or not self.sweep_running:
            self.notify("no sweep is running", timeout=3)
            return
        self.bridge.cancel()
        self.notify("cancelling after the cell in flight…", timeout=3)
        self._run_log("info", "cancel requested")

    async def action_rerun_cell(self) -> None:
        if self.run_screen is None or self.spec is None:
            return
        key = self.run_screen.selected_cell_key()
        if key is None:
            self.notify("select a cell in the timing table first", severity="warning")
            return
        backend, seq, dtype = key.split("|")
        await self.start_sweep(self.spec, [CellKey(backend, int(seq), dtype)])

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
            path = save_screenshot(self, self.screenshot_dir)
        except (OSError, ValueError) as exc:
            self.notify(f"cannot save the screenshot: {getattr(exc, 'strerror', None) or exc}", severity="error")
            return
        self.notify(f"screenshot saved: {path}", title="screenshot", timeout=6)

    def action_export(self) -> None:
        if self.session is None or not self.session.cells:
            self.notify("nothing to export yet: run a sweep first", severity="warning")
            return
        from flashtui.tui.screens.export import ExportScreen, format_for_path

        def write(path: str | None) -> None:
            if not path or self.session is None:
                return
            try:
                from flashtui.reports import export_session
            except ImportError:
                self.notify("export is not available in this build", severity="error")
                return
            try:
                export_session(self.session, format_for_path(path) or "json", path)
            except Exception as exc:
                self.notify(f"export failed: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                            severity="error", title="export")
                return
            self.notify(f"exported to {path}", title="export", timeout=6)

        self.push_screen(ExportScreen(f"flashtui-{self.session.id}.html"), write)


def _pyspy_state() -> dict[str, Any]:
    """Whether py-spy is here, as the doctor report wants it."""
    from flashtui.monitor.pyspy import INSTALL_HINT, find_pyspy

    path = find_pyspy()
    return {"available": path is not None, "path": path, "reason": None if path else INSTALL_HINT}


def run_app(args: Any = None) -> int:
    """Entry point of ``flashtui`` / ``flashtui tui``."""
    app = FlashTuiApp()
    app.handle_hangup = True
    app.run()
    return int(app.return_code or 0)
