"""First frame of the TUI: process start -> first screen rendered (target <= 0.5 s).

Each trial starts a fresh interpreter (python -c) that builds the real app with the
real worker client; the worker starts in the background and must not delay the frame.
The child prints time.time() when Textual reports Ready (after the first refresh); the
parent subtracts the time it spawned the process. Prints a markdown table.

    python benchmarks/tui_startup.py [--trials 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 0.5

CHILD = r"""
import time
from flashtui.tui.app import FlashTuiApp

class Timed(FlashTuiApp):
    def on_ready(self):
        print(f"FIRST_FRAME {time.time():.6f}", flush=True)
        self.exit()

Timed(journal=False).run(headless=True, size=(120, 40))
"""


def trial(env: dict[str, str]) -> float:
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60)
    for line in out.stdout.splitlines():
        if line.startswith("FIRST_FRAME"):
            return float(line.split()[1]) - t0
    raise SystemExit(f"child gave no first frame: {out.stderr.strip().splitlines()[-1:]}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=7)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="flashtui-bench-")
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLASHTUI_CONFIG_DIR": tmp, "FLASHTUI_DATA_DIR": tmp}
    trial(env)  # warm the OS file cache; not counted
    times = [trial(env) for _ in range(args.trials)]
    median = statistics.median(times)
    print(f"| metric | median | min | max | target | ok |")
    print(f"| --- | --- | --- | --- | --- | --- |")
    print(f"| process start -> first frame (s), {args.trials} trials, {os.cpu_count()} cores "
          f"| {median:.3f} | {min(times):.3f} | {max(times):.3f} | <= {TARGET_S} | "
          f"{'yes' if median <= TARGET_S else 'NO'} |")
    return 0 if median <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
