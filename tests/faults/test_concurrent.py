"""Two flashtui processes at once share the store safely, and say when they disturb each other.

Two real ``flashtui bench`` processes on one data directory (2 cores: they overlap for
real): unique sessions, no shared temp file, every cell of both on disk, the second one
warned that the first is measuring on the same device, and ``sessions`` listing the
store while a journal is being written. NVML's view of other GPU processes is checked
against a scripted NVML (no GPU here); tests/gpu/test_concurrent_gpu.py runs the same
on a real GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.monitor.nvml import other_compute_processes
from flashtui.store import index as store
from flashtui.store import live
from flashtui.store.journal import read_journal

from .conftest import REPO, TINY, children, finish, flashtui, journals, start_flashtui, wait_until

SWEEP = [*TINY[:-4], "--warmup-ms", "200", "--monitor-hz", "0", "--seq", "64,128,256",
         "--backends", "standard,sdpa-math", "--quiet"]


def test_two_benches_at_once_share_the_store_and_the_second_is_warned(data_dir, monkeypatch):
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(data_dir))
    first = start_flashtui(["bench", *SWEEP], data_dir)
    second = None
    try:
        marker = wait_until(lambda: live.running(data_dir / "sessions"), 120, "the first sweep's live marker")
        second = start_flashtui(["bench", *SWEEP], data_dir)
        statuses: set[str] = set()
        while first.poll() is None or second.poll() is None:
            # `sessions` while both journals are being written: never an error.
            for summary in store.list_sessions():
                assert summary.status != "unreadable", summary
                statuses.add(summary.status)
        a, b = finish(first), finish(second)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert a.returncode == 0 and b.returncode == 0, (a.stderr[-1500:], b.stderr[-1500:])
    assert "running" in statuses  # a journal without footer, its writer alive
    warnings = [line for line in b.stderr.splitlines() if line.startswith("flashtui: warning: ")]
    assert len(warnings) == 1, b.stderr
    assert "another flashtui sweep is running on the CPU" in warnings[0]
    assert marker[0]["session_id"] in warnings[0] and "disturb each other" in warnings[0]
    found = journals(data_dir)
    assert len(found) == 2 and found[0].stem != found[1].stem
    for path in found:
        contents = read_journal(path)
        assert contents.has_footer and contents.session.status == "complete"
        assert len(contents.session.cells) == 6 and not contents.warnings
    # Which sweep ran beside another is kept with the session, for whoever reads it later.
    second_session = next(read_journal(p).session for p in found if p.stem != marker[0]["session_id"])
    assert second_session.provenance["concurrent_sweeps"] == [marker[0]["session_id"]]
    # Each session keeps its journal and, beside it, the worker's full log (<journal>.worker.log).
    leftovers = [p.name for p in (data_dir / "sessions").rglob("*") if p.is_file()
                 and p.suffix != ".jsonl" and not p.name.endswith(".jsonl.worker.log")]
    assert leftovers == []  # no temp file, no live marker left behind
    assert flashtui(["sessions"], data_dir).stdout.count("complete") == 2


def test_sessions_lists_a_journal_with_a_half_written_line_as_running(data_dir, monkeypatch):
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(data_dir))
    session = Session(spec={"mode": "kernel", "device": "cpu"}, provenance={"device_kind": "cpu"})
    journal = store.open_journal(session)  # this process is its live writer
    cell = Cell("standard", 64, "fp32", median_ms=1.0)
    session.add_cell(cell)
    journal.append_cell(cell)
    with open(journal.path, "ab") as f:
        f.write(b'{"record":"cell","cell":{"backend":"sdpa-ma')  # a write in progress
    run = flashtui(["sessions"], data_dir)
    assert run.returncode == 0 and "Traceback" not in run.stderr
    line = next(x for x in run.stdout.splitlines() if x.startswith(session.id))
    assert line.rstrip().endswith("running") and "1/1" in line
    journal.close()  # the writer is gone without a footer: incomplete, not running
    line = next(x for x in flashtui(["sessions"], data_dir).stdout.splitlines() if x.startswith(session.id))
    assert line.rstrip().endswith("incomplete")


def test_a_live_marker_of_a_dead_process_is_ignored_and_cleared(data_dir):
    folder = data_dir / "sessions"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    (folder / live.LIVE_DIR).mkdir(parents=True)
    marker = folder / live.LIVE_DIR / "gone.json"
    marker.write_text(f'{{"session_id": "gone", "pid": {pid}, "host": "{os.uname().nodename}"}}')
    (folder / live.LIVE_DIR / "half.json").write_text('{"session_id": "ha')  # being written
    assert live.running(folder) == []
    assert not marker.exists()


class ScriptedNvml:
    """Just the NVML calls other_compute_processes makes, answering from a list."""

    def __init__(self, pids: list[int]) -> None:
        self.processes = [SimpleNamespace(pid=p, usedGpuMemory=(1 + i) << 30) for i, p in enumerate(pids)]
        self.device = {"index": 0}

    def nvmlInit(self): pass
    def nvmlShutdown(self): pass
    def nvmlDeviceGetCount(self): return 1
    def nvmlSystemGetDriverVersion(self): return "999.1"
    def nvmlDeviceGetHandleByIndex(self, index): return self.device
    def nvmlDeviceGetName(self, handle): return "Scripted GPU"
    def nvmlDeviceGetIndex(self, handle): return 0
    def nvmlDeviceGetComputeRunningProcesses(self, handle): return list(self.processes)


def test_gpu_neighbours_exclude_our_worker_and_its_launcher():
    launcher = subprocess.Popen([sys.executable, "-c",
                                 "import subprocess, sys; subprocess.run([sys.executable, '-c', "
                                 "'import time; time.sleep(30)'])"], cwd=REPO)
    try:
        worker = wait_until(lambda: children(launcher.pid), 10, "the launched child")[0]
        other = os.getppid()  # some unrelated live process
        found = other_compute_processes({}, launcher.pid, nvml=ScriptedNvml([worker, other]))
        assert found.count == 1 and found.own_identified and found.reason is None
        assert [p["pid"] for p in found.processes] == [other] and found.processes[0]["used_bytes"] == 2 << 30
        # A container: NVML lists host pids, ours among them but unrecognizable.
        hidden = other_compute_processes({}, launcher.pid, nvml=ScriptedNvml([900001, 900002]))
        assert not hidden.own_identified and hidden.count == 1
        alone = other_compute_processes({}, launcher.pid, nvml=ScriptedNvml([worker]))
        assert alone.count == 0
    finally:
        launcher.kill()
        launcher.wait()


def test_without_nvml_the_neighbour_check_says_why_and_finds_none():
    class NoDriver(ScriptedNvml):
        def nvmlInit(self):
            raise RuntimeError("NVML Shared Library Not Found")

    found = other_compute_processes({}, os.getpid(), nvml=NoDriver([]))
    assert found.count == 0 and found.reason
