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

Two times, both honest (CUDA): ``median_ms`` is what a Python loop sees; ``device_ms``
is what the kernels themselves take, from CUDA-graph replay (launch cost removed) or,
where the call cannot be captured, the profiler's kernel durations. They differ exactly
when a cell is launch-bound. ``cold_l2`` flushes the L2 cache before every call (as
``triton.testing.do_bench`` does) and then times each call alone.

A number is only as good as its conditions: a cell whose spread (IQR / median) exceeds
NOISY_IQR_FRACTION is measured again within REMEASURE_BUDGET_S; if it stays wide, or the
host's other processes kept the CPU busy where it matters, the timing says ``noisy``
with one sentence of why (see :mod:`flashtui.engine.hostload`).
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from flashtui.engine import hostload

# A cell never spends more than this timing reps (a slow cell gets fewer reps).
MAX_TIMED_S = 20.0
# Device time one timed block should last at least; and a cap on calls per block.
BLOCK_TARGET_MS = 1.0
MAX_CALLS_PER_BLOCK = 1000
HOST_PASS_CALLS = 20
# Spread above which a cell is re-measured, and called noisy if it stays there.
NOISY_IQR_FRACTION = 0.10
# Extra rounds a noisy cell may get, and the wall time they may take together.
REMEASURE_ROUNDS = 2
REMEASURE_BUDGET_S = 8.0
# Bytes written to flush L2 before each call with cold_l2 (do_bench uses 256 MB; H100/H200 L2 is 50 MB).
L2_FLUSH_BYTES = 256 << 20
# Graph replays timed for device_ms, and the device time one replay should last: a replay
# has a fixed cost (graph launch, two events: ~10-20 us on an H100/H200), which 5 ms makes
# negligible (<0.5%); sized from the loop time, a launch-bound call got too few calls per
# graph and read ~6% high against do_bench_cudagraph (fa4, B=4 S=1024, H200).
GRAPH_REPLAYS = 10
GRAPH_BLOCK_TARGET_MS = 5.0
MAX_CALLS_PER_GRAPH = 2000
# Warm-up: at least the spec's warmup_ms, then on until two bursts agree (per-call time
# within this fraction), at most WARMUP_CAP_MS; a burst lasts at most WARMUP_BURST_MS.
WARMUP_STEADY_FRACTION = 0.02
WARMUP_CAP_MS = 100.0
WARMUP_BURST_MS = 10.0


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
    # The kernels' own time per call (CUDA only) and how it was measured:
    # "cuda-graph" (graph replay), "profiler" (sum of kernel durations), None (not measured).
    device_ms: float | None = None
    device_ms_method: str | None = None
    device_ms_note: str | None = None
    # Rounds of timing this cell took (1 + re-measurements), and the verdict on its conditions.
    rounds: int = 1
    noisy: bool = False
    noise_reason: str | None = None
    # Other processes' CPU use while the reps ran, in cores (None where /proc/stat is absent).
    host_busy_cores: float | None = None
    host_cores: int | None = None
    cold_l2: bool = False
    # Wall seconds of the warm-up before the first timed round (a phase, not a timing).
    warmup_s: float | None = None
    # Whether the warm-up ended steady (two bursts agreed) rather than at its cap.
    warmup_steady: bool | None = None

    @property
    def rel_iqr(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else 0.0


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


def warm_up(fn: Callable[[], object], device: str, warmup_ms: float,
            min_calls: int = 2) -> tuple[int, float, bool]:
    """Call ``fn`` back to back for at least ``warmup_ms`` of wall time (>= ``min_calls``), and
    on until steady: two bursts in a row agree on the per-call time within
    WARMUP_STEADY_FRACTION, or max(warmup_ms, WARMUP_CAP_MS) has passed.

    Returns (calls, last per-call ms, steady). Calls run in growing bursts (~WARMUP_BURST_MS
    at most) with one sync per burst, so the GPU stays busy and its clocks ramp to where they
    will be during the timed reps (a sync after every call leaves an H100 idle half the time
    at small sizes, and its SM clock low); a per-call time still falling means clocks or
    caches are still settling, and the warm-up goes on. The first burst (one call) is never
    compared: it may pay lazy set-up the later calls do not.
    """
    cap_ms = max(warmup_ms, WARMUP_CAP_MS)
    calls = 0
    burst = 1
    start = time.perf_counter()
    last_ms = 0.0
    bursts: list[tuple[float, float]] = []  # (per-call ms, burst wall ms)
    while True:
        t0 = time.perf_counter()
        for _ in range(burst):
            fn()
        _sync(device)
        burst_ms = (time.perf_counter() - t0) * 1e3
        last_ms = burst_ms / burst
        bursts.append((last_ms, burst_ms))
        calls += burst
        elapsed_ms = (time.perf_counter() - start) * 1e3
        steady = is_steady(bursts)
        if calls >= min_calls and elapsed_ms >= warmup_ms and (steady or elapsed_ms >= cap_ms):
            return calls, last_ms, steady
        until_ms = warmup_ms if elapsed_ms < warmup_ms else cap_ms
        remaining_ms = max(until_ms - elapsed_ms, 0.0)
        # Bursts of ~WARMUP_BURST_MS (or what is left of the stretch, but long enough to compare).
        burst_target_ms = min(WARMUP_BURST_MS, max(remaining_ms, WARMUP_BURST_MS / 2))
        burst = int(max(1, min(burst * 2, burst_target_ms / max(last_ms, 1e-3))))


def is_steady(bursts: list[tuple[float, float]]) -> bool:
    """Whether the last two warm-up bursts (per-call ms, burst wall ms) agree within
    WARMUP_STEADY_FRACTION, each long enough (>= WARMUP_BURST_MS / 4) to be more than timer
    noise; the first burst does not count."""
    if len(bursts) < 3:
        return False
    (a, a_ms), (b, b_ms) = bursts[-2], bursts[-1]
    long_enough = min(a_ms, b_ms) >= WARMUP_BURST_MS / 4
    return long_enough and min(a, b) > 0 and abs(a - b) / min(a, b) <= WARMUP_STEADY_FRACTION


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
               should_stop: Callable[[], bool] = lambda: False, *, cold_l2: bool = False,
               device_time: bool = True, remeasure: bool = True) -> Timing:
    """Warm up by time, then time ``reps`` blocks (fewer if they would exceed MAX_TIMED_S).

    A round whose spread exceeds NOISY_IQR_FRACTION is followed by up to REMEASURE_ROUNDS
    more (twice the reps each) within REMEASURE_BUDGET_S; the tightest round is kept and
    the verdict (``noisy``, ``noise_reason``) says how it went. On CUDA ``device_ms`` is
    measured once, after the loop timing.

    The garbage collector is paused for the duration, as ``timeit`` does: a gen-2 pass
    over the worker's heap landing inside a launch-bound block would be billed to the
    kernel (FA4's Python dispatch allocates enough to trigger them).
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.int32, device="cuda") \
        if cold_l2 and device == "cuda" else None
    try:
        warmup_started = time.perf_counter()
        warmup_calls, last_ms, warmup_steady = warm_up(fn, device, warmup_ms)
        started = time.perf_counter()
        best = _round(fn, device, reps, should_stop, flush, last_ms)
        rounds = 1
        while (remeasure and best.rel_iqr > NOISY_IQR_FRACTION and rounds <= REMEASURE_ROUNDS
               and not should_stop()):
            spent_s = time.perf_counter() - started
            if spent_s / rounds * 2 > REMEASURE_BUDGET_S - spent_s:
                break  # another round (twice the reps) would overrun the budget
            again = _round(fn, device, reps * 2, should_stop, flush, last_ms)
            rounds += 1
            if again.rel_iqr < best.rel_iqr:
                best = again
        device_ms = method = note = None
        if device == "cuda" and device_time and not should_stop():
            device_ms, method, note = kernel_time_ms(fn, best.median_ms, flush)
        noisy, reason = judge(best, device, rounds)
        return Timing(
            median_ms=best.median_ms, iqr_ms=best.iqr_ms, min_ms=best.min_ms, reps=best.reps,
            warmup_calls=warmup_calls, host_ms=best.host_ms, samples_ms=best.samples_ms,
            wall_window_s=best.wall_window_s, calls_per_rep=best.calls_per_rep,
            device_ms=device_ms, device_ms_method=method, device_ms_note=note, rounds=rounds,
            noisy=noisy, noise_reason=reason, host_busy_cores=best.host_busy_cores,
            host_cores=best.host_cores, cold_l2=flush is not None, warmup_s=started - warmup_started,
            warmup_steady=warmup_steady,
        )
    finally:
        del flush
        if was_enabled:
            gc.enable()


def judge(timing: Timing, device: str, rounds: int) -> tuple[bool, str | None]:
    """(noisy, one sentence of why) from the spread and what the host was doing.

    Wide spread is noise by itself. Other processes busy on the host matter where the
    host is on the critical path: every CPU cell, and CUDA cells whose launch cost is at
    least half the measured time (the GPU waits for the host there).
    """
    why = []
    if timing.rel_iqr > NOISY_IQR_FRACTION:
        tried = f" after {rounds} rounds" if rounds > 1 else ""
        why.append(f"IQR {timing.rel_iqr:.0%} of median{tried}")
    busy, cores = timing.host_busy_cores, timing.host_cores
    if busy is not None and cores:
        host_bound = device != "cuda" or (timing.host_ms is not None and timing.host_ms >= 0.5 * timing.median_ms)
        threshold = hostload.BUSY_CORES_NOISY if device != "cuda" else max(1.0, hostload.BUSY_CORES_NOISY)
        if host_bound and busy >= threshold:
            why.append(f"host CPU busy {busy:.1f} of {cores} cores with other processes")
    return (True, "; ".join(why)) if why else (False, None)


def _round(fn: Callable[[], object], device: str, reps: int, should_stop: Callable[[], bool],
           flush: torch.Tensor | None, last_ms: float) -> Timing:
    load = hostload.HostLoad.start()
    if device == "cuda":
        timing = _cuda_round(fn, reps, should_stop, flush)
    else:
        timing = _cpu_round(fn, reps, should_stop, last_ms)
    busy, cores = load.stop()
    return Timing(**{**timing.__dict__, "host_busy_cores": busy, "host_cores": cores})


def _cuda_round(fn: Callable[[], object], reps: int, should_stop: Callable[[], bool],
                flush: torch.Tensor | None) -> Timing:
    per_call_ms = _estimate_ms(fn)
    # Cold L2: one call per event pair, the flush outside it (do_bench's way).
    block = 1 if flush is not None else \
        int(min(MAX_CALLS_PER_BLOCK, max(1, -(-BLOCK_TARGET_MS // max(per_call_ms, 1e-6)))))
    reps = max(3, min(reps, int(MAX_TIMED_S * 1e3 / max(per_call_ms * block, 1e-6))))
    host = host_launch_ms(fn)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    wall_start_s = time.time()
    done = 0
    for i in range(reps):
        if flush is not None:
            flush.zero_()
        starts[i].record()
        for _ in range(block):
            fn()
        ends[i].record()
        done += 1
        if should_stop():
            break
    torch.cuda.synchronize()
    samples = [starts[i].elapsed_time(ends[i]) / block for i in range(done)]
    return summarize(samples, 0, [host], (wall_start_s, time.time()), block)


def _cpu_round(fn: Callable[[], object], reps: int, should_stop: Callable[[], bool],
               last_ms: float) -> Timing:
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
    return summarize(samples, 0, None, (wall_start_s, time.time()))


def kernel_time_ms(fn: Callable[[], object], loop_ms: float,
                   flush: torch.Tensor | None = None) -> tuple[float | None, str | None, str | None]:
    """The kernels' own time per call: (ms, method, note when a method failed).

    CUDA-graph replay first: the call is captured once (``calls`` back to back, enough
    for ~GRAPH_BLOCK_TARGET_MS) and replayed between events, so no Python and no launch cost is inside.
    A call that cannot be captured (host syncs, CPU-side work) falls back to the sum of
    its kernels' durations under torch.profiler.
    """
    try:
        return graph_replay_ms(fn, loop_ms, flush), "cuda-graph", None
    except Exception as exc:  # noqa: BLE001 - capture refused: say why, try the profiler
        note = f"CUDA graph capture failed ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
        try:
            torch.cuda.synchronize()
        except Exception:  # noqa: BLE001
            pass
    try:
        ms = profiled_kernel_ms(fn)
    except Exception as exc:  # noqa: BLE001
        return None, None, f"{note}; profiler failed ({type(exc).__name__})"
    return (ms, "profiler", note) if ms else (None, None, f"{note}; the profiler saw no kernels")


def graph_calls(per_call_ms: float, target_ms: float = GRAPH_BLOCK_TARGET_MS) -> int:
    """How many calls one captured graph holds so that a replay lasts ~``target_ms``."""
    return int(min(MAX_CALLS_PER_GRAPH, max(1, -(-target_ms // max(per_call_ms, 1e-6)))))


def graph_replay_ms(fn: Callable[[], object], loop_ms: float, flush: torch.Tensor | None = None,
                    replays: int = GRAPH_REPLAYS) -> float:
    """Median per-call time of CUDA-graph replays of ``fn`` (raises when capture fails).

    The loop time over-estimates a launch-bound call's kernel time, so a graph sized from
    it is re-captured once, sized from the first replay's own per-call time, when it fell
    short of half the target. With ``flush`` (cold L2) each replay holds one call.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()  # warm on the capture stream: lazy allocations and caches happen outside the graph
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    if flush is not None:
        return _replay_median_ms(fn, 1, replays, flush)
    calls = graph_calls(loop_ms)
    first_ms = _replay_median_ms(fn, calls, 3, None)
    if calls < MAX_CALLS_PER_GRAPH and first_ms * calls < GRAPH_BLOCK_TARGET_MS / 2:
        calls = graph_calls(first_ms)
    return _replay_median_ms(fn, calls, replays, None)


def _replay_median_ms(fn: Callable[[], object], calls: int, replays: int,
                      flush: torch.Tensor | None) -> float:
    """Capture ``calls`` back-to-back calls in one graph; median per-call ms over replays."""
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
        graph.replay()  # first replay uploads the graph
        torch.cuda.synchronize()
        samples = []
        for _ in range(replays):
            if flush is not None:
                flush.zero_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / calls)
        return statistics.median(samples)
    finally:
        del graph
        torch.cuda.synchronize()


def profiled_kernel_ms(fn: Callable[[], object], calls: int = 3) -> float | None:
    """Sum of GPU kernel durations per call under torch.profiler (None if it saw none)."""
    import warnings

    from torch.profiler import ProfilerActivity, profile

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Profiler clears events.*")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(calls):
                fn()
            torch.cuda.synchronize()
    total_us = 0.0
    for event in prof.events():
        if str(getattr(event, "device_type", "")).endswith("CUDA"):
            total_us += float(getattr(event, "device_time_total", 0.0) or 0.0)
    return total_us / 1e3 / calls if total_us > 0 else None
