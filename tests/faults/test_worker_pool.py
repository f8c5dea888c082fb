"""`flashtui bench --workers 2 / --gpus` through the real CLI and real worker processes.

One sweep of 12 cells (standard and sdpa-math at six sequence lengths) on two CPU workers;
the worker that takes standard seq=48 is SIGKILLed there (FLASHTUI_INJECT_FAULT). What
must hold: every cell once, in plan order (as a plain run lists them), over two pids; the
killed cell failed with the reason; the rest of its unit and every later cell finished by
the other worker, which is not restarted; each cell marked shared (two workers on one CPU).
Bad input (--workers 0, --gpus with --device cpu, --gpus on a CPU-only box): one line, exit 2.
"""

from __future__ import annotations

import re

import pytest

from flashtui.core.spec import CellKey
from flashtui.store.journal import read_journal

from .conftest import (TINY, assert_one_line_error, finish, flashtui, gone_within, journals, kill_quietly, only_journal,
                       raw_records, start_flashtui, wait_until, worker_pids_of)

SEQS = (32, 40, 48, 56, 64, 72)
BACKENDS = ("standard", "sdpa-math")
KILLED = CellKey("standard", 48, "fp32")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The pool sweep and the --gpus-on-a-CPU-box run, started together (2 cores)."""
    base = tmp_path_factory.mktemp("worker-pool")
    scenarios = {
        "killed": (["--backends", ",".join(BACKENDS), "--seq", ",".join(map(str, SEQS)), "--workers", "2"],
                   {"FLASHTUI_INJECT_FAULT": f"kill@{KILLED.backend}@{KILLED.seq}"}),
        # Two kills: the first retires its worker, the second hits the last one standing.
        "twice": (["--backends", ",".join(BACKENDS), "--seq", ",".join(map(str, SEQS)), "--workers", "2"],
                  {"FLASHTUI_INJECT_FAULT": "kill@standard@40,kill@standard@64"}),
        "no-gpu": (["--seq", "32", "--backends", "standard", "--gpus", "0"], {}),
    }
    tiny = [a for a in TINY if a not in ("--device", "cpu")]
    started = {}
    for name, (args, env) in scenarios.items():
        data_dir = base / name / "data"
        # "no-gpu" leaves --device out: --gpus with --device cpu is refused before any worker.
        flags = tiny if name == "no-gpu" else TINY
        started[name] = (start_flashtui(["bench", *flags, *args], data_dir, **env), data_dir)
    done: dict = {}

    def get(name):
        if name not in done:
            proc, data_dir = started[name]
            done[name] = (finish(proc, timeout=240), data_dir)
        return done[name]
    yield get
    kill_quietly([proc.pid for proc, _ in started.values() if proc.poll() is None])


def test_two_workers_share_twelve_cells_in_plan_order_and_one_takes_over_from_a_killed_one(runs):
    run, data_dir = runs("killed")
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.returncode == 1, run.stderr[-3000:]  # a cell failed (the killed one)
    contents = read_journal(only_journal(data_dir))
    assert contents.has_footer and contents.warnings == [], contents.warnings
    session = contents.session
    cells = session.cells
    plan = [CellKey(b, s, "fp32") for s in SEQS for b in BACKENDS]
    # None lost, none doubled, in the order a plain run records them.
    assert [c.key for c in cells] == plan, [c.key.label() for c in cells]

    pids = {c.extra["worker_pid"] for c in cells}
    assert len(pids) == 2 and None not in pids, pids
    by_key = {c.key: c for c in cells}
    killed = by_key[KILLED]
    assert killed.status == "failed" and "worker killed by SIGKILL" in (killed.reason or ""), killed.reason
    dead_pid = killed.extra["worker_pid"]
    (survivor,) = pids - {dead_pid}
    # The rest of the killed worker's unit (sdpa-math at 48) and every later cell: the survivor's.
    later = [c for c in cells if c.seq > KILLED.seq or (c.seq == KILLED.seq and c.key != KILLED)]
    assert later and all(c.extra["worker_pid"] == survivor for c in later), \
        [(c.key.label(), c.extra["worker_pid"]) for c in later]
    assert all(c.status == "ok" and c.median_ms > 0 for c in cells if c.key != KILLED), \
        [(c.key.label(), c.status, c.reason) for c in cells]

    # Not restarted: one crash, no restart; the pool says who did what.
    assert session.worker["crashes"] == 1 and session.worker["restarts"] == 0, session.worker
    pool = session.worker["pool"]
    assert sorted(w["state"] for w in pool) == ["idle", "retired"], pool
    assert sum(w["cells"] for w in pool) == len(plan), pool
    assert "worker died: worker killed by SIGKILL" in run.stderr
    assert "is not restarted: the other workers take its cells" in run.stderr

    # Two workers on one CPU: every cell says so; measured ones are noisy with the reason.
    for cell in cells:
        assert cell.extra["shared_device"] is True and cell.extra["device_index"] is None, cell.extra
        if cell.status == "ok":
            assert cell.noisy is True and cell.noise_reason.startswith(
                "timed beside another flashtui worker on the same device (the CPU, 2 workers)"), cell.noise_reason
            assert not cell.trustworthy  # kept out of findings and best-speedups
    # ... and the table flags them as it flags noise.
    assert "~ noisy (11 cells, left out of findings)" in run.stdout, run.stdout[-2000:]


def test_the_last_worker_standing_is_restarted_and_the_sweep_completes(runs):
    run, data_dir = runs("twice")
    assert "Traceback" not in run.stderr and run.returncode == 1, run.stderr[-3000:]
    session = read_journal(only_journal(data_dir)).session
    plan = [CellKey(b, s, "fp32") for s in SEQS for b in BACKENDS]
    assert [c.key for c in session.cells] == plan
    failed = {c.key: c for c in session.cells if c.status == "failed"}
    assert set(failed) == {CellKey("standard", 40, "fp32"), CellKey("standard", 64, "fp32")}, failed
    assert all("worker killed by SIGKILL" in (c.reason or "") for c in failed.values())
    assert all(c.status == "ok" for c in session.cells if c.key not in failed)
    # The first death retires its worker; the second is the last one's, which comes back fresh.
    assert session.worker["crashes"] == 2 and session.worker["restarts"] == 1, session.worker
    assert sorted(w["state"] for w in session.worker["pool"]) == ["idle", "retired"], session.worker["pool"]
    by_key = {c.key: c for c in session.cells}
    second_dead = by_key[CellKey("standard", 64, "fp32")].extra["worker_pid"]
    fresh = by_key[CellKey("sdpa-math", 64, "fp32")].extra["worker_pid"]
    assert fresh != second_dead and len({c.extra["worker_pid"] for c in session.cells}) == 3
    assert len(re.findall(r"worker restarted \(pid (\d+)\)", run.stderr)) == 1, run.stderr


def test_gpus_on_a_box_without_a_gpu_is_one_line_exit_2(runs):
    run, data_dir = runs("no-gpu")
    assert_one_line_error(run, "--gpus: there is no GPU here (")
    assert "use --workers N to share the CPU" in run.stderr
    assert not (data_dir / "sessions").exists() or not list((data_dir / "sessions").iterdir())


@pytest.mark.parametrize("args, needle", [
    (["--workers", "0"], "workers must be a positive integer, got 0"),
    (["--workers", "two"], "workers must be a positive integer, got 'two'"),
    (["--gpus", "0"], "--gpus runs workers on GPUs but --device cpu was given"),
    (["--gpus", "x"], "--gpus takes 'all' or GPU indices such as 0,1; got 'x'"),
    (["--gpus", "0,0"], "--gpus names GPU 0 twice"),
    (["--workers", "2", "--profile", "p.json"], "--profile records one worker under py-spy"),
    (["--workers", "2", "--host", "gpu-box"], "--gpus/--workers start local workers; they do not go with --host"),
])
def test_bad_pool_flags_are_one_line_exit_2_before_any_worker(args, needle, data_dir, tmp_path):
    run = flashtui(["bench", *TINY, "--quiet", *args], data_dir, timeout=60, cwd=tmp_path)
    assert_one_line_error(run, needle)
    assert run.stdout == ""


def test_ctrl_c_keeps_every_cell_handed_on_in_plan_order_and_leaves_no_worker(data_dir):
    """SIGINT mid-sweep: exit 130, the cells recorded are in plan order with none doubled or
    failed by the shutdown, the session says cancelled, and both workers are gone."""
    import signal

    seqs = "32,40,48,56,64,72,80,88"
    proc = start_flashtui(["bench", *TINY, "--warmup-ms", "300", "--backends", ",".join(BACKENDS), "--seq", seqs,
                           "--workers", "2"], data_dir)
    try:
        wait_until(lambda: journals(data_dir) and sum(r["record"] == "cell" for r in raw_records(journals(data_dir)[0])) >= 2,
                   120, "two cells in the journal")
        workers = wait_until(lambda: len(worker_pids_of(proc.pid)) == 2 and worker_pids_of(proc.pid), 30, "two workers")
        proc.send_signal(signal.SIGINT)
        run = finish(proc, timeout=60)
    finally:
        kill_quietly([proc.pid] if proc.poll() is None else [])
    assert run.returncode == 130 and "Traceback" not in run.stderr, run.stderr[-2000:]
    gone_within(workers, 10)
    contents = read_journal(only_journal(data_dir))
    session = contents.session
    assert contents.has_footer and session.status == "cancelled"
    plan = [CellKey(b, int(s), "fp32") for s in seqs.split(",") for b in BACKENDS]
    positions = [plan.index(c.key) for c in session.cells]
    assert len(positions) >= 2 and positions == sorted(set(positions)), positions
    assert all(c.status == "ok" for c in session.cells), [(c.key.label(), c.reason) for c in session.cells]
    assert sum(w["cells"] for w in session.worker["pool"]) == len(session.cells), session.worker["pool"]
