"""Where a cell's wall time goes: one clock, marked after each phase of a measurement.

A cell records ``extra["phases_s"]``: inputs (random q/k/v, prepare), first_call (where
flex and fa4 compile), warmup, timing (the timed reps, re-measurements, device time),
memory (the peak-memory pass), dispatch (the kernel-observing pass), parity_oracle (the
fp64 reference, built once per (seq, dtype) group, billed to the cell that built it) and
parity, and heap (settle_heap after a backend's first call). A fresh worker's first cell
also carries ``extra["start_up_s"]``: its one-time start-up (pay_start_up), paid before
the cell and outside its duration (the session's ``start_up`` phase); a cell whose kernels
had to be observed under torch.profiler, in a worker that had not started it, carries
that start as its own phase, ``profiler_start``. Each mark
synchronizes the device first, so a phase owns its own kernels. Diagnostics only: none
of this is inside a timed rep.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

# Backends whose first call on a new shape compiles (torch.compile, CuTe DSL): that call's
# wall time is reported as extra["compile_s"].
COMPILES_ON_FIRST_CALL = ("flex", "fa4")


class PhaseClock:
    def __init__(self, device_kind: str) -> None:
        self.device_kind = device_kind
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def mark(self, name: str, less: tuple[str, float | None] | None = None) -> float:
        """Close the phase ``name`` now; ``less`` splits a named part off it. Returns its seconds."""
        if self.device_kind == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        spent = now - self._mark
        self._mark = now
        if less is not None and less[1] is not None:
            part = min(max(less[1], 0.0), spent)
            self.seconds[less[0]] = self.seconds.get(less[0], 0.0) + part
            spent -= part
        self.seconds[name] = self.seconds.get(name, 0.0) + spent
        return spent

    def rounded(self) -> dict[str, float]:
        return {name: round(value, 4) for name, value in self.seconds.items()}


def settle_heap() -> None:
    """Collect once, then freeze what survives (``gc.freeze``).

    A worker with torch, inductor and the CuTe DSL loaded holds millions of long-lived
    objects, and a full ``gc.collect()`` walks them all: on the H200 box (torch 2.11) the
    memory pass, one sub-millisecond call plus one collection, took 0.27-0.31 s a cell,
    and the timing pass collects too: together about a third of a 51 s default sweep.
    Called once after start-up and after each backend's first call (its imports and
    compiled code are in memory for good by then), later collections only walk what is
    new; garbage is still collected first, so nothing a cell freed is kept alive.
    """
    import gc

    gc.collect()
    gc.freeze()


def resettle_heap() -> None:
    """Unfreeze, collect everything, freeze again: at a (seq, dtype) group change, so a
    reference cycle that became garbage after it was frozen (one holding a tensor would
    hold GPU memory) lives at most one group. One full walk per group, not per cell; on
    CUDA only where device memory outlived the group (``device_bytes_held``): a cycle that
    holds no tensor holds host memory only, and waits for the next walk."""
    import gc

    gc.unfreeze()
    settle_heap()


def device_bytes_held(device_kind: str) -> int | None:
    """Bytes of live tensors on the device (the caching allocator's count); None on CPU,
    whose allocator keeps no such count."""
    return torch.cuda.memory_allocated() if device_kind == "cuda" else None


def pay_start_up(device_kind: str, progress: Callable[[str], None],
                 log: Callable[[str, str], None], profiler: bool | None = None) -> float:
    """A worker's one-time costs that belong to no cell: torch.profiler's start-up (4.9-5.8 s
    under CUPTI on the H200), when kernels will be observed with it, and the heap settled
    after it. Seconds it took (~0 once paid). ``profiler``: None = only where the dispatch
    pass needs it (dispatch.needs_profiler: CPU, or CUDA that cannot read a capture);
    True = always (model mode profiles whole forwards; WarmUp has idle time to spend).
    Every runner calls it before its first cell; the WarmUp request calls it earlier."""
    from flashtui.engine import dispatch

    started = time.perf_counter()
    if profiler or (profiler is None and dispatch.needs_profiler(device_kind)):
        dispatch.warm_up_profiler(device_kind, progress, log)
    settle_heap()
    return time.perf_counter() - started


__all__ = ["COMPILES_ON_FIRST_CALL", "PhaseClock", "device_bytes_held", "pay_start_up", "resettle_heap", "settle_heap"]
