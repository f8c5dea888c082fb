"""Quit while a sweep runs? A small modal: y quits (the journal records "cancelled"), n/Esc stays."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


class ConfirmQuitScreen(ModalScreen[bool]):
    """Dismisses with True (quit) or False (keep the sweep running)."""

    BINDINGS = [
        Binding("y,q", "answer(True)", "Quit"),
        Binding("n,escape", "answer(False)", "Stay"),
    ]

    def __init__(self, done: int, total: int | None) -> None:
        super().__init__(id="confirm-quit")
        self.done = done
        self.total = total

    def compose(self) -> ComposeResult:
        of = f"{self.done}/{self.total}" if self.total else str(self.done)
        with Vertical(id="confirm-quit-dialog"):
            yield Label(f"A sweep is running ({of} cells done). Quit anyway?", id="confirm-quit-text")
            yield Label("y: quit (finished cells stay in the session)   n / Esc: keep measuring")

    def action_answer(self, quit_app: bool) -> None:
        self.dismiss(quit_app)
