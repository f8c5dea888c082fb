"""Test-only fault injection, so the fault-handling paths run against real processes.

Set ``FLASHTUI_INJECT_FAULT="KIND@BACKEND@SEQ"`` in the worker's environment and the
cell for that backend and sequence length suffers KIND (several faults: a comma list,
``"kill@standard@64,oom@sdpa-math@128"``): ``segfault`` (SIGSEGV in C),
``kill`` (SIGKILL to itself), ``hang`` (sleeps forever), ``oom`` (a CUDA-style OOM),
``raise`` (a plain exception) or ``device-assert`` (an out-of-bounds index in a CUDA
kernel, which poisons the context). Nothing reads this variable outside tests unless
a user sets it on purpose. A malformed entry is reported on stderr (the worker log),
not ignored silently: a fault test must not pass because its fault never fired.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

import torch

from flashtui.core.spec import CellKey

ENV = "FLASHTUI_INJECT_FAULT"
KINDS = ("segfault", "kill", "hang", "oom", "raise", "device-assert")


def parse(spec: str) -> tuple[list[tuple[str, str, int]], list[str]]:
    """``"KIND@BACKEND@SEQ,..."`` -> ([(kind, backend, seq), ...], [problem, ...])."""
    faults: list[tuple[str, str, int]] = []
    problems: list[str] = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        try:
            kind, backend, seq = entry.split("@")
            faults.append((kind, backend, int(seq)))
        except ValueError:
            problems.append(f"{ENV}: ignoring {entry!r}, expected KIND@BACKEND@SEQ")
            continue
        if kind not in KINDS:
            problems.append(f"{ENV}: unknown fault kind {kind!r} in {entry!r}; one of {', '.join(KINDS)}")
    return faults, problems


_warned = False


def maybe_inject(key: CellKey, device: str) -> None:
    global _warned
    spec = os.environ.get(ENV)
    if not spec:
        return
    faults, problems = parse(spec)
    if problems and not _warned:
        _warned = True
        for problem in problems:
            print(problem, file=sys.stderr, flush=True)
    for kind, backend, seq in faults:
        if backend == key.backend and seq == key.seq:
            _inject(kind, device)


def _inject(kind: str, device: str) -> None:
    if kind == "segfault":
        ctypes.string_at(0)
    elif kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "hang":
        while True:
            time.sleep(3600)
    elif kind == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 TiB (injected)")
    elif kind == "raise":
        raise RuntimeError("injected failure")
    elif kind == "device-assert" and device == "cuda":
        index = torch.tensor([1 << 30], device="cuda")
        torch.zeros(4, device="cuda")[index].sum().item()
