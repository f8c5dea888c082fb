"""A full disk or a read-only data dir, before or in the middle of a sweep: nothing measured is lost.

The real CLI with its data directory on a real tmpfs (filled up while the sweep runs,
or mounted read-only), and the store fault hook (``FLASHTUI_INJECT_STORE_FAULT``, see
``flashtui/store/faults.py``) for what a test box cannot produce (a remount read-only
under an open file). In every case the sweep goes on, the results are printed, one
warning says what was not saved and where the session went, and that place holds
every cell. A run that never finished a cell leaves no session behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from flashtui.core.results import Cell
from flashtui.core.session import Session
from flashtui.store import index as store
from flashtui.store.journal import SessionJournal, read_journal

from .conftest import TINY, fill, finish, flashtui, journals, raw_records, start_flashtui, wait_until

# Six cells, each with a warm-up long enough that the disk can be filled mid-sweep.
SWEEP = [*TINY[:-4], "--warmup-ms", "300", "--monitor-hz", "0", "--seq", "64,128,256",
         "--backends", "standard,sdpa-math", "--quiet", "--json"]
N_CELLS = 6


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("flashtui: warning: ")]


def _fallback_journal(folder: Path) -> Path:
    found = sorted(folder.glob("*.jsonl"))
    assert len(found) == 1, found
    return found[0]


def _all_cells_printed(stdout: str) -> dict:
    data = json.loads(stdout)
    assert len(data["cells"]) == N_CELLS and all(c["status"] == "ok" for c in data["cells"]), data["cells"]
    return data


def test_disk_fills_up_mid_sweep_the_session_moves_and_nothing_is_lost(mount_tmpfs, tmp_path):
    data_dir = mount_tmpfs("data", size="256k")
    fallback = tmp_path / "fallback"
    proc = start_flashtui(["bench", *SWEEP], data_dir, FLASHTUI_FALLBACK_DIRS=str(fallback))
    try:
        def first_cell_on_disk():
            found = journals(data_dir)
            return found and any(r.get("record") == "cell" for r in raw_records(found[0]))
        wait_until(first_cell_on_disk, 120, "the first cell in the store's journal")
        fill(data_dir)  # the disk is full from here on
        run = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert run.returncode == 0, run.stderr[-2000:]
    data = _all_cells_printed(run.stdout)
    (warning,) = _warnings(run.stderr)
    moved = _fallback_journal(fallback)
    assert (f"session {data['id']} could not be saved in {data_dir / 'sessions'} (No space left on device); "
            f"it went to {moved} instead ({N_CELLS} cell(s))") in warning
    contents = read_journal(moved)
    assert contents.has_footer and contents.session.status == "complete"
    assert [c.to_dict() for c in contents.session.cells] == data["cells"]
    # What reached the full disk first is whole lines only (a half line is cut back).
    original = read_journal(journals(data_dir)[0])
    assert 1 <= len(original.session.cells) < N_CELLS and original.skipped_lines == 0
    assert not original.has_footer


def test_read_only_data_dir_from_the_start(mount_tmpfs, tmp_path):
    data_dir = mount_tmpfs("ro-data", read_only=True)
    fallback = tmp_path / "fallback"
    run = flashtui(["bench", *SWEEP], data_dir, FLASHTUI_FALLBACK_DIRS=str(fallback))
    assert run.returncode == 0, run.stderr[-2000:]
    data = _all_cells_printed(run.stdout)
    (warning,) = _warnings(run.stderr)
    assert "Read-only file system" in warning and str(fallback) in warning
    contents = read_journal(_fallback_journal(fallback))
    assert contents.has_footer and [c.to_dict() for c in contents.session.cells] == data["cells"]
    assert list(data_dir.iterdir()) == []


def test_read_only_remount_mid_sweep_via_the_fault_hook(data_dir, tmp_path):
    """EROFS from the 3rd journal write on (the file with its first cell, a cell, then refused)."""
    fallback = tmp_path / "fallback"
    run = flashtui(["bench", *SWEEP], data_dir, FLASHTUI_FALLBACK_DIRS=str(fallback),
                   FLASHTUI_INJECT_STORE_FAULT="erofs@3")
    assert run.returncode == 0, run.stderr[-2000:]
    data = _all_cells_printed(run.stdout)
    (warning,) = _warnings(run.stderr)
    assert "Read-only file system" in warning
    contents = read_journal(_fallback_journal(fallback))
    assert contents.has_footer and [c.to_dict() for c in contents.session.cells] == data["cells"]
    first = read_journal(journals(data_dir)[0])
    assert [c.to_dict() for c in first.session.cells] == data["cells"][:2]


def test_nowhere_to_save_the_results_are_still_printed_and_the_warning_says_so(mount_tmpfs, data_dir):
    blocked = mount_tmpfs("blocked", read_only=True)
    run = flashtui(["bench", *SWEEP], data_dir, FLASHTUI_FALLBACK_DIRS=str(blocked / "sessions"),
                   FLASHTUI_INJECT_STORE_FAULT="enospc@1")
    assert run.returncode == 0, run.stderr[-2000:]
    data = _all_cells_printed(run.stdout)
    (warning,) = _warnings(run.stderr)
    assert f"session {data['id']} was not saved" in warning
    assert "No space left on device" in warning and "Read-only file system" in warning
    assert f"its {N_CELLS} cell(s) are only in this output" in warning
    assert journals(data_dir) == []


def test_a_model_that_fails_to_load_leaves_no_session(data_dir, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not json")
    run = flashtui(["bench", "--device", "cpu", "--mode", "prefill", "--model", str(broken),
                    "--seq", "64", "--quiet"], data_dir)
    assert run.returncode == 2 and "cannot read the model config" in run.stderr, run.stderr[-2000:]
    assert run.stdout == ""  # one line on stderr, no empty table
    assert journals(data_dir) == []
    listing = flashtui(["sessions"], data_dir)
    assert listing.returncode == 0 and listing.stdout.startswith("no sessions yet")


def test_old_empty_failed_sessions_are_hidden_unless_all(data_dir, monkeypatch):
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(data_dir))
    empty = Session(spec={"mode": "prefill", "device": "cpu"})  # what an older flashtui left
    journal = SessionJournal(store.journal_path(empty.id))  # eager, as before
    journal.begin(empty)
    empty.finish("failed")
    journal.finish(empty)
    kept = Session(spec={"mode": "kernel", "device": "cpu"})
    journal = store.open_journal(kept)
    cell = Cell("standard", 64, "fp32", median_ms=1.0)
    kept.add_cell(cell)
    journal.append_cell(cell)
    kept.finish("complete")
    journal.finish(kept)
    run = flashtui(["sessions"], data_dir)
    assert kept.id in run.stdout and empty.id not in run.stdout
    assert "(1 session(s) without cells hidden; --all lists them)" in run.stdout
    run = flashtui(["sessions", "--all"], data_dir)
    assert kept.id in run.stdout and empty.id in run.stdout


def test_journal_creation_never_clobbers_and_readers_never_see_half_a_header(tmp_path):
    path = tmp_path / "s.jsonl"
    first = Session(spec={"device": "cpu"})
    a = SessionJournal(path, lazy=True)
    a.begin(first)
    b = SessionJournal(path, lazy=True, fallback_dirs=[tmp_path / "elsewhere"])
    b.begin(Session(spec={"device": "cpu"}, id="other"))
    a.append_cell(Cell("standard", 64, "fp32", median_ms=1.0))
    b.append_cell(Cell("standard", 64, "fp32", median_ms=2.0))  # same path: taken, so it moves
    assert read_journal(path).session.id == first.id
    assert b.path == tmp_path / "elsewhere" / "s.jsonl" and "already exists" not in (b.warning() or "x")
    assert read_journal(b.path).session.id == "other"
    # The file appeared with its header and first cell in one piece.
    assert [r["record"] for r in raw_records(path)] == ["header", "cell"]
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_the_fault_hook_is_off_unless_asked(monkeypatch):
    from flashtui.store import faults

    monkeypatch.delenv(faults.STORE_FAULT_ENV, raising=False)
    assert faults.from_env() is None
    monkeypatch.setenv(faults.STORE_FAULT_ENV, "enospc@2")
    hook = faults.from_env()
    assert hook(1, Path("x")) is None and hook(2, Path("x")).strerror == "No space left on device"
    time.sleep(0)  # nothing else: a parse error is a ValueError naming the variable
    monkeypatch.setenv(faults.STORE_FAULT_ENV, "flood@1")
    try:
        faults.from_env()
    except ValueError as exc:
        assert faults.STORE_FAULT_ENV in str(exc)
    else:
        raise AssertionError("a bad fault spec was accepted")
