"""The timing, memory and parity tables: one DataTable each, rows keyed by cell.

Each table has a reactive ``cells`` (a tuple of cell dicts, as the worker sent them,
with speedups filled by the session); assigning a new tuple updates the changed rows in
place, keeping the cursor on the same cell, and only their lines are rendered again
(line_cache.py). Formatting is all in :mod:`flashtui.tui.present`.
"""

from __future__ import annotations

from typing import Any

from textual.reactive import reactive

from flashtui.core.spec import CellKey
from flashtui.tui import present
from flashtui.tui.widgets.line_cache import LineCachedTable


class CellTable(LineCachedTable):
    """A DataTable of cells; subclasses say which columns and how a row reads."""

    COLUMNS: tuple[str, ...] = ()
    # Fixed widths (cells of text) so columns do not jump as cells stream in; the last
    # column (status / verdict, which may carry a reason) sizes itself.
    WIDTHS: dict[str, int] = {
        "backend": 14, "seq": 7, "dtype": 5, "median ± IQR": 19, "FLOP/s": 12, "speedup": 7,
        "alloc peak": 10, "theory": 10, "saving": 7, "rel_l2": 7, "ratio": 6, "max abs": 7,
        "mean abs": 8,
    }
    cells: reactive[tuple[dict[str, Any], ...]] = reactive((), always_update=True, init=False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)

    @property
    def columns_shown(self) -> tuple[str, ...]:
        """The columns drawn now (a subclass may drop some on a narrow terminal)."""
        return self.COLUMNS

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for name in self.columns_shown:
            self.add_column(name, key=name, width=self.WIDTHS.get(name))

    def rebuild(self) -> None:
        """Columns changed: drop every row and column, then draw the cells again."""
        if not self.is_mounted:
            return
        self.clear(columns=True)
        self._rows = {}
        self._add_columns()
        self.watch_cells(self.cells)

    def row_content(self, row_key: str) -> tuple[str, ...] | None:
        """The row's text as last set (what the line cache keys on)."""
        return getattr(self, "_rows", {}).get(row_key)

    def row_context(self, cells: tuple[dict[str, Any], ...]) -> Any:
        """What every row needs from the whole set (computed once per update, not per row)."""
        return None

    def row_for(self, cell: dict[str, Any], context: Any) -> tuple[str, ...]:
        raise NotImplementedError

    def watch_cells(self, cells: tuple[dict[str, Any], ...]) -> None:
        """Update in place: changed cells only, new rows appended, gone rows removed.

        Incremental so a sweep of a thousand cells stays O(changed) per update, and the
        cursor and scroll position never jump while the user reads.
        """
        if not self.is_mounted:
            return
        rows: dict[str, tuple[str, ...]] = getattr(self, "_rows", {})
        context = self.row_context(cells)
        wanted = {present.cell_key(c): self.row_for(c, context) for c in cells}
        changed = False
        for key in [k for k in rows if k not in wanted]:
            self.remove_row(key)
            del rows[key]
            changed = True
        for key, row in wanted.items():
            old = rows.get(key)
            if old is None:
                self.add_row(*row, key=key)
                changed = True
            elif old != row:
                for column, (before, after) in zip(self.columns_shown, zip(old, row)):
                    if before != after:
                        self.update_cell(key, column, after)
                changed = True
            rows[key] = row
        self._rows = rows
        if changed:
            self._drop_stale_renders()

    def _drop_stale_renders(self) -> None:
        """Free the rendered cells and lines that this update made stale.

        DataTable keys its render caches by an update counter, so after a change no old
        entry can be hit again, yet each table keeps up to 10 000 cells and 1 000 rows
        and lines of them until evicted. While a sweep streams that was most of the UI
        process's heap, promoted to the oldest GC generation and scanned by every full
        collection (pauses of 90-150 ms on a 2-core box, felt as key latency).
        """
        clear = getattr(self, "_clear_caches", None)  # DataTable's own invalidation
        if clear is not None:
            clear()

    @property
    def selected_key(self) -> CellKey | None:
        """The cell under the cursor, or None when the table is empty."""
        if self.row_count == 0:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
            return CellKey.from_row_key(row_key)
        except Exception:
            return None

    def row_text(self, key: str) -> tuple[str, ...]:
        """The plain text of a row (for tests and screen readers)."""
        return tuple(str(v) for v in self.get_row(key))


class TimingTable(CellTable):
    """Per backend × seq: median ± IQR, TFLOP/s, speedup vs standard, status."""

    COLUMNS = present.TIMING_COLUMNS
    # Set by the Run screen from the terminal width: backend, seq, median, speedup, marker.
    narrow: reactive[bool] = reactive(False, init=False)

    @property
    def columns_shown(self) -> tuple[str, ...]:
        return present.TIMING_COLUMNS_NARROW if self.narrow else self.COLUMNS

    def watch_narrow(self, narrow: bool) -> None:
        self.rebuild()

    def row_for(self, cell: dict[str, Any], context: Any) -> tuple[str, ...]:
        return present.timing_row_narrow(cell) if self.narrow else present.timing_row(cell)


class MemoryTable(CellTable):
    """Per cell: allocator peak beside the theoretical bytes and the saving vs standard."""

    COLUMNS = present.MEMORY_COLUMNS

    def row_context(self, cells: tuple[dict[str, Any], ...]) -> Any:
        return present.standard_peaks(cells)

    def row_for(self, cell: dict[str, Any], context: Any) -> tuple[str, ...]:
        return present.memory_row(cell, context.get((cell["seq"], cell["dtype"])))


class ParityTable(CellTable):
    """Per cell: rel_l2 vs the fp64 oracle, ratio vs standard, max/mean abs, pass/fail."""

    COLUMNS = present.PARITY_COLUMNS

    def row_for(self, cell: dict[str, Any], context: Any) -> tuple[str, ...]:
        return present.parity_row(cell)
