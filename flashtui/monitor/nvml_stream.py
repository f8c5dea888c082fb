"""`python -m flashtui.monitor.nvml_stream`: the NVML sampler as a process, samples as JSON lines.

Runs on a remote GPU host beside the worker (``flashtui --host``; the client side is
``flashtui.client.remote.RemoteNvmlSampler``). A process of its own, not a thread in the
worker, for the same reason the local sampler lives in the client: it must not share the
measured code's GIL. Standard library and pynvml only (no torch).

stdout: first ``{"status": {...}}`` (NvmlStatus), then ``{"sample": {...}}`` per reading,
and ``{"stats": {...}}`` when it stops. stdin: ``pid N`` (watch another worker pid, after a
restart), ``stop`` or EOF (the ssh link is gone) ends it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any, Sequence

from flashtui.monitor.nvml import DEFAULT_RATE_HZ, NvmlSampler


def _write(lock: threading.Lock, item: dict[str, Any]) -> None:
    line = json.dumps(item, separators=(",", ":"), default=str)
    with lock:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError):
            pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flashtui.monitor.nvml_stream")
    parser.add_argument("--rate-hz", type=float, default=DEFAULT_RATE_HZ)
    parser.add_argument("--pci-bus-id")
    parser.add_argument("--uuid")
    parser.add_argument("--index", type=int)
    parser.add_argument("--pid", type=int)
    args = parser.parse_args(argv)
    lock = threading.Lock()
    sampler = NvmlSampler(rate_hz=args.rate_hz, pci_bus_id=args.pci_bus_id, uuid=args.uuid,
                          index=args.index, pid=args.pid)
    sampler.on_sample(lambda sample: _write(lock, {"sample": sample.to_dict()}))
    status = sampler.start()
    _write(lock, {"status": status.to_dict()})
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["stop"]:
            break
        if len(words) == 2 and words[0] == "pid":
            sampler.watch_pid(int(words[1]) if words[1].isdigit() else None)
    sampler.stop()
    _write(lock, {"stats": sampler.stats()})
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
