"""UI process CPU with a 20 Hz NVML sampler feeding the live memory panel (target <= 15%).

The app runs headless on the Run screen (after a tiny scripted sweep) while a synthetic
sampler thread delivers 20 samples/s through the real bridge (coalescing message,
throttled sparkline redraw). CPU = process_time() delta (all threads of the UI process,
the feeding thread included) over wall time. Prints a markdown table.

    python benchmarks/tui_cpu.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

TARGET_PCT = 15.0


async def measure(seconds: float) -> tuple[float, float, int, int]:
    from flashtui.testing import ScriptedClient, SyntheticSampler
    from flashtui.tui import messages as m
    from flashtui.tui.app import FlashTuiApp

    samplers: list[SyntheticSampler] = []
    delivered = {"n": 0}

    def make_sampler(ready):
        samplers.append(SyntheticSampler(ready, 20.0))
        return samplers[-1]

    def hook(message):
        if isinstance(message, m.MonitorSampled):
            delivered["n"] += 1

    overrides = dict(device="cpu", backends=("standard", "sdpa-math", "sdpa-flash"), seqs=(64, 128),
                     dtypes=("fp32",), reps=3, warmup_ms=5.0)
    app = FlashTuiApp(default_spec_overrides=overrides, worker_factory=ScriptedClient,
                      sampler_factory=make_sampler, journal=False)
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        while not app.sweep.ready:
            await pilot.pause(0.05)
        await pilot.press("enter")
        while app.sweep.session is None or app.sweep.running:
            await pilot.pause(0.05)
        app.clear_notifications()
        await asyncio.sleep(1.0)  # settle
        n0, d0 = samplers[0].n_samples, delivered["n"]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        n_samples, n_delivered = samplers[0].n_samples - n0, delivered["n"] - d0
        assert "GPU memory" in str(app.screen.query_one("#nvml-status").render())
    return cpu_s, wall_s, n_samples, n_delivered


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="flashtui-bench-")
    os.environ["FLASHTUI_CONFIG_DIR"] = tmp
    os.environ["FLASHTUI_DATA_DIR"] = tmp
    cpu_s, wall_s, n_samples, n_delivered = asyncio.run(measure(args.seconds))
    pct = 100.0 * cpu_s / wall_s
    print("| metric | value | target | ok |")
    print("| --- | --- | --- | --- |")
    print(f"| UI process CPU, {n_samples / wall_s:.1f} Hz samples for {wall_s:.1f} s "
          f"({n_delivered} redraw messages after coalescing) | {pct:.1f}% of a core "
          f"| <= {TARGET_PCT:.0f}% | {'yes' if pct <= TARGET_PCT else 'NO'} |")
    return 0 if pct <= TARGET_PCT else 1


if __name__ == "__main__":
    raise SystemExit(main())
