"""The four plots of the seed notebook, with textual-plotext.

time vs seq, memory vs seq, speedup bars and memory-saving bars (both vs standard).
Imported only when the Charts tab is built, so plotext never delays the first frame.
``cells`` is reactive; assigning redraws all four.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from flashtui.tui import present

MIB = 1024.0 * 1024.0


class ChartsPanel(Grid):
    """A 2×2 grid of PlotextPlot widgets fed from ``cells``."""

    cells: reactive[tuple[dict[str, Any], ...]] = reactive((), always_update=True, init=False)

    def compose(self) -> ComposeResult:
        for plot_id in ("chart-time", "chart-memory", "chart-speedup", "chart-saving"):
            yield PlotextPlot(id=plot_id)

    def on_mount(self) -> None:
        self._draw(self.cells)

    # plotext rebuilds every figure from scratch; redraw at most this often while cells
    # stream in, so a fast sweep never makes keys wait behind chart rendering.
    REDRAW_MIN_INTERVAL_S = 0.5
    _redraw_pending = False

    def watch_cells(self, cells: tuple[dict[str, Any], ...]) -> None:
        if self.is_mounted and not self._redraw_pending:
            self._redraw_pending = True
            self.set_timer(self.REDRAW_MIN_INTERVAL_S, self._redraw_latest)

    _redraw_when_shown = False
    _drawn_cells: Any = None

    def _redraw_latest(self) -> None:
        self._redraw_pending = False
        if not self.is_mounted or self.cells is self._drawn_cells:
            return
        if not self.is_on_screen:
            # Hidden (another tab): a redraw now would only mark the plots dirty, and the
            # key that shows the tab would pay for rebuilding all four in its frame. The
            # tab opens on the last figures and redraws right after (on_show).
            self._redraw_when_shown = True
            return
        self._draw(self.cells)

    def on_show(self) -> None:
        if self._redraw_when_shown:
            self._redraw_when_shown = False
            self.call_after_refresh(self._redraw_latest)

    def _draw(self, cells: tuple[dict[str, Any], ...]) -> None:
        self._drawn_cells = cells
        self._lines(self.query_one("#chart-time", PlotextPlot), "time vs seq", "ms",
                    present.series_by_backend(cells, "median_ms"))
        memory = present.series_by_backend(cells, lambda c: _mib(present.memory_bytes_for_chart(c)))
        measured = any(c.get("peak_alloc_bytes") for c in cells)
        title = "memory vs seq (allocator peak)" if measured else "memory vs seq (theory bytes)"
        self._lines(self.query_one("#chart-memory", PlotextPlot), title, "MiB", memory)
        self._bars(self.query_one("#chart-speedup", PlotextPlot), "speedup vs standard (x)",
                   present.bars_vs_standard(cells, present.speedup_ratio))
        self._bars(self.query_one("#chart-saving", PlotextPlot), "memory saving vs standard (x)",
                   present.bars_vs_standard(cells, present.memory_saving_ratio))

    @staticmethod
    def _lines(widget: PlotextPlot, title: str, unit: str, series: present.Series) -> None:
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        plt.xlabel("seq")
        plt.ylabel(unit)
        for name, (xs, ys) in series.items():
            plt.plot(xs, ys, label=name, marker="braille")
        seqs = sorted({x for xs, _ in series.values() for x in xs})
        if seqs:
            plt.xticks(seqs, [str(s) for s in seqs])
        widget.refresh()

    @staticmethod
    def _bars(widget: PlotextPlot, title: str, bars: tuple[list[str], list[str], list[list[float]]]) -> None:
        labels, backends, values = bars
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        if labels and backends:
            plt.multiple_bar(labels, values, labels=backends)
            plt.xlabel("seq")
        widget.refresh()


def _mib(n_bytes: float | None) -> float | None:
    return None if n_bytes is None else n_bytes / MIB
