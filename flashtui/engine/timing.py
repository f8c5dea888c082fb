"""Timing: device events around blocks of calls, warm-up measured in time, median and IQR.

On CUDA each rep is a *block* of back-to-back calls bracketed by one pair of CUDA events
(as torch.utils.benchmark's blocked_autorange does): a block lasts at least
BLOCK_TARGET_MS of device time, so a 30 µs kernel is timed over ~30 calls and the
per-rep event and Python overhead stops distorting it, while a 40 ms kernel is one
call per block. The per-call time is block time / calls; median and IQR are over
blocks. The host does not synchronize between reps, so the GPU sees the same stream a
training loop gives it; when launching a call costs the host more than the GPU spends
running it, that idle time is inside the events, as it would be in the user's loop.

Host time (how long one call takes to return to Python: the launch cost) is measured
in a separate short pass, so that a launch-bound cell stands out: host_ms >= median_ms.
On CPU, perf_counter around each call.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

# A cell never spends more than this timing reps (a slow cell gets fewer reps).
MAX_TIMED_S = 20.0
# Device time one timed block should last at least; and a cap on calls per block.
BLOCK_TARGET_MS = 1.0
MAX_CALLS_PER_BLOCK = 1000
HOST_PASS_CALLS = 20


@dataclass(frozen=True)
class Timing:
    median_ms: float
    iqr_ms: float
    min_ms: float
    reps: int
    warmup_calls: int
    # Median host time for the call to return (None on CPU, where it *is* the time).
    host_ms: float | None
    samples_ms: tuple[float, ...]
    # Epoch seconds bracketing the timed reps, to match monitor samples (clocks, power).
    wall_window_s: tuple[float, float] = (0.0, 0.0)
    # Back-to-back calls inside one timed block (1 for calls longer than BLOCK_TARGET_MS).
    calls_per_rep: int = 1


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarize(samples_ms: list[float], warmup_calls: int, host_ms: list[float] | None,
              wall_window_s: tuple[float, float] = (0.0, 0.0), calls_per_rep: int = 1) -> Timing:
    q1, median, q3 = _quartiles(samples_ms)
    return Timing(
        median_ms=median, iqr_ms=q3 - q1, min_ms=min(samples_ms), reps=len(samples_ms),
        warmup_calls=warmup_calls,
        host_ms=statistics.median(host_ms) if host_ms else None,
        samples_ms=tuple(samples_ms), wall_window_s=wall_window_s, calls_per_rep=calls_per_rep,
    )


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def warm_up(fn: Callable[[], object], device: str, warmup_ms: float, min_calls: int = 2) -> tuple[int, float]:
    """Call ``fn`` back to back until ``warmup_ms`` of wall time has passed (>= ``min_calls``).

    Returns (calls, last per-call ms). The first call runs alone (it pays compilation
    and autotuning); later calls run in growing bursts with one sync per burst, so the
    GPU stays busy and its clocks ramp to where they will be during the timed reps (a
    sync after every call leaves an H100 idle half the time at small sizes, and its SM
    clock low).
    """
    calls = 0
    burst = 1
    start = time.perf_counter()
    last_ms = 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(burst):
            fn()
        _sync(device)
        last_ms = (time.perf_counter() - t0) * 1e3 / burst
        calls += burst
        elapsed_ms = (time.perf_counter() - start) * 1e3
        if calls >= min_calls and elapsed_ms >= warmup_ms:
            return calls, last_ms
        remaining_ms = max(warmup_ms - elapsed_ms, 0.0)
        # Bursts of ~10 ms (or what is left), never more than the remaining time needs.
        burst = int(max(1, min(burst * 2, min(10.0, remaining_ms) / max(last_ms, 1e-3))))


def _estimate_ms(fn: Callable[[], object], calls: int = 5) -> float:
    """Per-call device time of a short back-to-back burst (after warm-up)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / calls


def host_launch_ms(fn: Callable[[], object], calls: int = HOST_PASS_CALLS) -> float:
    """Median wall time for one call to return to Python (no sync): the launch cost."""
    samples = []
    for _ in range(calls):
        h0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - h0) * 1e3)
    torch.cuda.synchronize()
    return statistics.median(samples)


def time_calls(fn: Callable[[], object], device: str, reps: int, warmup_ms: float,
               should_stop: Callable[[], bool] = lambda: False) -> Timing:
    """Warm up by time, then time ``reps`` blocks (fewer if they would exceed MAX_TIMED_S).

    The garbage collector is paused for the duration, as ``timeit`` does: a gen-2 pass
    over the worker's heap landing inside a launch-bound block would be billed to the
    kernel (FA4's Python dispatch allocates enough to trigger them).
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _time_calls(fn, device, reps, warmup_ms, should_stop)
    finally:
        if was_enabled:
            gc.enable()


def _time_calls(fn: Callable[[], object], device: str, reps: int, warmup_ms: float,
                should_stop: Callable[[], bool]) -> Timing:
    warmup_calls, last_ms = warm_up(fn, device, warmup_ms)
    if device == "cuda":
        per_call_ms = _estimate_ms(fn)
        block = int(min(MAX_CALLS_PER_BLOCK, max(1, -(-BLOCK_TARGET_MS // max(per_call_ms, 1e-6)))))
        reps = max(3, min(reps, int(MAX_TIMED_S * 1e3 / max(per_call_ms * block, 1e-6))))
        host = host_launch_ms(fn)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        wall_start_s = time.time()
        done = 0
        for i in range(reps):
            starts[i].record()
            for _ in range(block):
                fn()
            ends[i].record()
            done += 1
            if should_stop():
                break
        torch.cuda.synchronize()
        samples = [starts[i].elapsed_time(ends[i]) / block for i in range(done)]
        return summarize(samples, warmup_calls, [host], (wall_start_s, time.time()), block)
    if last_ms > 0:
        reps = max(3, min(reps, int(MAX_TIMED_S * 1e3 / last_ms)))
    wall_start_s = time.time()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
        if should_stop():
            break
    return summarize(samples, warmup_calls, None, (wall_start_s, time.time()))
