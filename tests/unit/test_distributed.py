"""`flashtui bench --distributed` under a real torchrun (gloo on the CPU), and its pure parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from flashtui.core.distributed import ENV_VARS, RankInfo, from_env, owner, share
from flashtui.core.spec import CellKey, SweepSpec
from flashtui.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
BENCH = ["-m", "flashtui", "bench", "--distributed", "--device", "cpu", "--heads", "2", "--head-dim", "32",
         "--reps", "3", "--warmup-ms", "0", "--backends", "standard,sdpa-math", "--quiet"]
TORCH_ENV = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511"}


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and not k.startswith("TORCHELASTIC")}
    env.update(PYTHONPATH=str(ROOT), FLASHTUI_DATA_DIR=str(data_dir), **extra)
    return env


def _torchrun(nproc: int, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # --standalone: a free rendezvous port on localhost (never a fixed one two runs could share).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           *BENCH, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)


def _stored_sessions(data_dir: Path) -> list[Path]:
    return sorted(data_dir.rglob("*.jsonl"))


# ------------------------------------------------------------------ pure parts
def test_share_gives_every_cell_to_exactly_one_rank_and_keeps_groups_together():
    spec = SweepSpec(seqs=(64, 128, 256), dtypes=("fp32", "bf16"), backends=("standard", "sdpa-math", "sdpa-flash"))
    cells = spec.cells()
    for world in (1, 2, 4, 7):
        shares = [share(cells, rank, world) for rank in range(world)]
        assert sorted(i for s in shares for i in s) == list(range(len(cells)))
        ranks = owner(cells, world)
        for index, key in enumerate(cells):  # a (dtype, seq) group's backends share one rank
            assert ranks[index] == ranks[cells.index(CellKey("standard", key.seq, key.dtype))]
    assert set(owner(cells, 2)) == {0, 1}


def test_from_env_reads_torchrun_and_names_what_is_missing_or_wrong():
    info = from_env(TORCH_ENV, timeout_s=5)
    assert info == RankInfo(1, 2, 1, "127.0.0.1", 29511, 5.0) and not info.is_leader
    assert RankInfo.from_request(info.to_request()) == info
    with pytest.raises(UsageError, match=r"\(LOCAL_RANK, MASTER_PORT not set\)"):
        from_env({k: v for k, v in TORCH_ENV.items() if k not in ("LOCAL_RANK", "MASTER_PORT")})
    with pytest.raises(UsageError, match="RANK 2 is not within WORLD_SIZE 2"):
        from_env({**TORCH_ENV, "RANK": "2"})
    with pytest.raises(UsageError, match="MASTER_PORT must be an integer"):
        from_env({**TORCH_ENV, "MASTER_PORT": "http"})


@pytest.mark.parametrize("env_extra, args, needle", [
    ({}, [], "--distributed needs torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT not set)"),
    ({"RANK": "0", "WORLD_SIZE": "2"}, [], "(LOCAL_RANK, MASTER_ADDR, MASTER_PORT not set)"),
    (TORCH_ENV, ["--dist-timeout", "0"], "--dist-timeout must be a number of seconds > 0"),
    (TORCH_ENV, ["--host", "gpu-box"], "--host and --distributed do not go together"),
])
def test_distributed_without_torchrun_is_one_line_and_exit_2(tmp_path, env_extra, args, needle):
    r = subprocess.run([sys.executable, *BENCH, "--seq", "64", *args], capture_output=True, text=True,
                       timeout=60, env=_env(tmp_path / "data", **env_extra), cwd=ROOT)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], r.stderr
    assert not _stored_sessions(tmp_path / "data")


# ------------------------------------------------------------- a real torchrun
@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    base = tmp_path_factory.mktemp("dist")
    out = base / "session.json"
    r = _torchrun(2, ["--seq", "64,128", "--json", "--out", str(out)], _env(base / "data"))
    return r, out, base / "data"


@pytest.mark.slow
def test_rank_0_writes_one_session_with_every_cell_once_each_saying_where_it_ran(two_ranks):
    r, out, data_dir = two_ranks
    assert r.returncode == 0, r.stderr[-3000:]
    session = json.loads(r.stdout)  # stdout is rank 0's JSON alone: other ranks print on stderr
    assert json.loads(out.read_text()) == session
    keys = Counter((c["backend"], c["seq"], c["dtype"]) for c in session["cells"])
    assert keys == Counter({(b, s, "fp32"): 1 for b in ("standard", "sdpa-math") for s in (64, 128)})
    assert all(c["status"] == "ok" for c in session["cells"])
    by_rank = {c["extra"]["rank"]: c for c in session["cells"]}
    assert set(by_rank) == {0, 1}
    for cell in session["cells"]:
        extra = cell["extra"]
        assert extra["world_size"] == 2 and extra["dist_backend"] == "gloo" and extra["host"]
        assert "device_index" in extra and extra["device_index"] is None  # CPU: no device index
        # A (dtype, seq) group stays on one rank, so speedups compare kernels on one device.
        assert extra["rank"] == (0 if cell["seq"] == 64 else 1)
    pids = {c["extra"]["rank"]: c["extra"]["worker_pid"] for c in session["cells"]}
    assert pids[0] == session["worker"]["pid"] and pids[1] != pids[0]
    assert session["provenance"]["distributed"] == {"launcher": "torchrun", "world_size": 2, "cells_per_rank": [2, 2]}


@pytest.mark.slow
def test_other_ranks_write_no_session_and_say_one_line(two_ranks):
    r, out, data_dir = two_ranks
    assert r.returncode == 0, r.stderr[-3000:]
    stored = _stored_sessions(data_dir)
    assert len(stored) == 1 and json.loads(r.stdout)["id"] in stored[0].name
    lines = [line for line in r.stderr.splitlines() if line.startswith("flashtui: rank 1/2:")]
    assert len(lines) == 1 and "ran 2 of the sweep's 4 cells (2 ok)" in lines[0], r.stderr[-3000:]
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_a_dead_rank_and_a_silent_rank_cost_only_their_own_cells(tmp_path):
    """Rank 1's worker is killed in its first cell, rank 2's hangs: rank 0 still records every
    cell once, its own measured, theirs failed with why (closed connection; --dist-timeout)."""
    env = _env(tmp_path / "data", FLASHTUI_INJECT_FAULT="kill@standard@128,hang@standard@256")
    r = _torchrun(3, ["--seq", "64,128,256", "--dist-timeout", "8", "--json"], env)
    assert r.returncode != 0  # rank 0 exits 1 (failed cells); torchrun then stops the hung rank
    start = r.stdout.index("{")
    session = json.loads(r.stdout[start:r.stdout.rindex("}") + 1])
    cells = {(c["backend"], c["seq"]): c for c in session["cells"]}
    assert len(session["cells"]) == len(cells) == 6
    for backend in ("standard", "sdpa-math"):
        assert cells[(backend, 64)]["status"] == "ok" and cells[(backend, 64)]["extra"]["rank"] == 0
        dead, silent = cells[(backend, 128)], cells[(backend, 256)]
        assert dead["status"] == "failed" and dead["extra"]["rank"] == 1
        assert "no word from rank 1" in dead["reason"] and "closed" in dead["reason"].lower(), dead["reason"]
        assert silent["status"] == "failed" and silent["extra"]["rank"] == 2
        assert "no word from rank 2 within 8 s" in silent["reason"], silent["reason"]
    assert len(_stored_sessions(tmp_path / "data")) == 1
    rank1 = [line for line in r.stderr.splitlines() if line.startswith("flashtui: rank 1/3:")]
    assert rank1 and "its worker died" in rank1[-1], r.stderr[-3000:]


@pytest.mark.slow
def test_ranks_that_plan_different_sweeps_stop_at_once_with_one_line(tmp_path):
    env = _env(tmp_path / "data", FLASHTUI_TEST_ARGS_RANK0="--seq 64", FLASHTUI_TEST_ARGS_RANK1="--seq 128")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(ROOT / "tests" / "unit" / "dist_rank_args.py"), *BENCH[2:]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("flashtui: error:")]
    # Each rank that got to say it says one line (torchrun may stop the second one first;
    # the traceback torchrun prints of its own ChildFailedError is torchrun's, not ours).
    assert errors and all("planned a different spec than rank" in line for line in errors), r.stderr[-3000:]
    assert not [line for line in r.stderr.splitlines() if 'File "' in line and "/flashtui/" in line]
    assert not _stored_sessions(tmp_path / "data")


@pytest.mark.slow
def test_rank_0s_worker_dying_still_leaves_every_cell_once_in_its_session(tmp_path):
    """Rank 0's worker is killed in its second cell and not restarted (it could not rejoin):
    rank 0's CLI records every cell that never reached it as failed, saying why."""
    env = _env(tmp_path / "data", FLASHTUI_INJECT_FAULT="kill@sdpa-math@64")
    r = _torchrun(2, ["--seq", "64,128", "--json"], env)
    assert r.returncode != 0
    session = json.loads(r.stdout[r.stdout.index("{"):r.stdout.rindex("}") + 1])
    cells = {(c["backend"], c["seq"]): c for c in session["cells"]}
    assert len(session["cells"]) == len(cells) == 4
    assert cells[("standard", 64)]["status"] == "ok"
    assert cells[("sdpa-math", 64)]["status"] == "failed" and "SIGKILL" in cells[("sdpa-math", 64)]["reason"]
    for backend in ("standard", "sdpa-math"):  # rank 1's: handed over in time, or failed with why
        cell = cells[(backend, 128)]
        assert (cell["status"] == "ok" and cell["extra"]["rank"] == 1) or \
            "rank 0's worker died before this cell was gathered" in cell["reason"], cell
    assert session["worker"]["crashes"] == 1 and session["worker"]["restarts"] == 0
