"""Export modal: one input holding the destination; the format follows the suffix.

The path is checked before the dialog closes (``flashtui.store.atomic.check_output_path``):
a FIFO, a device, a directory, /proc or /sys, a missing or read-only directory is named
in the dialog, which stays open for another path.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

SUFFIX_FORMATS = {".json": "json", ".md": "md", ".markdown": "md", ".csv": "csv",
                  ".html": "html", ".htm": "html"}


def format_for_path(path: str) -> str | None:
    """'out/run.html' -> 'html'; None for a suffix no exporter writes."""
    lower = path.lower()
    for suffix, fmt in SUFFIX_FORMATS.items():
        if lower.endswith(suffix):
            return fmt
    return None


class ExportScreen(ModalScreen[str | None]):
    """Dismisses with the path typed (Enter) or None (Escape)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, default_path: str) -> None:
        super().__init__(id="export")
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog"):
            yield Label("Export session to (.html .md .csv .json), Enter to write, Esc to cancel")
            yield Input(self.default_path, id="export-path")
            yield Label("", id="export-error")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        if format_for_path(path) is None:
            self.query_one("#export-error", Label).update(
                "✗ the file name must end in .html, .md, .csv or .json")
            return
        from flashtui.store.atomic import StorageError, check_output_path

        try:  # a FIFO, device, directory or unwritable place: said here, the dialog stays
            check_output_path(path)
        except StorageError as exc:
            self.query_one("#export-error", Label).update(f"✗ {exc}")
            return
        self.dismiss(path)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
