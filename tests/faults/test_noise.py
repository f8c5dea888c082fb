"""Noise never becomes a finding: a real CPU sweep under three busy loops on this box."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from flashtui.core.session import Session
from flashtui.reports import render_session
from flashtui.reports.findings import findings

pytestmark = pytest.mark.slow


def test_three_busy_loops_every_wide_cell_is_noisy_and_findings_cite_none(tmp_path):
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        out = subprocess.run(
            [sys.executable, "-m", "flashtui", "bench", "--device", "cpu",
             "--backends", "standard,sdpa-math,sdpa-flash", "--seq", "128,256", "--dtype", "fp32",
             "--heads", "2", "--head-dim", "32", "--reps", "10", "--warmup-ms", "20",
             "--json", "--no-journal"],
            capture_output=True, text=True, timeout=600)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    assert out.returncode in (0, 1), out.stderr[-2000:]
    session = Session.from_dict(json.loads(out.stdout))
    measured = [c for c in session.cells if c.status == "ok"]
    assert measured, "the sweep measured nothing"
    for cell in measured:
        if cell.iqr_ms / cell.median_ms > 0.25:
            assert cell.noisy and cell.noise_reason, (cell.backend, cell.seq, cell.iqr_ms, cell.median_ms)
    # Three loops on two cores: the host was busy, so every CPU cell says so.
    assert all(c.noisy for c in measured), [(c.backend, c.seq, c.noise_reason) for c in measured]
    noisy = {(c.backend, c.seq) for c in measured if c.noisy}
    for line in findings(session):
        cited = re.match(r"(?:use )?(\S+) (?:fastest )?at seq (\d+)", line)
        if cited and "launch-bound" not in line:
            assert (cited.group(1), int(cited.group(2))) not in noisy, line
    md = render_session(session, "md")
    assert "noisy, left out of these findings" in md
