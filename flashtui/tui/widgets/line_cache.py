"""Rendered DataTable lines cached by what they show, so an update repaints only changed rows.

DataTable keys its line, row and cell caches by a counter that every add_row and
update_cell bumps: one new cell re-rendered every visible row of all three tables
(15-30 ms a table on a 2-core CPU, four times a second while a sweep streams), although
the new row usually lands below the visible rows. Here a line is keyed by its content
and everything else its look depends on (cursor and hover row, zebra parity, column
widths, scroll, width, style, focus and theme), so only rows that really changed are
rendered again. Tables that use fixed rows or columns, row labels or rows taller than
one line take DataTable's own path.
"""

from __future__ import annotations

from typing import Any, Hashable

from textual.strip import Strip
from textual.widgets import DataTable

LINE_CACHE_MAX = 1024  # entries; cleared when full (a few screens of lines)


class LineCachedTable(DataTable):
    """A DataTable that reuses a rendered line while its key (see module doc) is unchanged.

    Subclasses give each row's content with ``row_content(row_key)`` (hashable; the
    same value whenever the row shows the same cells).
    """

    _line_strips: dict[Hashable, Strip]

    def row_content(self, row_key: str) -> Hashable | None:
        """The row's cells as a hashable value, or None to skip the cache for it."""
        return None

    def _cacheable(self) -> bool:
        return (not self.fixed_rows and not self.fixed_columns and not getattr(self, "_labelled_row_exists", True)
                and self.cursor_type == "row" and self.header_height == 1)

    def _view_key(self) -> tuple[Any, ...]:
        """What every line's look depends on besides its row (the same for a whole repaint)."""
        return (
            self.scroll_offset, self.size.width, self.zebra_stripes, self.cell_padding,
            self.show_cursor, self.cursor_row, getattr(self, "_show_hover_cursor", True), self.hover_row,
            tuple(c.get_render_width(self) for c in self.ordered_columns),
            self.rich_style, self.get_pseudo_class_state(), self.app.theme,
        )

    def _line_key(self, y: int, view: tuple[Any, ...]) -> Hashable | None:
        scroll_y = view[0].y
        if self.show_header and y == 0:
            what: Any = ("header", tuple(str(c.label) for c in self.ordered_columns))
            index = -1
        else:
            index = y - (1 if self.show_header else 0) + scroll_y
            rows = self.ordered_rows
            if index >= len(rows):
                what = ("blank",)
            else:
                row = rows[index]
                if row.height != 1:
                    return None
                content = self.row_content(row.key.value)
                if content is None:
                    return None
                what = (row.key.value, content)
        # The row's own state (parity, under the cursor or the mouse), then the view less
        # the scroll row and cursor/hover rows, which the line's position already accounts for.
        show_cursor, cursor_row, show_hover, hover_row = view[4:8]
        return (what, index % 2, show_cursor and cursor_row == index, show_hover and hover_row == index,
                view[0].x, view[1:4], view[8:])

    def on_resize(self, event: Any) -> None:
        # DataTable's row cache ignores the width until its own Resize handler runs, so
        # lines rendered between a size change and this event may be stale: drop them.
        # (A tab shown again sends Resize with the same size: nothing to drop then.)
        if event.size != self.__dict__.get("_line_cache_size"):
            self._line_cache_size = event.size
            self.__dict__.get("_line_strips", {}).clear()

    _pass_view: tuple[Any, ...] | None = None

    def render_lines(self, crop: Any) -> list[Strip]:
        self._pass_view = self._view_key() if self._cacheable() else None  # once per repaint
        try:
            return super().render_lines(crop)
        finally:
            self._pass_view = None

    def render_line(self, y: int) -> Strip:
        if not self._cacheable():
            return super().render_line(y)
        key = self._line_key(y, self._pass_view or self._view_key())
        if key is None:
            return super().render_line(y)
        cache = self.__dict__.setdefault("_line_strips", {})
        strip = cache.get(key)
        if strip is None:
            if len(cache) >= LINE_CACHE_MAX:
                cache.clear()
            strip = cache[key] = super().render_line(y)
        return strip
