"""Doctor screen: what this box can run, measured by the worker, and what to install.

The same report as ``flashtui doctor`` (flashtui.reports.doctor renders it, torch-free):
environment, the backend x dtype x head_dim capability matrix with each reason, the
labelled "fastest here" probe and the advice. The probe itself runs in the worker
(tiny kernels, seconds on CPU, minutes on a GPU where fa4/flex compile first); the app
asks the bridge for it and pushes progress lines, the matrix as its cells finish
(ProbeCellFinished) and the finished report in here. A first visit answers from the
doctor cache while the environment is unchanged (the status says how old; r probes again).
The screen holds no state: it is given the app's DoctorController (controllers.py),
whose report survives leaving and coming back, and shows what that holds.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalScroll, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from flashtui.reports.doctor import render_advice, render_environment, render_fastest, render_matrix_parts
from flashtui.tui.controllers import DoctorController
from flashtui.tui.widgets.footer import QuietFooter
from flashtui.tui.widgets.hanging import Hanging


def nvml_line(nvml: dict[str, Any] | None) -> str:
    """'NVML: ok, driver 550.54, 1 GPU(s)' or 'NVML unavailable: <why>'."""
    if nvml is None:
        return "NVML: checking…"
    if nvml.get("available"):
        names = ", ".join(nvml.get("device_names") or []) or "no name"
        return (f"NVML: ok, driver {nvml.get('driver_version')}, "
                f"{nvml.get('device_count')} GPU(s): {names}")
    return f"NVML unavailable: {nvml.get('reason')}"


class DoctorScreen(Screen):
    """Status line, NVML line, then the report's sections in a scrolling column."""

    BINDINGS = [
        Binding("r", "app.probe(True)", "Re-probe"),
        Binding("s", "app.screenshot", "Shot"),
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    def __init__(self, doctor: DoctorController) -> None:
        super().__init__(id="doctor")
        self.doctor = doctor

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("probe not run yet (r runs it)", id="doctor-status", markup=False)
        yield Static(nvml_line(None), id="doctor-nvml", markup=False)
        # Prose wraps at the screen's width; the matrix grid keeps its columns and scrolls
        # sideways in its own box (a wrapped grid cannot be read).
        with VerticalScroll(id="doctor-body"):
            for section, title in (("env", "environment"), ("matrix", "capability matrix"),
                                   ("fastest", "fastest here"), ("advice", "advice")):
                if section == "matrix":
                    with Vertical(id="doctor-matrix", classes="doctor-section") as box:
                        box.border_title = title
                        yield Static("", id="doctor-matrix-title", markup=False)
                        with HorizontalScroll(id="doctor-matrix-grid-box"):
                            yield Static("", id="doctor-matrix-grid", markup=False)
                        yield Static("", id="doctor-matrix-notes", markup=False)
                    continue
                static = Static("", id=f"doctor-{section}", classes="doctor-section", markup=False)
                static.border_title = title
                yield static
        yield QuietFooter()

    def on_mount(self) -> None:
        self.show_known()

    def on_screen_resume(self) -> None:
        self.show_known()

    def show_known(self) -> None:
        """What the doctor knows: the last report, or the environment from WorkerReady."""
        self.set_nvml(self.doctor.nvml)
        if self.doctor.status is not None:
            self.set_status(*self.doctor.status)
        if self.doctor.report is not None:
            self.show_report(self.doctor.report)
        elif self.doctor.ready is not None:
            self.show_environment(self.doctor.preview())
            if self.doctor.probe_running and self.doctor.cells:  # left mid-probe, back again
                progress, matrix = self.doctor.partial()
                self.show_matrix(matrix, progress)
        else:
            self.query_one("#doctor-env", Static).update("waiting for the worker to start…")

    # ------------------------------------------------------------ data in
    def set_status(self, text: str, state: str = "idle") -> None:
        """``state``: idle | running | done | error (a CSS class colours the line)."""
        if not self.is_mounted:
            return
        status = self.query_one("#doctor-status", Static)
        status.update(text)
        for name in ("running", "done", "error"):
            status.set_class(state == name, f"-{name}")

    def set_nvml(self, nvml: dict[str, Any] | None) -> None:
        if self.is_mounted:
            line = self.query_one("#doctor-nvml", Static)
            line.update(nvml_line(nvml))
            line.set_class(bool(nvml) and not nvml.get("available"), "-unavailable")

    def show_environment(self, report: dict[str, Any]) -> None:
        if self.is_mounted:
            self.query_one("#doctor-env", Static).update(Hanging(render_environment(report)))

    def show_report(self, report: dict[str, Any]) -> None:
        """Every section of a ``doctor_report.build_report`` object."""
        if not self.is_mounted:
            return
        self.show_environment(report)
        self.show_matrix(report.get("matrix"))
        self.query_one("#doctor-fastest", Static).update(Hanging(render_fastest(report.get("fastest"))))
        self.query_one("#doctor-advice", Static).update(Hanging(render_advice(report.get("advice") or [])))

    def show_matrix(self, matrix: dict[str, Any] | None, progress: str = "") -> None:
        """The matrix (while the probe runs: its cells so far, the others NA, and
        ``progress``, e.g. '5/81 cells probed')."""
        if not self.is_mounted:
            return
        title, grid, notes = render_matrix_parts(matrix)
        self.query_one("#doctor-matrix-title", Static).update(Hanging(f"{progress}\n{title}" if progress else title))
        self.query_one("#doctor-matrix-grid", Static).update(grid)
        self.query_one("#doctor-matrix-notes", Static).update(Hanging(notes))

    def matrix_text(self) -> str:
        return "\n".join(self._text(f"#doctor-matrix-{part}") for part in ("title", "grid", "notes"))

    def _text(self, selector: str) -> str:
        return str(self.query_one(selector, Static).content)

    def text(self) -> str:
        """Everything the report sections show, as plain text (tests, screen readers)."""
        parts = [self._text(f"#doctor-{s}") for s in ("status", "nvml", "env")]
        parts.append(self.matrix_text())
        parts += [self._text(f"#doctor-{s}") for s in ("fastest", "advice")]
        return "\n".join(parts)
