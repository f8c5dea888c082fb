"""benchmarks/warmup_ab.py on CPU: the real bench command under both warm-ups, its tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_both_arms_run_the_same_cells_and_the_fixed_arm_warms_up_its_floor(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
           "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "warmup_ab.py"), "--out", str(tmp_path),
                           "--rounds", "1", "--seq", "128", "--backends", "standard"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "warmup_ab.json").read_text())
    adaptive, fixed = result["summary"]["adaptive (>=25 ms)"], result["summary"]["fixed 100 ms"]
    assert adaptive["cells"] == fixed["cells"] == 1
    assert fixed["warmup_ms_median"] >= 100.0  # --warmup-ms 100: the floor is the cap
    assert adaptive["warmup_ms_median"] >= 25.0
    [row] = result["rows"]
    assert (row["backend"], row["seq"]) == ("standard", 128)
    assert row["adaptive_over_fixed"] > 0
    table = (tmp_path / "warmup_ab.md").read_text()
    assert "| standard | 128 |" in table and "| fixed 100 ms | 1 |" in table
