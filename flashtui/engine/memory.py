"""Memory: allocator peak of one call above the baseline, and the guard before a cell.

The seed notebook compared peaks against a baseline taken before the inputs (and the
other model) were allocated, which is how flash "used 47% more". Here the baseline is
``memory_allocated()`` right before the call, after inputs exist and caches are clear,
so the figure is what the call itself needs: workspace, intermediates and its output.

The guard (:func:`room`, :func:`refusal`): before a cell allocates anything, the runner
predicts what it must hold (its inputs, the backend's theory bytes such as the S x S
scores of standard attention, the fp64 oracle) and compares that with what the device
has free. A cell that clearly cannot fit is an ``oom`` result with the reason
"needs X GiB, Y GiB free", without allocating. Margins:

- CUDA: refused when ``need > free``, where free is ``torch.cuda.mem_get_info()``'s
  free bytes plus what PyTorch's cache holds unused. The prediction is a lower bound
  (what the call must materialize by construction), so a refused cell could never
  have run; a borderline cell the guard lets through and CUDA refuses is still an
  ``oom`` result (``is_oom``), as before the guard.
- CPU: refused when ``need * 1.25 + 512 MiB > available``. Host memory has no
  allocator error to catch: past the limit comes swap or the kernel's OOM killer,
  which takes the whole worker. The 25% covers the temporaries the predictions leave
  out (PyTorch's scale and mask copies, the softmax's output beside its input) and
  512 MiB the interpreter's own growth. Available is the least of /proc/meminfo's
  MemAvailable, the cgroup's ``memory.max - memory.current`` and the address-space
  and data limits (RLIMIT_AS, RLIMIT_DATA) less what the process already maps.
"""

from __future__ import annotations

import gc
import os
import resource
from dataclasses import dataclass
from typing import Callable

import torch

from flashtui.core.units import fmt_bytes

GIB = 1 << 30
# CPU margin (see the module docstring): need * CPU_FACTOR + CPU_RESERVE_BYTES must fit.
CPU_FACTOR = 1.25
CPU_RESERVE_BYTES = 512 << 20


@dataclass(frozen=True)
class MemoryPeak:
    peak_alloc_bytes: int | None
    reserved_bytes: int | None
    baseline_bytes: int | None


def measure_peak(fn: Callable[[], object], device: str) -> MemoryPeak:
    """Run ``fn`` once and report its allocator peak above baseline (CUDA only; CPU -> None)."""
    if device != "cuda":
        fn()
        return MemoryPeak(None, None, None)
    torch.cuda.synchronize()
    gc.collect()
    baseline = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    result = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - baseline
    reserved = torch.cuda.memory_reserved()
    del result
    return MemoryPeak(int(peak), int(reserved), int(baseline))


# How PyTorch's CPU allocator says it (a RuntimeError, not an OutOfMemoryError).
_CPU_OOM = ("can't allocate memory", "cannot allocate memory")


def is_oom(exc: BaseException) -> bool:
    """CUDA's OOM, the CPU allocator's refusal, or Python's MemoryError."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or any(s in text for s in _CPU_OOM))


@dataclass(frozen=True)
class Room:
    """Bytes free for a cell on one device, and which limit gave the figure."""

    free_bytes: int
    source: str


def room(device: str) -> Room:
    """What a cell may still allocate on ``device`` (see the module docstring)."""
    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        cached = max(torch.cuda.memory_reserved() - torch.cuda.memory_allocated(), 0)
        return Room(int(free + cached), "free GPU memory")
    return host_room()


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _status_bytes(field: str, path: str = "/proc/self/status") -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cgroup_room(root: str = "/sys/fs/cgroup") -> int | None:
    """cgroup v2 ``memory.max - memory.current`` of this process's group (None: no limit)."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((line.split(":", 2)[2].strip() for line in f if line.startswith("0::")), None)
    except OSError:
        return None
    if rel is None:
        return None
    folder = os.path.join(root, rel.lstrip("/"))
    try:
        with open(os.path.join(folder, "memory.max")) as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(folder, "memory.current")) as f:
            current = int(f.read().strip())
        return max(int(limit) - current, 0)
    except (OSError, ValueError):
        return None


def host_room() -> Room:
    """The least of MemAvailable, the cgroup's room, and RLIMIT_AS / RLIMIT_DATA's room."""
    options: list[tuple[int, str]] = []
    available = _meminfo_available()
    if available is not None:
        options.append((available, "host MemAvailable"))
    cgroup = _cgroup_room()
    if cgroup is not None:
        options.append((cgroup, "cgroup memory.max"))
    for limit_name, field, label in ((resource.RLIMIT_AS, "VmSize", "ulimit -v (RLIMIT_AS)"),
                                     (resource.RLIMIT_DATA, "VmData", "ulimit -d (RLIMIT_DATA)")):
        soft, _hard = resource.getrlimit(limit_name)
        if soft != resource.RLIM_INFINITY:
            options.append((max(soft - _status_bytes(field), 0), label))
    if not options:
        return Room(1 << 62, "unknown (no /proc/meminfo)")
    free, source = min(options)
    return Room(int(free), source)


def refusal(need_bytes: int, free: Room, device: str, what: str = "") -> str | None:
    """Why ``need_bytes`` clearly cannot fit in ``free`` (None when it may fit)."""
    if device == "cuda":
        fits = need_bytes <= free.free_bytes
    else:
        fits = need_bytes * CPU_FACTOR + CPU_RESERVE_BYTES <= free.free_bytes
    if fits:
        return None
    margin = "" if device == "cuda" else "; CPU margin +25% +512 MiB"
    prefix = f"{what} " if what else ""
    return f"{prefix}needs {fmt_bytes(need_bytes)}, {fmt_bytes(free.free_bytes)} free ({free.source}{margin})"


# CUDA errors after which the context cannot be used again (they are "sticky").
STICKY_CUDA_ERRORS = ("device-side assert", "illegal memory access", "unspecified launch failure",
                      "illegal instruction", "misaligned address", "CUDA error: an illegal")


def is_poisoned(reason: str | None) -> bool:
    """True when a failure text names a sticky CUDA error: this process's GPU is done."""
    return bool(reason) and any(s in reason for s in STICKY_CUDA_ERRORS)


def release(device: str) -> None:
    """Give cached blocks back after an OOM or a big cell, so the next cell starts clean."""
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
