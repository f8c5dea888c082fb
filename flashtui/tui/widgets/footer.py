"""A Footer that rebuilds its keys only when the keys it shows change.

Textual's Footer re-composes (a dozen new FooterKey widgets, their CSS, a layout) on
every focus change, even when the visible bindings stay the same: while a sweep
streams, switching tabs or moving focus paid tens of milliseconds for an identical
footer. This one compares what it would show with what it shows and skips the rebuild
when nothing differs.

It also fits the terminal: when every key does not fit, the screen's
``FOOTER_ESSENTIAL`` actions (Run, Cancel, Charts, Quit...) are kept first, then the
other keys in order while they fit, and the palette key always; a key is dropped
whole, never cut. Dropped keys still work and are all in the palette (ctrl+p).
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


def key_width(key_display: str, description: str) -> int:
    """Cells a footer key takes: ' r Run ' (padding, key, space, label, padding)."""
    return len(key_display) + len(description) + 3


def fit_keys(keys: list[tuple[str, int]], essential: tuple[str, ...], width: int) -> set[str]:
    """Which actions of ``keys`` ((action, width) in footer order) fit into ``width``:
    the essential ones first, then the others in order while they fit."""
    if sum(w for _, w in keys) <= width:
        return {action for action, _ in keys}
    kept: set[str] = set()
    used = 0
    for pass_essential in (True, False):
        for action, w in keys:
            if (action in essential) != pass_essential or action in kept:
                continue
            if used + w <= width or pass_essential:
                kept.add(action)
                used += w
    return kept


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
        ) + (self.show_command_palette, app.ENABLE_COMMAND_PALETTE, app.size.width)

    def compose(self) -> Any:
        if self._bindings_ready:
            self._shown = self._visible_keys()
        widgets = list(super().compose())
        keys = [w for w in widgets if isinstance(w, FooterKey) and not w.has_class("-command-palette")]
        palette = [w for w in widgets if isinstance(w, FooterKey) and w.has_class("-command-palette")]
        room = self.app.size.width - sum(key_width(w.key_display, w.description) for w in palette) - 1
        essential = tuple(getattr(self.screen, "FOOTER_ESSENTIAL", ()))
        kept = fit_keys([(w.action, key_width(w.key_display, w.description)) for w in keys], essential, room)
        shown = [w for w in widgets if not isinstance(w, FooterKey) or w in palette or w.action in kept]
        self.styles.grid_size_columns = max(1, len(shown) - len(palette))
        return shown

    def on_resize(self, event: Any) -> None:
        """A wider or narrower terminal may fit other keys: rebuild when it does."""
        if self._bindings_ready and self._shown is not None and self._visible_keys() != self._shown:
            self.call_after_refresh(self.recompose)

    def bindings_changed(self, screen: Screen) -> None:
        if (self._bindings_ready and screen.app.app_focus and self.is_attached
                and screen is self.screen and self._visible_keys() == self._shown):
            return
        super().bindings_changed(screen)
