"""Run screen: side-by-side panels that fill in as cells finish.

Live tab: timing | parity on top, memory | log below (one column, scrolling, on
narrow terminals). Charts tab: the four plots of the seed notebook. A progress bar
with ETA sits above both. The screen holds no state of its own: the app pushes cells,
samples and log lines into the panels' reactive attributes, and hears of tab changes
through a posted :class:`~flashtui.tui.messages.RunTabShown`.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Label, ProgressBar, Static, TabbedContent, TabPane

from flashtui.core.spec import CellKey
from flashtui.tui import messages as m
from flashtui.tui import present
from flashtui.tui.gc_tuning import freeze_long_lived
from flashtui.tui.widgets.cell_tables import ParityTable, TimingTable
from flashtui.tui.widgets.chart_loader import charts_panel_class
from flashtui.tui.widgets.footer import QuietFooter
from flashtui.tui.widgets.log_panel import WorkerLog
from flashtui.tui.widgets.memory_panel import MemoryPanel
from flashtui.tui.widgets.pyspy_panel import PySpyPanel

NARROW_WIDTH = 120
# Below this the timing table keeps backend, seq, median, speedup and a status marker.
TIMING_NARROW_WIDTH = 100


def _quiet_when_gone(method: Any) -> Any:
    """Make a data-in method a no-op when its widgets are not (or no longer) mounted."""

    def wrapper(self: "RunScreen", *args: Any, **kwargs: Any) -> Any:
        if not self.is_mounted:
            return None
        try:
            return method(self, *args, **kwargs)
        except NoMatches:
            return None

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class RunScreen(Screen):
    """Bindings act on the app (run, cancel, re-run, restart, export, screenshot, theme)."""

    BINDINGS = [
        Binding("r", "app.run_again", "Run"),
        Binding("c", "app.cancel_sweep", "Cancel"),
        Binding("x", "app.rerun_cell", "Re-run"),
        Binding("R", "app.restart_worker", "Restart"),
        Binding("e", "app.export", "Export"),
        Binding("s", "app.screenshot", "Shot"),
        Binding("t", "app.cycle_theme", "Theme"),
        Binding("g", "toggle_charts", "Charts"),
        Binding("y", "toggle_pyspy", "py-spy"),
        Binding("h", "show_abs_diff", "|diff|"),
        Binding("p", "app.toggle_record", "Profile"),
        Binding("escape,b", "app.back_to_setup", "Setup"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    # Kept in the footer on a narrow terminal (the rest drop out, still in the palette).
    FOOTER_ESSENTIAL = ("app.run_again", "app.cancel_sweep", "toggle_charts", "app.request_quit")

    def __init__(self) -> None:
        super().__init__(id="run")
        self._charts_built = False
        self._cells: tuple[dict[str, Any], ...] = ()  # as last pushed by the app

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=None, show_eta=False, show_percentage=True, id="progress")
            yield Label("idle", id="progress-text")
        yield Static("", id="now-running")
        with TabbedContent(id="run-tabs", initial="live"):
            with TabPane("Live", id="live"):
                with Grid(id="panels"):
                    with Vertical(classes="panel", id="timing-panel") as panel:
                        panel.border_title = "timing (median ± IQR)"
                        yield TimingTable(id="timing-table")
                    with Vertical(classes="panel", id="parity-panel") as panel:
                        panel.border_title = "parity vs fp64"
                        yield ParityTable(id="parity-table")
                    memory = MemoryPanel(classes="panel", id="memory-panel")
                    memory.border_title = "memory"
                    yield memory
                    with Vertical(classes="panel", id="log-panel") as panel:
                        panel.border_title = "worker log"
                        yield WorkerLog(id="worker-log")
            with TabPane("Charts", id="charts"):
                yield Vertical(id="charts-host")
            with TabPane("py-spy", id="pyspy"):
                yield PySpyPanel(id="pyspy-panel")
        yield QuietFooter()

    def on_mount(self) -> None:
        self._apply_width(self.app.size.width)
        # Build the charts while the user looks at the live tab, so the first switch
        # to Charts does not pay for importing plotext and composing four plots.
        self.set_timer(0.3, self.ensure_charts)

    def on_resize(self, event: Any) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.set_class(width < NARROW_WIDTH, "-narrow")
        for table in self.query("#timing-table"):
            table.narrow = width < TIMING_NARROW_WIDTH  # type: ignore[attr-defined]

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "charts":
            self.ensure_charts()
        self.post_message(m.RunTabShown(str(event.pane.id)))

    @property
    def active_tab(self) -> str | None:
        """'live', 'charts' or 'pyspy' (None before the tabs are mounted)."""
        try:
            return self.query_one("#run-tabs", TabbedContent).active
        except NoMatches:
            return None

    def action_toggle_pyspy(self) -> None:
        tabs = self.query_one("#run-tabs", TabbedContent)
        tabs.active = "live" if tabs.active == "pyspy" else "pyspy"

    @_quiet_when_gone
    def pyspy_panel(self) -> PySpyPanel | None:
        return self.query_one("#pyspy-panel", PySpyPanel)

    def ensure_charts(self) -> Any:
        """Build the charts on first view (plotext is imported only then).

        Returns the panel, or None when the charts cannot be built (the tab then
        shows why, in one line).
        """
        if not self._charts_built:
            self._charts_built = True
            self._pending_chart_cells = None
            # The app's long-lived objects exist once these are up: freeze them out of
            # the collector's way (gc_tuning says why).
            self.call_after_refresh(freeze_long_lived)
            panel_class, reason = charts_panel_class()
            host = self.query_one("#charts-host", Vertical)
            if panel_class is None:
                host.mount(Static(reason or "charts unavailable", id="charts-unavailable"))
                return None
            charts = panel_class(id="charts-panel")
            charts.cells = self._cells
            ready = getattr(getattr(self.app, "sweep", None), "ready", None)
            charts.device_name = (getattr(ready, "provenance", None) or {}).get("device_name")
            host.mount(charts)
            return charts
        if self.active_tab == "charts":
            self._push_chart_cells()
        panels = list(self.query("#charts-panel"))
        return panels[0] if panels else None

    _pending_chart_cells: Any = None

    def _push_chart_cells(self) -> None:
        """Hand the charts the cells that arrived while they were hidden (if any)."""
        cells, self._pending_chart_cells = self._pending_chart_cells, None
        if cells is not None:
            for charts in self.query("#charts-panel"):
                charts.cells = cells  # type: ignore[attr-defined]

    def action_show_abs_diff(self) -> None:
        """The selected cell's |out − reference| distribution beside standard's."""
        from flashtui.tui.screens.abs_diff import AbsDiffScreen

        key = self.selected_cell_key()
        row_key = key.row_key() if key is not None else None
        cell = next((c for c in self._cells if present.cell_key(c) == row_key), None)
        if cell is None:
            self.notify("select a measured cell in the timing table first", severity="warning")
            return
        self.app.push_screen(AbsDiffScreen({k: v for k, v in cell.items() if k != "_cell"}))

    def show_tab(self, tab: str) -> None:
        """Show 'live', 'charts' or 'pyspy'."""
        tabs = self.query_one("#run-tabs", TabbedContent)
        tabs.active = tab
        if tab == "charts":
            self.ensure_charts()

    def action_toggle_charts(self) -> None:
        tabs = self.query_one("#run-tabs", TabbedContent)
        tabs.active = "live" if tabs.active == "charts" else "charts"
        if tabs.active == "charts":
            self.ensure_charts()

    # ------------------------------------------------------------ data in
    # Events can still arrive while the app shuts down and the screen's widgets are
    # gone; each method below is then a no-op, never an exception in the UI.
    def show_cells(self, cells: tuple[dict[str, Any], ...]) -> None:
        """The session's cells as dicts (SweepController.cell_dicts)."""
        self._cells = cells
        self._fill_tables(cells)

    @_quiet_when_gone
    def _fill_tables(self, cells: tuple[dict[str, Any], ...]) -> None:
        self.query_one("#timing-table", TimingTable).cells = cells
        self.query_one("#parity-table", ParityTable).cells = cells
        self.query_one("#memory-panel", MemoryPanel).query_one("#memory-table").cells = cells  # type: ignore[attr-defined]
        # plotext redraws all four figures from scratch: only for a visible Charts tab.
        # Hidden, the cells wait and are pushed when the tab is shown (ensure_charts).
        self._pending_chart_cells = cells
        if self._charts_built and self.active_tab == "charts":
            self._push_chart_cells()

    @_quiet_when_gone
    def show_monitor(self, trace: list[Any], reason: str | None) -> None:
        """The NVML trace (oldest sample first), or why there is none."""
        panel = self.query_one("#memory-panel", MemoryPanel)
        if not panel.is_mounted:
            return
        panel.nvml_reason = None if trace else reason
        if trace:
            panel.show_sample(trace)

    @_quiet_when_gone
    def set_progress(self, done: int, total: int | None, text: str) -> None:
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=total, progress=done)
        # Fixed 1-line, 1fr-wide labels: new text needs a repaint, not a screen layout.
        self.query_one("#progress-text", Label).update(text, layout=False)

    @_quiet_when_gone
    def set_now(self, text: str) -> None:
        self.query_one("#now-running", Static).update(text, layout=False)

    @_quiet_when_gone
    def log_line(self, level: str, text: str) -> None:
        self.query_one("#worker-log", WorkerLog).append(level, text)

    @_quiet_when_gone
    def selected_cell_key(self) -> CellKey | None:
        return self.query_one("#timing-table", TimingTable).selected_key
