"""py-spy panel: the worker's hottest Python lines while a sweep runs, and recordings.

A status line (what was sampled, or the one-line hint when py-spy cannot be used), a
table of frames (function, file:line, self %, total % of the sampled stacks) and a
line about ``py-spy record`` (p starts it; it stops after a few cells or on p again).
"""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from flashtui.core.units import NA, fmt_pct

COLUMNS = (("function", 28), ("file:line", 30), ("self %", 7), ("total %", 8))
IDLE_TEXT = ("py-spy samples the worker every 2 s while a sweep runs and this tab is open "
             "(each dump pauses the worker for a few ms)")
RECORD_IDLE_TEXT = "p: record a speedscope profile of the next cells (saved with the session)"


def pct(count: int, total: int) -> str:
    """A frame's share of the sampled stacks."""
    return fmt_pct(100.0 * count / total) if total else NA


class PySpyPanel(Vertical):
    """``show_frames(hot)``, ``show_hint(text)``, ``set_record_text(text)``."""

    def compose(self) -> ComposeResult:
        yield Label(IDLE_TEXT, id="pyspy-status")
        yield DataTable(id="pyspy-table", cursor_type="row", zebra_stripes=True)
        yield Label(RECORD_IDLE_TEXT, id="pyspy-record")

    def on_mount(self) -> None:
        table = self.query_one("#pyspy-table", DataTable)
        for name, width in COLUMNS:
            table.add_column(name, key=name, width=width)

    def show_frames(self, hot: Any) -> None:
        """Rows from a ``monitor.pyspy.HotFrames`` (hottest self first)."""
        if not self.is_mounted:
            return
        status = self.query_one("#pyspy-status", Label)
        status.remove_class("-hint")
        note = f" · stopped early: {hot.stopped_early}" if hot.stopped_early else ""
        status.update(f"worker pid {hot.pid} · {hot.n_dumps} dumps · {hot.n_stacks} busy stacks · "
                      f"{time.strftime('%H:%M:%S')}{note}")
        table = self.query_one("#pyspy-table", DataTable)
        table.clear()
        for frame in hot.frames:
            table.add_row(frame.name, frame.location, pct(frame.self_count, hot.n_stacks),
                          pct(frame.total_count, hot.n_stacks))

    def show_hint(self, text: str) -> None:
        """Why there are no frames (py-spy missing, ptrace refused, no worker): one line."""
        if self.is_mounted:
            status = self.query_one("#pyspy-status", Label)
            status.update(text)
            status.add_class("-hint")

    def set_record_text(self, text: str | None, recording: bool = False) -> None:
        if self.is_mounted:
            label = self.query_one("#pyspy-record", Label)
            label.update(text or RECORD_IDLE_TEXT)
            label.set_class(recording, "-recording")

    def frame_rows(self) -> list[tuple[str, ...]]:
        """The table's rows as text (tests)."""
        table = self.query_one("#pyspy-table", DataTable)
        return [tuple(str(v) for v in table.get_row(key)) for key in table.rows]
