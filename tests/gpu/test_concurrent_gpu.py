"""Two sweeps on one GPU: the second is told their timings disturb each other (-m gpu).

Real ``flashtui bench`` processes on the device. The first sweep's live marker names
it; NVML lists its worker among the GPU's compute processes, which the second sweep
records with its session (``provenance.other_gpu_processes``).
"""

from __future__ import annotations

import pytest

from flashtui.store import live
from flashtui.store.journal import read_journal

from ..faults.conftest import finish, journals, start_flashtui, wait_until

pytestmark = pytest.mark.gpu

SWEEP = ["bench", "--device", "cuda", "--seq", "1024,2048,4096,8192", "--backends", "standard,sdpa-flash",
         "--reps", "30", "--warmup-ms", "300", "--quiet"]


def test_a_second_sweep_on_the_same_gpu_is_warned(tmp_path):
    data_dir = tmp_path / "data"
    first = start_flashtui(SWEEP, data_dir)
    second = None
    try:
        marker = wait_until(lambda: live.running(data_dir / "sessions"), 180, "the first sweep's live marker")
        second = start_flashtui(SWEEP, data_dir)
        b = finish(second, timeout=400)
        a = finish(first, timeout=400)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert a.returncode == 0 and b.returncode == 0, (a.stderr[-1500:], b.stderr[-1500:])
    warnings = [line for line in b.stderr.splitlines() if line.startswith("flashtui: warning: ")]
    assert any("another flashtui sweep is running on GPU" in w and marker[0]["session_id"] in w
               for w in warnings), b.stderr
    sessions = {p.stem: read_journal(p).session for p in journals(data_dir)}
    second_session = next(s for sid, s in sessions.items() if sid != marker[0]["session_id"])
    neighbours = second_session.provenance.get("other_gpu_processes")
    if neighbours is not None:  # NVML present: the first sweep's worker is seen computing
        assert neighbours["count"] >= 1, neighbours
