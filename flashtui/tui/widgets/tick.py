"""A checkbox whose state is readable without colour (NO_COLOR, monochrome terminals).

Textual's Checkbox draws the same "X" on and off and tells them apart by colour only;
this one draws "X" when checked and a blank when not.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class Tick(Checkbox):
    """Checkbox with a visible mark only when checked."""

    @property
    def _button(self) -> Content:
        inner = "X" if self.value else " "
        saved = Checkbox.BUTTON_INNER
        try:
            self.BUTTON_INNER = inner  # instance attribute shadows the class one
            return super()._button
        finally:
            self.BUTTON_INNER = saved
