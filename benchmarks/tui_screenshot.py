"""SVG screenshots of the real app running a real sweep (for docs/), headless.

Runs FlashTuiApp under Textual's headless driver (``app.run_test``) against the real
worker (GPU if the machine has one), starts the sweep given on the command line and
saves, into ``--out``:

* ``doctor.svg``  the Doctor screen after its probe (only with ``--doctor``; taken
  first, since the probe and a sweep cannot share the worker at once),
* ``pyspy.svg``   the py-spy tab with the worker's hottest frames, mid-sweep (or the
  one-line reason py-spy cannot sample here),
* ``run.svg``     the Run screen's live panels after SweepFinished,
* ``charts.svg``  the Charts tab of the same session.

Examples::

    python benchmarks/tui_screenshot.py --mode kernel --seq 512,2048,8192 --dtype bf16 \\
        --heads 16 --head-dim 128 --doctor --out docs/screenshots
    python benchmarks/tui_screenshot.py --mode prefill --model gpt2 --seq 512,1024 \\
        --batch 4 --dtype bf16 --out docs/screenshots/prefill

Exit 0 when every screenshot was saved, 1 when the sweep timed out (what could be
taken is still saved), 2 for a bad spec, 3 when the worker could not start, 4 when the
app itself stopped on an exception (its traceback is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from flashtui.testing.pilot import AppStopped, wait_until


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default=None, help="kernel, prefill or decode (default: kernel)")
    p.add_argument("--model", default=None, help="model for prefill/decode (e.g. gpt2)")
    p.add_argument("--seq", default=None, help="comma list of sequence lengths")
    p.add_argument("--dtype", default=None, help="comma list: fp32, fp16, bf16")
    p.add_argument("--backends", default=None, help="comma list (default: every available one)")
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--kv-heads", type=int, default=None)
    p.add_argument("--head-dim", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--warmup-ms", type=float, default=None)
    p.add_argument("--device", choices=("cuda", "cpu"), default=None,
                   help="default: cuda when the worker sees a GPU, else cpu")
    p.add_argument("--no-parity", dest="parity", action="store_false", default=None)
    p.add_argument("--backward", action="store_true", default=None, help="forward + backward")
    p.add_argument("--doctor", action="store_true", help="also screenshot the Doctor screen")
    p.add_argument("--no-pyspy", dest="pyspy", action="store_false", help="skip the py-spy tab shot")
    p.add_argument("--out", default="tui-screenshots", help="folder for the SVG files")
    p.add_argument("--size", default="160x50", help="terminal WIDTHxHEIGHT in cells")
    p.add_argument("--also-size", action="append", default=[], metavar="WxH",
                   help="after the sweep, resize the same app to WxH and save run-WxH.svg and "
                        "charts-WxH.svg too (repeatable; the same session, redrawn at that size)")
    p.add_argument("--timeout-s", type=float, default=1800.0, help="longest wait for SweepFinished")
    p.add_argument("--probe-timeout-s", type=float, default=900.0, help="longest wait for the probe")
    p.add_argument("--pyspy-wait-s", type=float, default=30.0,
                   help="longest wait for py-spy frames of flashtui's own code")
    p.add_argument("--stall-report-s", type=float, default=0.0,
                   help="every N s, write the app's message queues, asyncio tasks and thread stacks "
                        "to OUT/stall-report.txt (0: off); for finding where a sweep stops updating")
    p.add_argument("--no-journal", dest="journal", action="store_false",
                   help="do not store the session in the flashtui data dir")
    return p.parse_args(argv)


def spec_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """SweepSpec fields from the flags that were given (the rest: the device's defaults)."""
    from flashtui.core.spec import parse_backends, parse_dtypes, parse_seqs

    values: dict[str, Any] = {
        "mode": args.mode, "model": args.model, "heads": args.heads, "kv_heads": args.kv_heads,
        "head_dim": args.head_dim, "batch": args.batch, "reps": args.reps, "warmup_ms": args.warmup_ms,
        "device": args.device, "parity": args.parity, "backward": args.backward,
        "seqs": parse_seqs(args.seq) if args.seq else None,
        "dtypes": parse_dtypes(args.dtype) if args.dtype else None,
        "backends": parse_backends(args.backends) if args.backends else None,
    }
    return {k: v for k, v in values.items() if v is not None}


def stall_report(app: Any) -> str:
    """Where the UI process is: queued messages per message pump, asyncio tasks, threads."""
    import collections
    import threading
    import traceback

    lines = [f"--- +{time.monotonic():.1f} sweep_done={getattr(app, 'sweep_done', None)} "
             f"bridge_busy={getattr(getattr(app, 'bridge', None), 'busy_with', None)}"]
    for node in [app, *app.walk_children(with_self=False)]:
        queue = getattr(node, "_message_queue", None)
        if queue is not None and queue.qsize():
            kinds = collections.Counter(type(item).__name__ for item in list(getattr(queue, "_queue", [])))
            lines.append(f"queue {node!r}: {queue.qsize()} {dict(kinds)}")
    idle = 0
    for task in asyncio.all_tasks():
        chain, coro = [], task.get_coro()
        while coro is not None and len(chain) < 16:  # follow the await chain inwards
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        waiting = chain and chain[-1].startswith("wait:") and any(
            c.startswith(("_get_message:", "_run_timer:")) for c in chain)
        if waiting and not task.get_name().startswith("run_test"):
            idle += 1
            continue
        lines.append(f"task {task.get_name()}: {' -> '.join(chain)}")
    lines.append(f"{idle} idle message pumps / timers")
    client = getattr(getattr(app, "bridge", None), "client", None)
    proc = getattr(client, "proc", None)
    if proc is not None and proc.stdout is not None:  # is the worker's output sitting unread?
        import fcntl
        import os
        import struct
        import termios

        try:
            fd = proc.stdout.fileno()
            unread = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
            lines.append(f"reader fd {fd} -> {os.readlink(f'/proc/self/fd/{fd}')}, {unread} bytes unread; "
                         f"events queued {client._events.qsize()}")
            for name in sorted(os.listdir(f"/proc/{proc.pid}/fd"), key=int):
                lines.append(f"  worker fd {name} -> {os.readlink(f'/proc/{proc.pid}/fd/{name}')}")
        except (OSError, ValueError) as exc:
            lines.append(f"reader fd: {exc}")
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        stack = traceback.format_stack(frame, limit=12)
        lines.append(f"thread {names.get(ident, ident)}:\n" + "".join(stack))
    return "\n".join(lines) + "\n"


def note(text: str) -> None:
    print(f"tui_screenshot: {text}", file=sys.stderr, flush=True)


async def shoot(args: argparse.Namespace) -> int:
    from flashtui.core.spec import SpecError, SweepSpec
    from flashtui.tui import messages as m
    from flashtui.tui.app import FlashTuiApp

    try:
        overrides = spec_overrides(args)
        width, height = (int(v) for v in args.size.lower().split("x"))
        also = [tuple(int(v) for v in size.lower().split("x")) for size in args.also_size]
        if any(len(size) != 2 for size in also):
            raise ValueError(f"--also-size takes WIDTHxHEIGHT, got {args.also_size}")
    except (SpecError, ValueError) as exc:
        note(f"bad input: {exc}")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Any] = {"finished": None, "frames": None, "start_failed": None}

    t0 = time.monotonic()

    def hook(message: Any) -> None:
        name = type(message).__name__
        if name in ("CellFinished", "CellStarted", "WorkerDied", "WorkerRestarted", "SweepStarted"):
            note(f"+{time.monotonic() - t0:.1f}s {name} {getattr(message, 'cell', '') and ''}")
        if isinstance(message, m.SweepFinished):
            seen["finished"] = message
        elif isinstance(message, m.WorkerStartFailed):
            seen["start_failed"] = message.reason
        elif isinstance(message, m.PySpyFrames) and any("/flashtui/" in f.filename for f in message.hot.frames):
            seen["frames"] = message

    saved: list[Path] = []
    app = FlashTuiApp(default_spec_overrides=overrides, journal=args.journal)

    def save(name: str) -> None:
        app.clear_notifications()
        saved.append(Path(app.save_screenshot(filename=name, path=str(out))))
        note(f"saved {saved[-1]}")

    async def report_stalls() -> None:
        while True:
            await asyncio.sleep(args.stall_report_s)
            with open(out / "stall-report.txt", "a") as handle:
                handle.write(stall_report(app))

    async with app.run_test(size=(width, height), message_hook=hook) as pilot:
        reporter = asyncio.create_task(report_stalls()) if args.stall_report_s > 0 else None
        note("starting the worker (importing torch)…")
        await wait_until(pilot, lambda: app.sweep.ready or seen["start_failed"], 300)
        if not app.sweep.ready:
            note(f"the worker did not start: {seen['start_failed'] or 'timed out'}")
            return 3
        device = app.sweep.ready.provenance.get("device_name")
        note(f"worker ready on {device}")
        if args.doctor:
            await pilot.press("d")
            note("probing (tiny kernels in every backend)…")
            if await wait_until(pilot, lambda: app.doctor.report or not app.doctor.probe_running, args.probe_timeout_s):
                await pilot.pause(0.3)
            save("doctor.svg")
            await pilot.press("escape")
        try:
            spec = SweepSpec(**{**app.defaults(), **overrides})
        except (SpecError, TypeError) as exc:
            note(f"bad spec: {exc}")
            return 2
        note(f"sweep: {spec.to_dict()}")
        if not await app.start_sweep(spec):
            note("the sweep did not start")
            return 3
        if args.pyspy:
            await wait_until(pilot, lambda: app.sweep.done >= 1 or seen["finished"], args.timeout_s)
            await pilot.press("y")
            await wait_until(pilot, lambda: seen["frames"] or seen["finished"] or app.pyspy.fatal,
                             args.pyspy_wait_s)
            await pilot.pause(0.3)
            save("pyspy.svg")
            await pilot.press("y")
        done = await wait_until(pilot, lambda: seen["finished"], args.timeout_s)
        if not done:
            note(f"no SweepFinished within {args.timeout_s:.0f} s; saving what is on screen")
        await pilot.pause(0.5)  # the throttled table redraw
        save("run.svg")
        await pilot.press("g")
        await pilot.pause(1.0)  # charts redraw at most every 0.5 s
        save("charts.svg")
        for w, h in also:  # the same finished session redrawn at another terminal size
            await pilot.press("g")  # back to the live tab
            await pilot.resize_terminal(w, h)
            await pilot.pause(1.0)
            save(f"run-{w}x{h}.svg")
            await pilot.press("g")
            await pilot.pause(1.0)
            save(f"charts-{w}x{h}.svg")
        if reporter is not None:
            reporter.cancel()
        if app.sweep.session is not None:
            note(f"session {app.sweep.session.id}: {len(app.sweep.session.cells)} cells, status {app.sweep.session.status}")
            import json

            # The session itself, so the shots can be checked against (and redrawn from) it.
            (out / "session.json").write_text(json.dumps(app.sweep.session.to_dict(), indent=1) + "\n")
    print("\n".join(str(p) for p in saved))
    return 0 if done else 1


def main(argv: list[str] | None = None) -> int:
    try:
        return asyncio.run(shoot(parse_args(argv)))
    except Exception as exc:  # AppStopped, or the app's own exception re-raised by run_test
        if not isinstance(exc, AppStopped):
            import traceback

            traceback.print_exc()
        note(f"the app stopped: {type(exc).__name__}: {exc}")
        return 4


if __name__ == "__main__":
    sys.exit(main())
