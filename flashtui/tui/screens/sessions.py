"""Sessions: the journaled sweeps in the store; open one, compare two, export one.

* :class:`SessionsScreen` lists ``flashtui.store.index.list_sessions()`` (newest first). A file
  the store cannot read is a row saying "unreadable" with the store's reason (shown in
  full under the table), never an exception.
* :class:`SessionViewScreen` shows one loaded session read-only in the Run screen's
  panels (timing, parity, memory tables; the charts on a second tab).
* :class:`DiffScreen` shows ``flashtui.reports.diff.diff_sessions(a, b)``: every matched cell
  with B/A ratios, regressions flagged in words (not only colour), and what changed
  in provenance and spec, since that usually explains a difference.

Nothing here runs the worker; loading and diffing are the store's and diff's pure code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static, TabbedContent, TabPane

from flashtui.store import index as store
from flashtui.reports.diff import SessionDiff, diff_sessions
from flashtui.core.session import Session
from flashtui.core.units import NA, fmt_bytes, fmt_ms, fmt_ratio
from flashtui.tui.widgets.cell_tables import MemoryTable, ParityTable, TimingTable
from flashtui.tui.widgets.chart_loader import charts_panel_class
from flashtui.tui.widgets.footer import QuietFooter

SELECTED_MARK = "●"
REGRESSION_MARK = "▲ "
SESSION_COLUMNS = ("", "id", "date", "device", "mode", "cells ok/all", "best speedup", "status")
DIFF_COLUMNS = ("backend", "seq", "dtype", "A median", "B median", "B/A time", "A peak", "B peak",
                "B/A mem", "verdict")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def fmt_date(stamp: str | None) -> str:
    """'2025-01-02T03:04:05+00:00' -> '2025-01-02 03:04'; None -> 'NA'."""
    if not stamp:
        return NA
    return stamp.replace("T", " ")[:16]


def summary_row(summary: store.SessionSummary, selected: bool) -> tuple[str, ...]:
    """One row of the sessions table (an unreadable file says so, with the reason)."""
    status = summary.status
    if summary.error:
        status = f"unreadable: {summary.error}"
    elif summary.warnings:
        status = f"{status} ({summary.warnings} warning{'s' if summary.warnings != 1 else ''})"
    best = fmt_ratio(summary.best_speedup)
    return (SELECTED_MARK if selected else " ", summary.id, fmt_date(summary.created_at),
            summary.device or NA, summary.mode or NA,
            f"{summary.n_ok}/{summary.n_cells}", best, status)


def session_cells(session: Session) -> tuple[dict[str, Any], ...]:
    """The cells as the panels take them (dicts with speedups filled)."""
    return tuple(cell.to_dict() for cell in session.cells)


def diff_row(cell: Any) -> tuple[str, ...]:
    def median(status: str, value: float | None) -> str:
        return fmt_ms(value) if status == "ok" else status

    verdict = cell.verdict
    if cell.regressions:
        verdict = REGRESSION_MARK + verdict
    return (cell.backend, str(cell.seq), cell.dtype, median(cell.a_status, cell.a_median_ms),
            median(cell.b_status, cell.b_median_ms), fmt_ratio(cell.time_ratio),
            fmt_bytes(cell.a_peak_alloc_bytes), fmt_bytes(cell.b_peak_alloc_bytes),
            fmt_ratio(cell.mem_ratio), verdict)


def diff_summary(diff: SessionDiff) -> str:
    n = len(diff.regressions)
    head = (f"B {diff.b_id} against baseline A {diff.a_id}; a regression is B/A above "
            f"{1 + diff.threshold:.2f}x (time or memory) or a cell that stopped running")
    if n:
        return f"{head}\n{REGRESSION_MARK}{n} regression{'s' if n != 1 else ''}: " + ", ".join(
            c.key.label() for c in diff.regressions)
    return f"{head}\nno regressions in {len(diff.cells)} matched cells"


def diff_context(diff: SessionDiff) -> str:
    """Changed provenance/spec keys and one-sided cells; empty when there are none."""
    lines = []
    if diff.provenance_changes:
        lines.append("provenance changed: " + "; ".join(
            f"{k}: {a if a is not None else NA} -> {b if b is not None else NA}"
            for k, a, b in diff.provenance_changes))
    if diff.spec_changes:
        lines.append("spec changed (cells may not be comparable): " + "; ".join(
            f"{k}: {a!r} -> {b!r}" for k, a, b in diff.spec_changes))
    if diff.only_in_a:
        lines.append("only in A: " + ", ".join(k.label() for k in diff.only_in_a))
    if diff.only_in_b:
        lines.append("only in B: " + ", ".join(k.label() for k in diff.only_in_b))
    return "\n".join(lines)


class SessionsScreen(Screen):
    """The store's sessions in a table; space marks up to two for comparing."""

    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("space", "toggle_select", "Select"),
        Binding("c", "compare", "Compare"),
        Binding("e", "export", "Export"),
        Binding("r", "reload", "Refresh"),
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__(id="sessions")
        self.summaries: list[store.SessionSummary] = []
        self.selected: list[str] = []  # ids, in the order they were marked
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("enter open · space select two · c compare (A = older) · e export · r refresh",
                     id="sessions-help", markup=False)
        yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="sessions-detail", markup=False)
        yield QuietFooter()

    def on_mount(self) -> None:
        table = self.query_one("#sessions-table", DataTable)
        for name in SESSION_COLUMNS:
            table.add_column(name, key=name or "mark")
        table.focus()
        self.action_reload()

    # ------------------------------------------------------------- listing
    def action_reload(self) -> None:
        """Re-read the store in a thread (a store of many long sessions takes a moment)."""
        self.query_one("#sessions-detail", Static).update(f"reading {store.sessions_dir()}…")
        self.run_worker(self._list, thread=True, exclusive=True, group="list-sessions")

    def _list(self) -> None:
        try:
            summaries, error = store.list_sessions(), None
        except Exception as exc:  # an unreadable directory: say so, keep the screen
            summaries, error = [], f"cannot list sessions: {_one_line(exc)}"
        self.app.call_from_thread(self.show_summaries, summaries, error)

    def show_summaries(self, summaries: list[store.SessionSummary], error: str | None = None) -> None:
        if not self.is_mounted:
            return
        self.summaries = summaries
        ids = {s.id for s in summaries}
        self.selected = [i for i in self.selected if i in ids]
        table = self.query_one("#sessions-table", DataTable)
        table.clear()
        for summary in summaries:
            table.add_row(*summary_row(summary, summary.id in self.selected), key=summary.id)
        self.loaded = True
        if error:
            self._detail(error)
        elif not summaries:
            self._detail(f"no sessions yet in {store.sessions_dir()}; run a sweep (they are journaled)")
        else:
            self._show_detail_for_cursor()

    def _detail(self, text: str) -> None:
        self.query_one("#sessions-detail", Static).update(text)

    def current(self) -> store.SessionSummary | None:
        table = self.query_one("#sessions-table", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None
        return next((s for s in self.summaries if s.id == key), None)

    @on(DataTable.RowSelected, "#sessions-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    @on(DataTable.RowHighlighted, "#sessions-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail_for_cursor()

    def _show_detail_for_cursor(self) -> None:
        summary = self.current()
        if summary is None:
            return
        if summary.error:
            self._detail(f"{summary.path}\nunreadable: {summary.error}")
            self.query_one("#sessions-detail").add_class("-error")
            return
        self.query_one("#sessions-detail").remove_class("-error")
        best = (f"best {fmt_ratio(summary.best_speedup)} at {summary.best_speedup_at}"
                if summary.best_speedup_at else "no speedup measured")
        # The file name, not the full path: the store's folder is in the empty-store line.
        self._detail(f"{Path(summary.path).name}\n{best} · {len(self.selected)} selected")

    # ------------------------------------------------------------- actions
    def action_toggle_select(self) -> None:
        summary = self.current()
        if summary is None:
            return
        if summary.id in self.selected:
            self.selected.remove(summary.id)
        else:
            if summary.error:
                self.notify(f"{summary.id} is unreadable: {summary.error}", severity="warning")
                return
            self.selected.append(summary.id)
            if len(self.selected) > 2:
                self.selected.pop(0)  # keep the two most recent picks
        table = self.query_one("#sessions-table", DataTable)
        for s in self.summaries:
            mark = SELECTED_MARK if s.id in self.selected else " "
            if table.get_cell(s.id, "mark") != mark:
                table.update_cell(s.id, "mark", mark)
        self._show_detail_for_cursor()

    def _load(self, summary: store.SessionSummary) -> Session | None:
        """Load one session; a failure is one notification line, never a traceback."""
        if summary.error:
            self.notify(f"{summary.id} is unreadable: {summary.error}", severity="error", title="sessions")
            return None
        try:
            session, warnings = store.load(summary.path)
        except Exception as exc:
            self.notify(f"cannot open {summary.id}: {_one_line(exc)}", severity="error", title="sessions")
            return None
        if warnings:
            self.notify(f"{summary.id}: {warnings[0]}" + (f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""),
                        severity="warning", title="loaded with warnings", timeout=8)
        return session

    def action_open(self) -> None:
        summary = self.current()
        if summary is None:
            self.notify("no session to open", severity="warning")
            return
        session = self._load(summary)
        if session is not None:
            self.app.push_screen(SessionViewScreen(session))

    def action_compare(self) -> None:
        if len(self.selected) != 2:
            self.notify(f"select two sessions with space to compare ({len(self.selected)} selected)",
                        severity="warning")
            return
        chosen = [s for s in self.summaries if s.id in self.selected]
        chosen.sort(key=lambda s: (store._normalized_time(s.created_at), s.id))  # A = older baseline
        loaded = [self._load(s) for s in chosen]
        if any(s is None for s in loaded):
            return
        a, b = loaded
        try:
            diff = diff_sessions(a, b)  # type: ignore[arg-type]
        except Exception as exc:
            self.notify(f"cannot compare: {_one_line(exc)}", severity="error")
            return
        self.app.push_screen(DiffScreen(diff))

    def action_export(self) -> None:
        summary = self.current()
        if summary is None:
            self.notify("no session to export", severity="warning")
            return
        session = self._load(summary)
        if session is not None:
            export_with_dialog(self.app, session)


def export_with_dialog(app: Any, session: Session) -> None:
    """The Export modal, then ``flashtui.reports.export_session`` (errors: one line)."""
    from flashtui.tui.screens.export import ExportScreen, format_for_path

    if not session.cells:
        app.notify("this session has no cells to export", severity="warning")
        return

    def write(path: str | None) -> None:
        if not path:
            return
        try:
            from flashtui.reports import export_session

            export_session(session, format_for_path(path) or "json", path)
        except Exception as exc:
            app.notify(f"export failed: {_one_line(exc)}", severity="error", title="export")
            return
        # Under flashtui serve the file also goes to the browser as a download.
        deliver = getattr(app, "deliver_to_browser", None)
        sent = deliver(path, "export") if deliver is not None else ""
        app.notify(f"exported to {path}{sent}", title="export", timeout=6)

    app.push_screen(ExportScreen(f"flashtui-{session.id}.html"), write)


class SessionViewScreen(Screen):
    """One stored session, read-only, in the Run screen's tables and charts."""

    BINDINGS = [
        Binding("g", "toggle_charts", "Charts"),
        Binding("e", "export", "Export"),
        Binding("s", "app.screenshot", "Shot"),
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(id="session-view")
        self.session = session
        self.cells = session_cells(session)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        s = self.session
        device = s.provenance.get("device_name") or s.spec.get("device") or NA
        yield Static(f"{s.id} · {fmt_date(s.created_at)} · {device} · {s.spec.get('mode', NA)} · "
                     f"{len(s.cells)} cells · {s.status} (read-only)", id="session-info", markup=False)
        with TabbedContent(id="view-tabs", initial="view-tables"):
            with TabPane("Tables", id="view-tables"):
                with Grid(id="view-panels"):
                    for title, cls, wid in (("timing (median ± IQR)", TimingTable, "view-timing"),
                                            ("parity vs fp64", ParityTable, "view-parity"),
                                            ("memory", MemoryTable, "view-memory")):
                        wide = " -wide" if wid == "view-memory" else ""
                        with Vertical(classes="panel" + wide) as panel:
                            panel.border_title = title
                            yield cls(id=wid)
            with TabPane("Charts", id="view-charts"):
                yield Vertical(id="view-charts-host")
        yield QuietFooter()

    def on_mount(self) -> None:
        for cls, wid in ((TimingTable, "#view-timing"), (ParityTable, "#view-parity"),
                         (MemoryTable, "#view-memory")):
            self.query_one(wid, cls).cells = self.cells
        self.set_class(self.app.size.width < 120, "-narrow")

    def on_resize(self, event: Any) -> None:
        self.set_class(event.size.width < 120, "-narrow")

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "view-charts":
            self._ensure_charts()

    def _ensure_charts(self) -> None:
        host = self.query_one("#view-charts-host", Vertical)
        if not host.children:
            panel_class, reason = charts_panel_class()
            if panel_class is None:
                host.mount(Static(reason or "charts unavailable", id="view-charts-unavailable"))
                return
            charts = panel_class(id="view-charts-panel")
            # The session's own GPU decides the roofline, as on the Run screen.
            charts.device_name = self.session.provenance.get("device_name")
            charts.cells = self.cells
            host.mount(charts)

    def action_toggle_charts(self) -> None:
        tabs = self.query_one("#view-tabs", TabbedContent)
        tabs.active = "view-charts" if tabs.active == "view-tables" else "view-tables"
        if tabs.active == "view-charts":
            self._ensure_charts()

    def action_export(self) -> None:
        export_with_dialog(self.app, self.session)


class DiffScreen(Screen):
    """Session B against baseline A, cell by cell; regressions named in the summary."""

    BINDINGS = [
        Binding("s", "app.screenshot", "Shot"),
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    def __init__(self, diff: SessionDiff) -> None:
        super().__init__(id="diff")
        self.diff = diff

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        summary = Static(diff_summary(self.diff), id="diff-summary", markup=False)
        summary.set_class(bool(self.diff.regressions), "-regression")
        yield summary
        context = diff_context(self.diff)
        yield Static(context, id="diff-context", markup=False, classes="" if context else "-empty")
        yield DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)
        yield QuietFooter()

    def on_mount(self) -> None:
        table = self.query_one("#diff-table", DataTable)
        for name in DIFF_COLUMNS:
            table.add_column(name, key=name)
        for cell in self.diff.cells:
            table.add_row(*diff_row(cell), key=cell.key.row_key())
        table.focus()
