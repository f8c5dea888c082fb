"""Worker faults, one test per kind, through the real `flashtui bench` and a real worker.

Each sweep is three cells of standard attention (seq 32, 48, 64); the fault hits the
middle one. What must hold for every kind:

* the sweep completes (the CLI exits by itself with a table, not a traceback),
* the faulted cell is marked with what happened (its reason says so),
* the cell before it and the cell after it are measured; after a fault that ends the
  process, the next cell runs on a *fresh* worker (a new pid, one restart recorded),
* every finished cell is in the journal on disk, which ends with a footer.

The device-side assert needs CUDA to be honest; it lives in ``test_gpu_faults.py``.
"""

from __future__ import annotations

import re

import pytest

from flashtui.store.journal import read_journal

from .conftest import TINY, finish, kill_quietly, only_journal, raw_records, start_flashtui

SEQS = (32, 48, 64)
FAULTED = 48
# Generous: the runs below overlap on 2 cores, so a healthy cell may take seconds.
# A hung cell costs this much wall time.
CELL_TIMEOUT_S = 12
GAUNTLET_SEQS = [32, 40, 48, 56, 64, 72]
GAUNTLET = "kill@standard@40,segfault@standard@56,raise@standard@72"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start every scenario at once (real, separate processes; they only share CPU time)
    and hand each test its own finished run. Keeps the suite fast on 2 cores."""
    base = tmp_path_factory.mktemp("worker-faults")
    seqs = ",".join(map(str, SEQS))
    scenarios = {kind: (["--seq", seqs] + (["--cell-timeout", str(CELL_TIMEOUT_S)] if kind == "hang" else []),
                        f"{kind}@standard@{FAULTED}")
                 for kind in ("hang", "kill", "segfault", "oom", "raise")}
    scenarios["gauntlet"] = (["--seq", ",".join(map(str, GAUNTLET_SEQS))], GAUNTLET)
    scenarios["typo"] = (["--seq", "32"], "segfualt@standard@32")
    started = {}
    for name, (args, fault) in scenarios.items():
        data_dir = base / name / "data"
        tmp = base / name / "tmp"
        tmp.mkdir(parents=True)
        proc = start_flashtui(["bench", *TINY, "--backends", "standard", *args], data_dir,
                              FLASHTUI_INJECT_FAULT=fault, TMPDIR=str(tmp))
        started[name] = (proc, data_dir, tmp)
    done: dict = {}

    def get(name):
        if name not in done:
            proc, data_dir, tmp = started[name]
            done[name] = (finish(proc, timeout=240), data_dir, tmp)
        return done[name]
    yield get
    kill_quietly([proc.pid for proc, _, _ in started.values() if proc.poll() is None])


def _check_sweep(run, data_dir, *, status: str, reason_has: list[str], restarted: bool):
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "standard" in run.stdout  # the table was printed: the sweep completed
    # Exit 1 when a cell failed; an OOM is a result, not a failure.
    assert run.returncode == (1 if status == "failed" else 0), run.stderr[-3000:]

    path = only_journal(data_dir)
    contents = read_journal(path)
    assert contents.has_footer and contents.warnings == [], contents.warnings
    session = contents.session
    assert session.status == "complete"
    cells = {c.seq: c for c in session.cells}
    assert sorted(cells) == list(SEQS), sorted(cells)
    faulted = cells[FAULTED]
    assert faulted.status == status, (faulted.status, faulted.reason)
    for needle in reason_has:
        assert needle in (faulted.reason or ""), faulted.reason
    assert faulted.median_ms is None
    for seq in (SEQS[0], SEQS[2]):
        assert cells[seq].status == "ok" and cells[seq].median_ms > 0, (seq, cells[seq].reason)

    # Every cell record is a fsync'd line of its own, in the order the cells finished.
    kinds = [r["record"] for r in raw_records(path)]
    assert kinds[0] == "header" and kinds[-1] == "footer"
    assert [r["cell"]["seq"] for r in raw_records(path) if r["record"] == "cell"][:3] == list(SEQS)

    first_pid = session.worker["pid"]
    restarts = re.findall(r"worker restarted \(pid (\d+)\)", run.stderr)
    if restarted:
        assert "worker died: " in run.stderr
        assert len(restarts) == 1 and int(restarts[0]) != first_pid, run.stderr
        assert session.worker["restarts"] == 1
    else:
        assert restarts == [] and session.worker.get("restarts", 0) == 0, run.stderr
    return faulted


def test_sigkill_marks_the_cell_and_a_fresh_worker_goes_on(runs):
    run, data_dir, _ = runs("kill")
    _check_sweep(run, data_dir, status="failed", reason_has=["worker killed by SIGKILL"], restarted=True)


def test_segfault_marks_the_cell_and_a_fresh_worker_goes_on(runs):
    run, data_dir, _ = runs("segfault")
    _check_sweep(run, data_dir, status="failed",
                 reason_has=["segmentation fault (SIGSEGV)"], restarted=True)


def test_hung_cell_hits_the_watchdog_and_a_fresh_worker_goes_on(runs):
    run, data_dir, _ = runs("hang")
    cell = _check_sweep(run, data_dir, status="failed",
                        reason_has=[f"timed out: no result within {CELL_TIMEOUT_S} s",
                                    "killed and restarted"], restarted=True)
    assert "worker died: timed out" in run.stderr, cell.reason


def test_oom_is_a_cell_result_and_the_same_worker_goes_on(runs):
    run, data_dir, _ = runs("oom")
    _check_sweep(run, data_dir, status="oom", reason_has=["OutOfMemoryError", "out of memory"],
                 restarted=False)


def test_plain_exception_fails_only_its_cell(runs):
    run, data_dir, _ = runs("raise")
    _check_sweep(run, data_dir, status="failed", reason_has=["RuntimeError: injected failure"],
                 restarted=False)


def test_several_faults_in_one_sweep_each_marked_each_followed_by_a_measured_cell(runs):
    """kill, then segfault, then a plain exception, in one sweep: two restarts and a
    failed cell, and the sweep still ends with every cell accounted for."""
    run, data_dir, _ = runs("gauntlet")
    seqs = GAUNTLET_SEQS
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    contents = read_journal(only_journal(data_dir))
    assert contents.has_footer
    by_seq = {c.seq: c for c in contents.session.cells}
    assert sorted(by_seq) == seqs
    assert "SIGKILL" in by_seq[40].reason and "SIGSEGV" in by_seq[56].reason
    assert by_seq[72].reason == "RuntimeError: injected failure"
    assert [by_seq[s].status for s in (32, 48, 64)] == ["ok", "ok", "ok"]
    assert contents.session.worker["restarts"] == 2


def test_malformed_fault_switch_is_reported_not_silently_ignored(runs):
    """A typo in the test-only switch must show up, or a fault test could pass vacuously."""
    run, data_dir, tmp = runs("typo")
    assert run.returncode == 0, run.stderr[-2000:]
    # The worker's stderr log is a temp file (WorkerClient's default log_path).
    logs = "".join(p.read_text(errors="replace") for p in tmp.glob("flashtui-worker-*.log"))
    assert "FLASHTUI_INJECT_FAULT: unknown fault kind 'segfualt'" in logs, logs[-2000:]
    cells = read_journal(only_journal(data_dir)).session.cells
    assert [c.status for c in cells] == ["ok"]


@pytest.mark.parametrize("spec, expect", [
    ("kill@standard@64", [("kill", "standard", 64)]),
    ("kill@standard@64, oom@sdpa-math@128", [("kill", "standard", 64), ("oom", "sdpa-math", 128)]),
])
def test_fault_switch_parses_lists(spec, expect):
    from flashtui.engine import faults

    assert faults.parse(spec) == (expect, [])
