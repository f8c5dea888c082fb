"""Timing: device events around each call, warm-up measured in time, median and IQR.

On CUDA each rep is bracketed by a pair of CUDA events recorded on the current stream;
the host does not synchronize between reps, so the GPU sees the same back-to-back
stream a training loop gives it, and a launch-bound call shows up as device idle time
inside its events. The host wall time of each call (how long it took to return to
Python, i.e. to launch) is kept beside it. On CPU, perf_counter around each call.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

# A cell never spends more than this timing reps (a slow cell gets fewer reps).
MAX_TIMED_S = 20.0


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


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarize(samples_ms: list[float], warmup_calls: int, host_ms: list[float] | None,
              wall_window_s: tuple[float, float] = (0.0, 0.0)) -> Timing:
    q1, median, q3 = _quartiles(samples_ms)
    return Timing(
        median_ms=median, iqr_ms=q3 - q1, min_ms=min(samples_ms), reps=len(samples_ms),
        warmup_calls=warmup_calls,
        host_ms=statistics.median(host_ms) if host_ms else None,
        samples_ms=tuple(samples_ms), wall_window_s=wall_window_s,
    )


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def warm_up(fn: Callable[[], object], device: str, warmup_ms: float, min_calls: int = 2) -> tuple[int, float]:
    """Call ``fn`` until ``warmup_ms`` of wall time has passed (and at least ``min_calls``).

    Returns (calls, last call's ms). The first call also pays compilation and autotuning,
    which is why warm-up is by time and not by a fixed count.
    """
    calls = 0
    start = time.perf_counter()
    last_ms = 0.0
    while True:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        last_ms = (time.perf_counter() - t0) * 1e3
        calls += 1
        if calls >= min_calls and (time.perf_counter() - start) * 1e3 >= warmup_ms:
            return calls, last_ms


def time_calls(fn: Callable[[], object], device: str, reps: int, warmup_ms: float,
               should_stop: Callable[[], bool] = lambda: False) -> Timing:
    """Warm up by time, then time ``reps`` calls (fewer if they would exceed MAX_TIMED_S)."""
    warmup_calls, last_ms = warm_up(fn, device, warmup_ms)
    if last_ms > 0:
        reps = max(3, min(reps, int(MAX_TIMED_S * 1e3 / last_ms)))
    host_ms: list[float] = []
    wall_start_s = time.time()
    if device == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        done = 0
        for i in range(reps):
            starts[i].record()
            h0 = time.perf_counter()
            fn()
            host_ms.append((time.perf_counter() - h0) * 1e3)
            ends[i].record()
            done += 1
            if should_stop():
                break
        torch.cuda.synchronize()
        samples = [starts[i].elapsed_time(ends[i]) for i in range(done)]
        return summarize(samples, warmup_calls, host_ms, (wall_start_s, time.time()))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
        if should_stop():
            break
    return summarize(samples, warmup_calls, None, (wall_start_s, time.time()))
