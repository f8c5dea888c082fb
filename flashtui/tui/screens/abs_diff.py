"""The distribution of |out − reference| for one cell, beside standard's: on demand (h)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from flashtui.tui.present_diff import distribution_text


class AbsDiffScreen(ModalScreen[None]):
    """Histogram, quantiles and a one-line verdict; Escape (or h, q) closes."""

    BINDINGS = [Binding("escape,h,q", "close", "Close")]

    def __init__(self, cell: dict[str, Any]) -> None:
        super().__init__(id="abs-diff")
        self.title_text, self.lines = distribution_text(cell)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="abs-diff-dialog") as box:
            box.border_title = self.title_text
            box.border_subtitle = "esc closes"
            yield Static("\n".join(self.lines), id="abs-diff-body", markup=False)
            yield Label("")

    def action_close(self) -> None:
        self.dismiss(None)
