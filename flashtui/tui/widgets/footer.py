"""A Footer that rebuilds its keys only when the keys it shows change.

Textual's Footer re-composes (a dozen new FooterKey widgets, their CSS, a layout) on
every focus change, even when the visible bindings stay the same: while a sweep
streams, switching tabs or moving focus paid tens of milliseconds for an identical
footer. This one compares what it would show with what it shows and skips the rebuild
when nothing differs.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


class QuietFooter(Footer):
    """Footer whose ``bindings_changed`` re-composes only on a visible change."""

    _shown: Any = None

    def _visible_keys(self) -> tuple[Any, ...]:
        """What compose() would draw: each shown binding and its enabled state."""
        app = self.app
        active = self.screen.active_bindings
        palette = active.get(app.COMMAND_PALETTE_BINDING)
        return tuple(
            (binding.key, app.get_key_display(binding), binding.description, binding.action,
             binding.group, enabled, tooltip)
            for (_, binding, enabled, tooltip) in active.values()
            if binding.show or binding is (palette and palette.binding)
        ) + (self.show_command_palette, app.ENABLE_COMMAND_PALETTE)

    def compose(self) -> Any:
        if self._bindings_ready:
            self._shown = self._visible_keys()
        return super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        if (self._bindings_ready and screen.app.app_focus and self.is_attached
                and screen is self.screen and self._visible_keys() == self._shown):
            return
        super().bindings_changed(screen)
