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

import os
import time
from pathlib import Path
from typing import Any, Callable

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import BUILTIN_THEMES

from ..results import Cell
from ..session import Session
from ..spec import CellKey, SweepSpec, cpu_defaults, cuda_defaults
from . import messages as m
from . import present
from .bridge import WorkerBridge
from .config import TuiConfig, config_dir, load_config, save_config
from .screens.setup import SetupScreen
from .themes import FALLBACK_THEME, load_themes

# Redraw the memory sparkline at most this often, however fast samples come.
SAMPLE_REDRAW_MIN_INTERVAL_S = 0.25
# Push finished cells into the three tables at most this often (a burst of cells, or a
# re-run that changes every speedup, becomes one redraw instead of many).
CELLS_REDRAW_MIN_INTERVAL_S = 0.2


def default_worker_factory() -> Any:
    from ..client import WorkerClient

    return WorkerClient()


def default_sampler_factory(ready: dict[str, Any]) -> Any:
    """An NVML sampler aimed at the worker's device (it reports its own 'why not')."""
    from ..monitor import nvml

    hint = nvml.device_hint_from_provenance(ready.get("provenance"))
    return nvml.NvmlSampler(**hint)


class FlashTuiApp(App[int]):
    """The flashtui terminal UI."""

    # Absolute, so subclasses defined elsewhere (tests, benchmarks) find it too.
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "flashtui"
    SUB_TITLE = "what does FlashAttention buy me here?"
    BINDINGS = [Binding("ctrl+t", "cycle_theme", "Theme", show=False)]

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
        self.setup_screen = SetupScreen(self.defaults())
        self.push_screen(self.setup_screen)
        for line in ([config_error] if config_error else []) + theme_errors:
            self.notify(line, severity="warning", title="settings", timeout=8)
        if self.worker_factory is not None:
            self.bridge = WorkerBridge(self.worker_factory(), self.post_message, self.sampler_factory)
            # After the first frame: the worker's interpreter and torch import compete
            # for the same cores, and the user should see the form at once.
            self.call_after_refresh(self.bridge.start)

    def on_unmount(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
        self._close_journal("cancelled" if self.sweep_running else None)

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
        from .screens.run import RunScreen

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
        self.session.add_cell(cell)
        self.sweep_done += 1
        if self.journal is not None:
            try:
                self.journal.append_cell(cell)
            except Exception as exc:
                self._journal_failed(exc)
        data = cell.to_dict()
        self._run_log("info" if cell.status == "ok" else "error",
                      f"{cell.backend} seq={cell.seq} {cell.dtype}: "
                      f"{present.fmt_ms_iqr(cell.median_ms, cell.iqr_ms)} · {present.status_text(data)}")
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
        self._close_journal(status)
        if self.run_screen is not None:
            self.run_screen.set_now(f"sweep {status}")
        self._run_log("info", f"■ sweep {status}")
        self.notify(f"sweep {status}", severity="warning" if cancelled else "information", timeout=4)

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
        from .widgets.memory_panel import MemoryPanel

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
            text = f"{self.sweep_done}/{self.sweep_total} cells · stopped after {present.fmt_duration(elapsed)}"
        self.run_screen.set_progress(self.sweep_done, self.sweep_total or None, text)

    def _open_journal(self) -> None:
        if not self.use_journal or self.session is None:
            return
        try:
            from ..store import open_journal

            self.journal = open_journal(self.session)
        except Exception as exc:
            self._journal_failed(exc)

    def _close_journal(self, status: str | None) -> None:
        journal, self.journal = self.journal, None
        if journal is None or self.session is None:
            return
        try:
            if status:
                self.session.finish(status)
                journal.finish(self.session)
            journal.close()
        except Exception as exc:
            self._journal_failed(exc)

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
        try:
            path = self.save_screenshot(path=self.screenshot_dir)
        except OSError as exc:
            self.notify(f"cannot save the screenshot: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"screenshot saved: {path}", title="screenshot", timeout=6)

    def action_export(self) -> None:
        if self.session is None or not self.session.cells:
            self.notify("nothing to export yet: run a sweep first", severity="warning")
            return
        from .screens.export import ExportScreen, format_for_path

        def write(path: str | None) -> None:
            if not path or self.session is None:
                return
            try:
                from ..export import export_session
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


def run_app(args: Any = None) -> int:
    """Entry point of ``flashtui`` / ``flashtui tui``."""
    app = FlashTuiApp()
    app.run()
    return int(app.return_code or 0)
