"""How busy the host's other processes kept the CPU while a cell was timed.

From /proc/stat (every core's busy jiffies) minus this process's own CPU time
(``os.times``), over the timed window, in cores. Linux only; elsewhere None. Standard
library only: cheap enough to read twice per timing round.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

# Other processes using at least this many cores during a host-bound cell make it noisy.
BUSY_CORES_NOISY = 0.5
PROC_STAT = "/proc/stat"


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


@dataclass
class HostLoad:
    """A window over which to measure other processes' CPU use (``start`` ... ``stop``)."""

    jiffies: tuple[int, int] | None
    own_cpu_s: float
    wall_s: float

    @classmethod
    def start(cls) -> "HostLoad":
        return cls(_cpu_jiffies(), _own_cpu_s(), time.monotonic())

    def stop(self) -> tuple[float | None, int | None]:
        """(cores busy with other processes, cores the host has); (None, None) if unknown."""
        end = _cpu_jiffies()
        wall_s = time.monotonic() - self.wall_s
        if self.jiffies is None or end is None or wall_s <= 0:
            return None, None
        busy, total = end[0] - self.jiffies[0], end[1] - self.jiffies[1]
        if total <= 0:
            return None, None
        n_cpus = os.cpu_count() or 1  # /proc/stat's "cpu" line sums every online core
        busy_cores = busy / total * n_cpus
        own_cores = (_own_cpu_s() - self.own_cpu_s) / wall_s
        return max(0.0, busy_cores - own_cores), cpu_count()
