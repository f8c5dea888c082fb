"""The distribution of |out − reference| for one cell, beside standard's: on demand (h)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalScroll, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from flashtui.tui.present_diff import distribution_parts
from flashtui.tui.widgets.hanging import Hanging


class AbsDiffScreen(ModalScreen[None]):
    """Histogram, quantiles and a one-line verdict; Escape (or h, q) closes."""

    BINDINGS = [Binding("escape,h,q", "close", "Close")]

    def __init__(self, cell: dict[str, Any]) -> None:
        super().__init__(id="abs-diff")
        self.title_text, self.head, self.histogram, self.tail = distribution_parts(cell)

    def compose(self) -> ComposeResult:
        # Prose wraps at the dialog's width; the histogram keeps its columns and scrolls sideways.
        with VerticalScroll(id="abs-diff-dialog") as box:
            box.border_title = self.title_text
            box.border_subtitle = "esc closes"
            yield Static(Hanging("\n".join(self.head)), id="abs-diff-head", classes="abs-diff-prose", markup=False)
            if self.histogram:
                with HorizontalScroll(id="abs-diff-histogram-box"):
                    yield Static("\n".join(self.histogram), id="abs-diff-body", markup=False)
            if self.tail:
                yield Static(Hanging("\n".join(self.tail)), id="abs-diff-tail", classes="abs-diff-prose", markup=False)
            yield Label("")

    def text(self) -> str:
        """Title and body as plain text, in reading order (tests, screen readers)."""
        return "\n".join([self.title_text, *self.head, *self.histogram, *self.tail])

    def action_close(self) -> None:
        self.dismiss(None)
