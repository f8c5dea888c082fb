"""How busy the host's other processes kept the CPU while a cell was timed.

From /proc/stat (every core's busy jiffies) minus this process's own CPU time
(``os.times``), in cores. Linux only; elsewhere None. A fast cell's timed window can be
shorter than the kernel's 10 ms accounting tick, so a background thread reads both
counters every READ_INTERVAL_S and a window shorter than MIN_WINDOW_S is judged over the
last MIN_WINDOW_S instead: the conditions the cell ran in, not a rounding error. The
thread wakes ten times a second and holds the GIL for microseconds.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass

# Other processes using at least this many cores during a host-bound cell make it noisy.
BUSY_CORES_NOISY = 0.5
PROC_STAT = "/proc/stat"
READ_INTERVAL_S = 0.1
MIN_WINDOW_S = 0.5


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies over all cores, or None where /proc/stat cannot be read."""
    try:
        with open(PROC_STAT, "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    # guest/guest_nice (fields 9, 10) are already counted in user/nice.
    total = sum(values[:8])
    return total - idle, total


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Reading:
    at_s: float  # time.monotonic()
    jiffies: tuple[int, int] | None
    own_cpu_s: float

    @classmethod
    def now(cls) -> "Reading":
        return cls(time.monotonic(), _cpu_jiffies(), _own_cpu_s())


def busy_between(a: Reading, b: Reading) -> float | None:
    """Cores other processes kept busy between two readings (None if unknown)."""
    if a.jiffies is None or b.jiffies is None or b.at_s <= a.at_s:
        return None
    busy, total = b.jiffies[0] - a.jiffies[0], b.jiffies[1] - a.jiffies[1]
    if total <= 0:
        return None
    n_cpus = os.cpu_count() or 1  # /proc/stat's "cpu" line sums every online core
    own_cores = (b.own_cpu_s - a.own_cpu_s) / (b.at_s - a.at_s)
    return max(0.0, busy / total * n_cpus - own_cores)


class _Reader:
    """Background readings, newest last (about the last minute)."""

    def __init__(self) -> None:
        self.readings: collections.deque[Reading] = collections.deque(maxlen=600)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is None and _cpu_jiffies() is not None:
                self.readings.append(Reading.now())
                self._thread = threading.Thread(target=self._run, name="flashtui-hostload", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(READ_INTERVAL_S)
            self.readings.append(Reading.now())

    def at_or_before(self, at_s: float) -> Reading | None:
        found = None
        for reading in list(self.readings):
            if reading.at_s > at_s:
                break
            found = reading
        return found


_READER = _Reader()


def start_reader() -> None:
    """Start the background readings now (the worker does at start-up), so that even the
    first cell's short timed region has half a second of history to be judged by."""
    _READER.ensure_started()


@dataclass
class HostLoad:
    """A window over which to measure other processes' CPU use (``start`` ... ``stop``)."""

    first: Reading

    @classmethod
    def start(cls) -> "HostLoad":
        _READER.ensure_started()
        return cls(Reading.now())

    def stop(self) -> tuple[float | None, int | None]:
        """(cores busy with other processes, cores the host has); (None, None) if unknown."""
        last = Reading.now()
        first = self.first
        if last.at_s - first.at_s < MIN_WINDOW_S:
            earlier = _READER.at_or_before(last.at_s - MIN_WINDOW_S)
            first = earlier if earlier is not None else _READER.at_or_before(first.at_s) or first
        busy = busy_between(first, last)
        return (None, None) if busy is None else (busy, cpu_count())
