"""Stand-ins for the NVML sampler (``flashtui.monitor.nvml.NvmlSampler``'s interface:
``on_sample``, ``watch_pid``, ``start``, ``stop``), for the TUI's tests and benchmarks.

* :class:`NoSampler` reports no GPU (the CPU machine's normal state) and never samples.
* :class:`SyntheticSampler` calls its subscribers from its own thread at ``rate_hz``
  with plausible GPU memory readings, like the real one on a GPU.

Both are what a sampler factory returns (it is called with the worker's ready event):
``FlashTuiApp(sampler_factory=NoSampler)``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

GIB = 1024 ** 3


@dataclass(frozen=True)
class FakeSample:
    t_s: float
    wall_time: float
    mem_used_bytes: int
    mem_total_bytes: int = 80 * GIB
    proc_mem_bytes: int | None = None


class NoSampler:
    """A sampler reporting no GPU (the CPU machine's normal state)."""

    def __init__(self, ready: Any = None) -> None:
        self.callbacks: list[Callable[[Any], None]] = []

    def on_sample(self, cb: Callable[[Any], None]) -> Callable[[], None]:
        self.callbacks.append(cb)
        return lambda: None

    def watch_pid(self, pid: int | None) -> None:
        pass

    def start(self) -> Any:
        class Status:
            available = False
            reason = "no NVIDIA driver on this machine (test)"
        return Status()

    def stop(self) -> None:
        pass


class SyntheticSampler:
    """Samples at ``rate_hz`` from its own thread: used memory cycling 10-30 GiB."""

    def __init__(self, ready: Any = None, rate_hz: float = 20.0) -> None:
        self.rate_hz = rate_hz
        self.callbacks: list[Callable[[Any], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.n_samples = 0

    def on_sample(self, cb: Callable[[Any], None]) -> Callable[[], None]:
        self.callbacks.append(cb)
        return lambda: None

    def watch_pid(self, pid: int | None) -> None:
        pass

    def start(self) -> Any:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

        class Status:
            available = True
            reason = None
        return Status()

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            i = self.n_samples
            sample = FakeSample(time.monotonic(), time.time(), int((10 + (i % 40) * 0.5) * GIB),
                                proc_mem_bytes=int((2 + (i % 40) * 0.5) * GIB))
            for cb in self.callbacks:
                cb(sample)
            self.n_samples += 1
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
