"""benchmarks/tui_screenshot.py as the lead runs it on the GPU, here with a tiny CPU spec."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def script_env() -> dict[str, str]:
    """The script runs against this checkout's flashtui (benchmarks/ never edits sys.path)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}


def text_of(svg: Path) -> str:
    """SVG text with Textual's non-breaking spaces turned back into spaces."""
    return svg.read_text().replace("&#160;", " ")


def test_screenshot_script_saves_every_screen(isolated_dirs):
    out = isolated_dirs / "shots"
    cmd = [sys.executable, str(REPO / "benchmarks" / "tui_screenshot.py"), "--device", "cpu",
           "--seq", "64,128", "--dtype", "fp32", "--heads", "2", "--head-dim", "32", "--reps", "3",
           "--warmup-ms", "5", "--backends", "standard,sdpa-math,sdpa-flash", "--doctor",
           "--out", str(out), "--timeout-s", "120"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=script_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = {
        "doctor.svg": ("capability matrix", "fa4: not available", "fastest here"),
        "pyspy.svg": ("py-spy", "file:line", "self %"),
        "run.svg": ("timing (median ± IQR)", "parity vs fp64", "sdpa-flash", "6/6 cells", "sweep complete"),
        "charts.svg": ("time vs seq", "speedup vs standard", "memory saving vs standard"),
    }
    for name, words in expected.items():
        svg = out / name
        assert svg.is_file() and svg.read_text().lstrip().startswith("<svg"), name
        text = text_of(svg)
        for word in words:
            assert word in text, (name, word)
    assert "session " in done.stderr and "status complete" in done.stderr
    # The session was journaled into the (isolated) store.
    assert list((isolated_dirs / "data" / "sessions").glob("*.jsonl"))
