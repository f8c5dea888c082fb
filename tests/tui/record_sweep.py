"""Record one real sweep's client events as JSON lines, for replay in tests.

    python tests/tui/record_sweep.py OUT.jsonl [bench flags...]

Line 1 says how it was recorded (``bench_args``, the client's ``ready_wall_s``); then
``WorkerReady`` and every event ``WorkerClient.run_sweep`` yielded, client events
(``WorkerDied``, ``WorkerRestarted``) included, each as :func:`flashtui.core.protocol.encode`
writes it. :class:`flashtui.testing.scripted.ReplayClient` plays such a file back.

``flashtui/testing/sweep_h200.jsonl`` was recorded on an H200 (torch 2.11, CUDA 13) with these bench flags:
``--seq 128,256 --dtype bf16 --backends standard,sdpa-math,sdpa-flash --heads 4
--head-dim 64 --reps 5 --warmup-ms 5`` and ``FLASHTUI_INJECT_FAULT=kill@sdpa-math@256``,
so the stream has a worker death in it. It was written by the same loop on the client of
the dict-based protocol (before the typed messages), whose lines are the same
protocol-v1 JSON: replaying it also checks that the typed decoder reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flashtui.client.worker_client import WorkerClient
from flashtui.commands import bench
from flashtui.core.protocol import encode


def main(argv: list[str]) -> int:
    out, bench_args = Path(argv[0]), argv[1:]
    parser = argparse.ArgumentParser(prog="flashtui")
    bench.register(parser.add_subparsers())
    args = parser.parse_args(["bench", *bench_args])
    client = WorkerClient(cell_timeout_s=args.cell_timeout)
    try:
        ready = client.start()
        ready_wall_s = client.ready_wall_s  # the first worker's (a restart replaces it)
        spec = bench.spec_from_args(args, ready.device_kind == "cuda")
        lines = [encode(ready)]
        for event in client.run_sweep(spec, spec.cells(ready.available(spec.device))):
            lines.append(encode(event))
            print(event.type, file=sys.stderr)
    finally:
        client.close()
    head = {"flashtui_recording": 1, "bench_args": bench_args, "ready_wall_s": ready_wall_s}
    out.write_text(json.dumps(head) + "\n" + "".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
