"""Memory: allocator peak of one call above the baseline with its inputs resident.

The seed notebook compared peaks against a baseline taken before the inputs (and the
other model) were allocated, which is how flash "used 47% more". Here the baseline is
``memory_allocated()`` right before the call, after inputs exist and caches are clear,
so the figure is what the call itself needs: workspace, intermediates and its output.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Callable

import torch


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


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


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
