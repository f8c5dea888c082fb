"""The seed notebook's plots, with textual-plotext, the way an expert reads them.

time vs seq and memory vs seq on log axes, error (rel_l2 vs fp64) vs seq on a log axis,
speedup and memory-saving bars vs standard, and TFLOP/s vs seq under the GPU's peak
(a roofline line, when core/gpu_specs knows the GPU). The seq axis is log2 (every
power of two evenly spaced, ticks labelled with the real lengths). Every backend has
one colour and one marker (chart_style.py), the same in every chart and legend.
Imported only when the Charts tab is built, so plotext never delays the first frame.
``cells`` is reactive; assigning redraws all four.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot
from rich.text import Text

import math

from flashtui.core.gpu_specs import peak_tflops
from flashtui.tui import present
from flashtui.tui.chart_style import backend_style

MIB = 1024.0 * 1024.0


class ChartsPanel(Grid):
    """A 2×2 grid of PlotextPlot widgets fed from ``cells``."""

    cells: reactive[tuple[dict[str, Any], ...]] = reactive((), always_update=True, init=False)
    # The GPU's name (the worker's provenance): its peak TFLOP/s is the roofline line.
    device_name: str | None = None

    PLOT_IDS = ("chart-time", "chart-memory", "chart-error", "chart-speedup", "chart-saving", "chart-tflops")

    # Below this height plotext has no room for its legends inside the plots: one legend
    # row under the grid names every backend's marker and colour instead.
    LEGEND_ROW_BELOW_ROWS = 36

    def compose(self) -> ComposeResult:
        for plot_id in self.PLOT_IDS:
            yield PlotextPlot(id=plot_id)
        yield Static(id="chart-legend", classes="chart-legend")

    def _update_legend(self, cells: tuple[dict[str, Any], ...]) -> None:
        found = self.query("#chart-legend")
        if not found:  # the first draw (on_mount) can come before the row's own mount (seen in CI)
            self.call_after_refresh(self._update_legend, cells)
            return
        legend = found.first(Static)
        shown = self.size.height < self.LEGEND_ROW_BELOW_ROWS
        legend.display = shown
        self.set_class(shown, "-legend-row")
        text = Text()
        for name in dict.fromkeys(c["backend"] for c in cells):
            style = backend_style(name)
            if text:
                text.append("  ")
            text.append(style.marker, style="rgb({},{},{})".format(*style.color))
            text.append(f" {name}")
        legend.update(text)

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

    def on_resize(self) -> None:
        """Plot heights changed: redraw, so the y ticks fit the new rows (_y_tick_room)."""
        if self.is_mounted and self._drawn_cells is not None and self.is_on_screen:
            self._draw(self.cells)

    def on_show(self) -> None:
        if self._redraw_when_shown:
            self._redraw_when_shown = False
            self.call_after_refresh(self._redraw_latest)

    def _draw(self, cells: tuple[dict[str, Any], ...]) -> None:
        self._drawn_cells = cells
        self._update_legend(cells)
        self._lines(self.query_one("#chart-time", PlotextPlot), "time vs seq (log)", "ms",
                    present.series_by_backend(cells, "median_ms"), log_y=True)
        memory = present.series_by_backend(cells, lambda c: _mib(present.memory_bytes_for_chart(c)))
        measured = any(c.get("peak_alloc_bytes") for c in cells)
        # Short titles: at 80 columns each plot is ~26 cells wide and plotext drops a longer one.
        unit = "MiB (alloc peak)" if measured else "MiB (theory)"
        self._lines(self.query_one("#chart-memory", PlotextPlot), "memory vs seq (log)", unit, memory, log_y=True)
        error = present.series_by_backend(cells, lambda c: (c.get("parity") or {}).get("rel_l2"))
        self._lines(self.query_one("#chart-error", PlotextPlot), "error vs seq (log)", "rel_l2 vs fp64",
                    error, log_y=True)
        self._bars(self.query_one("#chart-speedup", PlotextPlot), "speedup vs standard (x)",
                   present.bars_vs_standard(cells, present.speedup_ratio))
        self._bars(self.query_one("#chart-saving", PlotextPlot), "memory saving vs standard (x)",
                   present.bars_vs_standard(cells, present.memory_saving_ratio))
        dtypes = sorted({c["dtype"] for c in cells})
        peak = peak_tflops(self.device_name, dtypes[0]) if len(dtypes) == 1 else None
        self._lines(self.query_one("#chart-tflops", PlotextPlot),
                    "TFLOP/s vs seq" + (f" (peak {peak:g})" if peak else ""), "TFLOP/s",
                    present.series_by_backend(cells, "tflops"), peak=peak)

    @staticmethod
    def _lines(widget: PlotextPlot, title: str, unit: str, series: present.Series, *,
               log_y: bool = False, peak: float | None = None) -> None:
        """One line per backend over a log2 seq axis; log y for times, bytes and errors."""
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        plt.xlabel("seq (log2)")
        plt.ylabel(unit)
        seqs = sorted({x for xs, _ in series.values() for x in xs})
        # Log axes by hand (log2 x, log10 y, ticks labelled in real units): plotext's own
        # log scale rewrites its data in place, so a second render of one figure fails.
        plotted: list[float] = []
        for name, (xs, ys) in series.items():
            points = [(math.log2(x), math.log10(y) if log_y else y)
                      for x, y in zip(xs, ys) if x > 0 and (y > 0 or not log_y)]
            if not points:
                continue
            style = backend_style(name)
            plt.plot([p[0] for p in points], [p[1] for p in points], label=name,
                     marker=style.marker, color=style.color)
            plotted.extend(p[1] for p in points)
        if peak and seqs:
            plt.hline(peak, "gray")  # the roofline: the GPU's dense peak for this dtype
        if log_y and plotted:
            ticks = _log_ticks(min(plotted), max(plotted), n_ticks=_y_tick_room(widget))
            plt.yticks(ticks, [f"{10 ** t:.3g}" for t in ticks])
        if seqs:
            plt.xticks([math.log2(s) for s in seqs if s > 0], [str(s) for s in seqs if s > 0])
        widget.refresh()

    @staticmethod
    def _bars(widget: PlotextPlot, title: str, bars: tuple[list[str], list[str], list[list[float]]]) -> None:
        labels, backends, values = bars
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        if labels and backends:
            plt.multiple_bar(labels, values, labels=backends,
                             color=[backend_style(b).color for b in backends])
            plt.xlabel("seq")
        widget.refresh()


# Rows of a PlotextPlot that are not its canvas: the title, two frame lines, the x tick
# labels and the x label.
PLOT_FRAME_ROWS = 5
MAX_Y_TICKS = 5


def _y_tick_room(widget: PlotextPlot) -> int:
    """How many y ticks fit one per canvas row (MAX_Y_TICKS before the first layout).

    Why it matters: plotext de-duplicates ticks through a set of (tick, label) tuples,
    whose order follows Python's per-process string hash seed; when two ticks land on
    one row, the one drawn last wins, so the label shown changed from run to run (the
    80x24 Charts snapshot's flake). One tick per row leaves nothing to that order."""
    rows = widget.size.height - PLOT_FRAME_ROWS
    return MAX_Y_TICKS if rows <= 0 else max(2, min(MAX_Y_TICKS, rows))


def _log_ticks(low: float, high: float, n_ticks: int = MAX_Y_TICKS) -> list[float]:
    """log10 positions for a y axis from ``low`` to ``high`` (log10 units): the whole
    decades inside when there are at least three, else evenly spaced from end to end
    (so the top and bottom values are labelled)."""
    decades = [float(t) for t in range(math.ceil(low), math.floor(high) + 1)]
    if len(decades) >= 3:
        step = max(1, math.ceil(len(decades) / n_ticks))  # at most n_ticks of them
        return decades[::step]
    if high - low < 1e-12:
        return [low]
    return [low + (high - low) * i / (n_ticks - 1) for i in range(n_ticks)]


def _mib(n_bytes: float | None) -> float | None:
    return None if n_bytes is None else n_bytes / MIB
