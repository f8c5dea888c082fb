"""The session journal: durable per cell, survives SIGKILL, loads what is valid."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flashtui.store.atomic import StorageError
from flashtui.store.journal import SessionJournal, load_journal, read_journal
from flashtui.core.results import SCHEMA_VERSION, Cell, Parity
from flashtui.core.session import Session, SessionError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _session() -> Session:
    return Session(spec={"mode": "kernel", "device": "cpu", "seqs": [128, 256], "dtypes": ["fp32"]},
                   provenance={"device_name": "cpu", "torch": "2.13.0"},
                   id="20250102-030405-aaaaaa", created_at="2025-01-02T03:04:05+00:00",
                   flashtui_version="0.1.0")


def _cell(backend: str, seq: int, median_ms: float) -> Cell:
    return Cell(backend, seq, "fp32", median_ms=median_ms, iqr_ms=median_ms / 20, reps=10,
                peak_alloc_bytes=seq * seq * 4, parity=Parity(rel_l2=1e-7, passed=True))


def _write_full_journal(path: Path) -> Session:
    session = _session()
    journal = SessionJournal(path)
    journal.begin(session)
    for i, seq in enumerate((128, 256)):
        for backend, ms in (("standard", 1.0 + i), ("sdpa-math", 0.5 + i)):
            cell = _cell(backend, seq, ms)
            session.add_cell(cell)
            journal.append_cell(cell)
    session.finish("complete")
    journal.finish(session)
    return session


def test_round_trip_reproduces_the_session(tmp_path):
    path = tmp_path / "s.jsonl"
    session = _write_full_journal(path)
    loaded, warnings = load_journal(path)
    assert warnings == []
    assert loaded.to_dict() == session.to_dict()
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["record"] == "header"
    assert json.loads(lines[-1]) == {"record": "footer", "status": "complete",
                                     "finished_at": session.finished_at, "n_cells": 4}
    assert [json.loads(l)["record"] for l in lines[1:-1]] == ["cell"] * 4


def test_update_records_merge_and_finish_writes_what_is_missing(tmp_path):
    path = tmp_path / "s.jsonl"
    session = _session()
    journal = SessionJournal(path)
    journal.begin(session)
    journal.append_cell(_cell("standard", 128, 1.0))
    session.add_cell(_cell("standard", 128, 1.0))
    journal.update(provenance={"flash_attn": "2.7.0"}, attachments={"nvml": [1, 2, 3]})
    session.provenance["flash_attn"] = "2.7.0"
    session.attachments["nvml"] = [1, 2, 3]
    # Never journaled explicitly: finish() must notice and write them.
    session.add_cell(_cell("sdpa-math", 128, 0.5))
    session.worker["startup_s"] = 1.5
    session.finish("complete")
    journal.finish(session)
    loaded, warnings = load_journal(path)
    assert warnings == []
    assert loaded.to_dict() == session.to_dict()
    assert loaded.provenance == {"device_name": "cpu", "torch": "2.13.0", "flash_attn": "2.7.0"}


def test_rerun_of_a_cell_replaces_it(tmp_path):
    path = tmp_path / "s.jsonl"
    journal = SessionJournal(path)
    journal.begin(_session())
    journal.append_cell(_cell("standard", 128, 1.0))
    journal.append_cell(_cell("standard", 128, 3.0))
    loaded, _ = load_journal(path)
    assert len(loaded.cells) == 1 and loaded.cells[0].median_ms == 3.0


_CHILD = textwrap.dedent("""
    import sys, time
    from flashtui.store.journal import SessionJournal
    from flashtui.core.results import Cell
    from flashtui.core.session import Session
    session = Session(spec={"mode": "kernel", "seqs": list(range(1, 10001))}, id="killed")
    journal = SessionJournal(sys.argv[1])
    journal.begin(session)
    for i in range(1, 10001):
        journal.append_cell(Cell("standard", i, "fp32", median_ms=i / 7, extra={"pad": "x" * 4000}))
        print(i, flush=True)  # only after append_cell returned: the cell is durable
        time.sleep(0.02)
""")


def test_journal_survives_sigkill_mid_sweep(tmp_path):
    path = tmp_path / "killed.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE,
                             text=True, env=env)
    reported = 0
    try:
        deadline = time.monotonic() + 60
        while reported < 8 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            reported = int(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert reported >= 8, "the child never journaled 8 cells"
    loaded, warnings = load_journal(path)
    seqs = [c.seq for c in loaded.cells]
    # Every cell the child reported finished is there, intact, in order.
    assert seqs[:reported] == list(range(1, reported + 1))
    for cell in loaded.cells:
        assert math.isclose(cell.median_ms, cell.seq / 7)
    assert loaded.status == "running"
    assert any("no footer" in w for w in warnings)
    assert read_journal(path).has_footer is False


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "s.jsonl"
    full = _write_full_journal(path)
    lines = path.read_bytes().splitlines(keepends=True)
    # Drop the footer and cut the last cell record in half, as a kill mid-write would.
    path.write_bytes(b"".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])
    loaded, warnings = load_journal(path)
    assert [c.key for c in loaded.cells] == [c.key for c in full.cells[:-1]]
    assert any("truncated last record" in w and f"line {len(lines) - 1}" in w for w in warnings)
    assert any("no footer" in w for w in warnings)


def test_garbage_and_malformed_lines_are_skipped(tmp_path):
    path = tmp_path / "s.jsonl"
    full = _write_full_journal(path)
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(2, "\x00\x01 not json at all\n")
    lines.insert(3, json.dumps({"record": "cell", "cell": {"seq": 1}}) + "\n")
    lines.insert(4, json.dumps(["a", "list"]) + "\n")
    lines.insert(5, json.dumps({"record": "from-the-future"}) + "\n")
    path.write_text("".join(lines))
    contents = read_journal(path)
    assert [c.key for c in contents.session.cells] == [c.key for c in full.cells]
    assert contents.has_footer and contents.session.status == "complete"
    joined = "\n".join(contents.warnings)
    assert "line 3: not valid JSON" in joined
    assert "line 4: malformed cell record" in joined
    assert "line 5: not a journal record" in joined
    assert "line 6: unknown record type 'from-the-future'" in joined
    assert contents.skipped_lines == 4


def test_newer_schema_version_is_refused_clearly(tmp_path):
    path = tmp_path / "s.jsonl"
    _write_full_journal(path)
    lines = path.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["schema"]["version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    with pytest.raises(SessionError, match=r"newer than this flashtui reads .*upgrade flashtui"):
        load_journal(path)


@pytest.mark.parametrize("content, message", [
    (b"", "empty journal"),
    (b"garbage\n", "line 1 is not a valid header"),
    (b'{"record": "cell", "cell": {}}\n', "line 1 is not a valid header"),
    (b'{"record": "header", "schema": {"name": "other"}}\n', "not a flashtui session journal"),
])
def test_unusable_files_raise_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(SessionError, match=message) as info:
        load_journal(path)
    assert "\n" not in str(info.value)


def test_begin_never_overwrites_and_reports_unwritable_places(tmp_path):
    path = tmp_path / "s.jsonl"
    _write_full_journal(path)
    before = path.read_bytes()
    with pytest.raises(StorageError, match="already exists"):
        SessionJournal(path).begin(_session())
    assert path.read_bytes() == before
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot create journal .*a-file") as info:
        SessionJournal(blocker / "sessions" / "s.jsonl").begin(_session())
    assert "\n" not in str(info.value)


def test_context_manager_records_a_crash_as_failed(tmp_path):
    path = tmp_path / "s.jsonl"
    with pytest.raises(RuntimeError):
        with SessionJournal(path) as journal:
            journal.begin(_session())
            journal.append_cell(_cell("standard", 128, 1.0))
            raise RuntimeError("worker exploded")
    contents = read_journal(path)
    assert contents.has_footer and contents.session.status == "failed"
    assert len(contents.session.cells) == 1


def test_nan_is_refused_rather_than_written_as_invalid_json(tmp_path):
    journal = SessionJournal(tmp_path / "s.jsonl")
    journal.begin(_session())
    with pytest.raises(SessionError, match="cannot journal a cell record"):
        journal.append_cell(_cell("standard", 128, float("nan")))
    loaded, _ = load_journal(tmp_path / "s.jsonl")
    assert loaded.cells == []
