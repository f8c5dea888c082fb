"""Charts an expert reads: log2 seq axis, log time/memory/error axes, one colour and one
marker per backend shared by every chart and legend, distinct markers (NO_COLOR too)."""

from __future__ import annotations

from flashtui.core.spec import BACKENDS
from flashtui.tui.chart_style import STYLES, backend_style

from flashtui.testing import screen_text
from .test_snapshots import _charts, scripted_app


def test_every_backend_has_its_own_colour_and_marker():
    assert set(STYLES) == set(BACKENDS)
    assert len({s.marker for s in STYLES.values()}) == len(BACKENDS)
    assert len({s.color for s in STYLES.values()}) == len(BACKENDS)
    assert backend_style("sdpa-flash bf16") == STYLES["sdpa-flash"]  # several dtypes: same style
    # RGB, so the terminal's palette cannot fold two backends into one hue (blue and magenta
    # both drew purple as ANSI names); and the HTML export draws the same colours.
    from flashtui.reports.html import backend_color

    for name, style in STYLES.items():
        assert isinstance(style.color, tuple) and len(style.color) == 3
        assert backend_color(name) == "#%02X%02X%02X" % style.color


def legend_colour(plot, name: str) -> str | None:
    """The colour the plot's legend draws ``name``'s marker in."""
    text = plot.render()
    marker = backend_style(name).marker
    at = text.plain.index(f"{marker}{marker} {name}")
    for span in text.spans:
        if span.start <= at < span.end:
            style = span.style
            color = getattr(style, "color", None)
            return color.name if color is not None else None
    return None


async def _check(app, pilot, no_color: bool):
    await _charts(pilot)
    line_plots = [app.screen.query_one(f"#{pid}") for pid in ("chart-time", "chart-memory", "chart-error")]
    per_backend = {}
    for name in ("standard", "sdpa-math", "sdpa-flash"):
        marker = backend_style(name).marker
        colours = set()
        for plot in line_plots:
            plain = plot.render().plain
            assert f"{marker}{marker} {name}" in plain, (plot.id, name)  # legend: same marker
            colours.add(legend_colour(plot, name))
        assert len(colours) == 1 and None not in colours, (name, colours)  # one colour in every chart
        per_backend[name] = colours.pop()
    assert len(set(per_backend.values())) == 3, per_backend  # and a different one per backend
    text = screen_text(app)
    assert "seq (log2)" in text and "time vs seq (log)" in text and "memory vs seq" in text
    assert "error vs seq" in text and "speedup vs standard" in text and "TFLOP/s" in text


async def test_series_keep_colour_and_marker_across_charts(isolated_dirs):
    app = scripted_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await _check(app, pilot, no_color=False)


async def test_markers_tell_series_apart_under_no_color(isolated_dirs, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = scripted_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await _charts(pilot)
        plain = app.screen.query_one("#chart-time").render().plain
        for name in ("standard", "sdpa-math", "sdpa-flash"):
            assert backend_style(name).marker * 2 in plain  # a distinct marker each, colour or not


CHARTS_TEXT_SCRIPT = """
import asyncio, sys
from flashtui.testing import screen_text
from tests.tui.test_snapshots import _charts, scripted_app

async def main():
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _charts(pilot)
        sys.stdout.write(screen_text(app))

asyncio.run(main())
"""


def test_80x24_charts_do_not_depend_on_the_string_hash_seed(tmp_path):
    """The old 80x24 Charts flake: plotext de-duplicates y ticks through a set, so with two
    ticks on one row the label drawn depended on PYTHONHASHSEED (seeds 1 and 2 drew
    different labels). Ticks now fit one per row: every seed draws the same screen."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    texts = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root),
               "FLASHTUI_DATA_DIR": str(tmp_path / seed / "data"),
               "FLASHTUI_CONFIG_DIR": str(tmp_path / seed / "config")}
        run = subprocess.run([sys.executable, "-c", CHARTS_TEXT_SCRIPT], capture_output=True, text=True,
                             timeout=120, env=env, cwd=root)
        assert run.returncode == 0, run.stderr[-2000:]
        texts.append(run.stdout)
    assert "time vs seq (log)" in texts[0] and "┤" in texts[0]
    assert texts[0] == texts[1]


async def test_a_short_terminal_gets_one_legend_row_naming_every_backend(isolated_dirs):
    # At 80x24 the plots have no room for plotext's own legends: the row below names every
    # backend with its marker in its colour; at 160x50 the plots' legends do and it is hidden.
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _charts(pilot)
        legend = app.screen.query_one("#chart-legend")
        assert legend.display
        text = legend.render()
        names = {c["backend"] for c in app.screen.query_one("#charts-panel").cells}
        assert names
        for name in names:
            style = backend_style(name)
            at = text.plain.index(f"{style.marker} {name}")
            colours = {str(span.style) for span in text.spans if span.start <= at < span.end}
            assert colours == {"rgb({},{},{})".format(*style.color)}, (name, colours)
    app = scripted_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await _charts(pilot)
        assert not app.screen.query_one("#chart-legend").display
