"""Test-only fault injection, so the fault-handling paths run against real processes.

Set ``FLASHTUI_INJECT_FAULT="KIND@BACKEND@SEQ"`` in the worker's environment and the
cell for that backend and sequence length suffers KIND: ``segfault`` (SIGSEGV in C),
``kill`` (SIGKILL to itself), ``hang`` (sleeps forever), ``oom`` (a CUDA-style OOM),
``raise`` (a plain exception) or ``device-assert`` (an out-of-bounds index in a CUDA
kernel, which poisons the context). Nothing reads this variable outside tests unless
a user sets it on purpose.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

import torch

from ..spec import CellKey

ENV = "FLASHTUI_INJECT_FAULT"


def maybe_inject(key: CellKey, device: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    try:
        kind, backend, seq = spec.split("@")
    except ValueError:
        return
    if backend != key.backend or int(seq) != key.seq:
        return
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
