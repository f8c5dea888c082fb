"""Memory panel: the live NVML trace (or why there is none) above the per-cell table."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Label, Sparkline

from flashtui.tui import present
from flashtui.tui.widgets.cell_tables import MemoryTable


class MemoryPanel(Vertical):
    """``trace_bytes`` drives the sparkline; ``nvml_reason`` (when set) replaces it."""

    trace_bytes: reactive[tuple[float, ...]] = reactive((), always_update=True, init=False)
    nvml_reason: reactive[str | None] = reactive(None, init=False)
    latest_label: reactive[str] = reactive("", init=False)

    def compose(self) -> ComposeResult:
        yield Label(self._status_text(), id="nvml-status")
        yield Sparkline([], id="nvml-trace")
        yield MemoryTable(id="memory-table")

    def _status_text(self) -> str:
        if self.nvml_reason:
            return f"NVML unavailable: {self.nvml_reason}"
        return self.latest_label or "NVML: waiting for samples"

    def on_mount(self) -> None:
        self.query_one("#nvml-trace", Sparkline).display = False

    def watch_nvml_reason(self, reason: str | None) -> None:
        if not self.is_mounted:
            return
        self.query_one("#nvml-status", Label).update(self._status_text())
        self.query_one("#nvml-trace", Sparkline).display = not reason

    def watch_latest_label(self, label: str) -> None:
        # The status line is one row, 1fr wide: a new reading is a repaint, not a layout.
        if self.is_mounted and not self.nvml_reason:
            self.query_one("#nvml-status", Label).update(self._status_text(), layout=False)

    def watch_trace_bytes(self, trace: tuple[float, ...]) -> None:
        if not self.is_mounted:
            return
        sparkline = self.query_one("#nvml-trace", Sparkline)
        sparkline.data = list(trace)

    def show_sample(self, trace: list[Any]) -> None:
        """Redraw from the sampler history (oldest first)."""
        values = tuple(float(s.mem_used_bytes) for s in trace if getattr(s, "mem_used_bytes", None) is not None)
        if trace:
            last = trace[-1]
            self.latest_label = present.memory_trace_label(
                getattr(last, "mem_used_bytes", None), getattr(last, "mem_total_bytes", None),
                getattr(last, "proc_mem_bytes", None))
        self.trace_bytes = values
