"""Proof of dispatch: which kernels actually ran for a backend, and do they match it.

Users are regularly fooled by a backend that silently fell back to another kernel.
After timing, outside the timed region, the names of the GPU kernels one call launches
(on CPU: the aten ops) are kept with the cell. On CUDA they are read from a CUDA-graph
capture of the call (engine.graph_kernels: milliseconds, no CUPTI start-up); a call that
cannot be captured runs once under torch.profiler instead. A fused backend whose kernels
include none of its own and a softmax of the textbook path is flagged: "requested
sdpa-flash, ran a math kernel".
"""

from __future__ import annotations

import re
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import torch

from flashtui.engine import graph_kernels
from flashtui.engine.backends import Backend

# Kernels of the textbook (materializing) path: a fused backend should launch none.
MATH_SIGNS = re.compile(r"softmax|SoftMax|_scaled_dot_product_attention_math", re.I)
MAX_NAMES = 8


@dataclass(frozen=True)
class Verdict:
    ok: bool | None  # None: nothing to judge (no names observed)
    reason: str | None = None


_profiler_started: set[str] = set()  # devices whose profiler start-up this process has paid


def warm_up_profiler(device: str, progress: Callable[[str], None] = lambda text: None,
                     log: Callable[[str, str], None] = lambda level, text: None) -> None:
    """Pay torch.profiler's once-per-process start-up now (a no-op once paid).

    The first profiled call in a process initializes the profiler backend (kineto, and
    CUPTI on CUDA): seconds on a loaded 2-core CPU (7-12 s seen). Paid inside the first
    cell, a fresh worker's first healthy cell could outlast the client's per-cell
    watchdog; every runner calls this before its first cell instead.
    """
    if device in _profiler_started:
        return
    progress("starting torch.profiler (once per worker)")
    started = time.perf_counter()
    observe(lambda: torch.ones(2, device=device) * 2, device)
    log("info", f"torch.profiler start-up took {time.perf_counter() - started:.2f} s")


@dataclass(frozen=True)
class Observed:
    names: list[str] | None  # None: nothing could be observed
    method: str | None  # "cuda-graph" (all, capture order) or "profiler" (top MAX_NAMES by device time)
    profiler_start_s: float = 0.0  # the profiler's start-up, when this call paid it


def needs_profiler(device: str) -> bool:
    """Whether kernels are observed with torch.profiler here (its start-up then belongs
    before the first cell); on a CUDA box that can name a capture's kernels it is not."""
    return not (device == "cuda" and graph_kernels.available())


def observe_kernels(fn: Callable[[], object], device: str) -> Observed:
    """The kernels (CUDA) or ops (CPU) one call launches, and how they were observed.

    CUDA: a graph capture first; a call it cannot read (host syncs) goes to the profiler,
    whose first start in this process is paid here then and reported as its own seconds.
    """
    if device == "cuda":
        captured = graph_kernels.captured_kernel_names(fn)
        if captured:
            return Observed(_in_order(captured), "cuda-graph")
    start_s = 0.0
    if device not in _profiler_started:
        started = time.perf_counter()
        warm_up_profiler(device)
        start_s = time.perf_counter() - started
    names = observe(fn, device)
    return Observed(names, "profiler" if names is not None else None, start_s)


def _in_order(names: list[str]) -> list[str]:
    """Distinct names, shortened, in first-launch order (a capture has no durations), all
    of them: the verdict must see every kernel (the math path launches a dozen, its
    softmax after eight others); ``shown`` picks the few a cell keeps."""
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(_short(name), None)
    return list(seen)


def telling(backend: Backend, names: list[str]) -> list[str]:
    """The names a verdict rests on: the backend's own kernels and any math-path sign."""
    patterns = [re.compile(p, re.I) for p in backend.kernel_patterns] + [MATH_SIGNS]
    return [n for n in names if any(p.search(n) for p in patterns)]


def shown(backend: Backend, names: list[str] | None) -> list[str] | None:
    """The MAX_NAMES names a cell keeps: the telling ones first, then the rest in the
    order observed."""
    if names is None:
        return None
    first = telling(backend, names)
    return (first + [n for n in names if n not in first])[:MAX_NAMES]


def observe(fn: Callable[[], object], device: str) -> list[str] | None:
    """Names of the kernels (CUDA) or ops (CPU) one call launches under torch.profiler,
    most time first."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(ProfilerActivity.CUDA)
    try:
        with warnings.catch_warnings():
            # torch warns once per process that a profiler cycle clears its events; one
            # call per cycle is exactly what is wanted here, and the line would land in
            # every user's worker log.
            warnings.filterwarnings("ignore", message=".*Profiler clears events.*")
            with profile(activities=activities) as prof:
                fn()
                if device == "cuda":
                    torch.cuda.synchronize()
        _profiler_started.add(device)
    except Exception:  # noqa: BLE001 - a profiler hiccup must not cost the measurement
        return None
    weights: Counter[str] = Counter()
    for event in prof.events():
        is_kernel = str(getattr(event, "device_type", "")).endswith("CUDA")
        if device == "cuda" and not is_kernel:
            continue
        if device != "cuda" and not event.name.startswith("aten::"):
            continue
        duration = getattr(event, "device_time_total", 0) if device == "cuda" else event.cpu_time_total
        weights[_short(event.name)] += max(float(duration or 0), 1e-9)
    return [name for name, _ in weights.most_common(MAX_NAMES)]


# Which SDPA kernel a list of observed names shows, most specific first (cuDNN's kernel
# names contain "flash_fprop", so cuDNN is asked before flash).
_SDPA_SIGNS = (("CUDNN_ATTENTION", re.compile(r"cudnn", re.I)),
               ("EFFICIENT_ATTENTION", re.compile(r"fmha|efficient_attention|cutlassF", re.I)),
               ("FLASH_ATTENTION", re.compile(r"flash", re.I)),
               ("MATH", re.compile(r"_scaled_dot_product_attention_math|softmax", re.I)))


def sdpa_kernel_from_names(names: list[str] | None) -> str | None:
    """The SDPBackend name ("FLASH_ATTENTION", ...) whose kernels ran, or None if none is seen."""
    joined = "\n".join(names or ())
    for kernel, sign in _SDPA_SIGNS:
        if sign.search(joined):
            return kernel
    return None


def _short(name: str, limit: int = 120) -> str:
    name = " ".join(name.split())
    return name if len(name) <= limit else name[: limit - 1] + "…"


def check(backend: Backend, names: list[str] | None, device: str) -> Verdict:
    if not names:
        return Verdict(None)
    joined = "\n".join(names)
    own = any(re.search(p, joined, re.I) for p in backend.kernel_patterns)
    if backend.memory_model == "scores":
        return Verdict(own, None if own else f"requested {backend.name}, but none of its kernels ran: {names[0]}")
    math_seen = [n for n in names if MATH_SIGNS.search(n)]
    if math_seen and not own:
        return Verdict(False, f"requested {backend.name}, ran a math kernel ({math_seen[0]})")
    if not own:
        return Verdict(False, f"requested {backend.name}, ran {names[0]}")
    return Verdict(True)
