"""The store (resolve, list) and `flashtui sessions | export | diff` through cli.main."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flashtui.store import index as store
from flashtui.cli import main
from flashtui.reports import render_session
from flashtui.store.journal import SessionJournal
from flashtui.core.results import Cell
from flashtui.core.session import Session, SessionError


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv(store.DATA_DIR_ENV, str(folder))
    return folder


def _record(sid: str, created_at: str, fa2_ms: float = 1.0, finish: bool = True) -> Session:
    session = Session(spec={"mode": "kernel", "device": "cuda", "dtypes": ["bf16"]},
                      provenance={"device_name": "NVIDIA H100", "torch": "2.5.1"},
                      id=sid, created_at=created_at)
    journal = store.open_journal(session)
    for backend, ms in (("standard", 3.0), ("fa2", fa2_ms)):
        cell = Cell(backend, 4096, "bf16", median_ms=ms, peak_alloc_bytes=1 << 20)
        session.add_cell(cell)
        journal.append_cell(cell)
    if finish:
        session.finish("complete")
        journal.finish(session)
    else:
        journal.close()
    return session


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


def test_store_lives_under_the_env_override(data_dir):
    assert store.sessions_dir() == data_dir / "sessions"
    assert store.journal_path("x") == data_dir / "sessions" / "x.jsonl"
    with pytest.raises(SessionError):
        store.journal_path("../escape")


def test_default_store_is_the_platform_data_dir(monkeypatch):
    from platformdirs import user_data_dir

    monkeypatch.delenv(store.DATA_DIR_ENV, raising=False)
    assert store.data_dir() == Path(user_data_dir("flashtui", appauthor=False))


def test_list_and_resolve(data_dir):
    _record("20250101-100000-aaaaaa", "2025-01-01T10:00:00+00:00")
    _record("20250102-100000-abbbbb", "2025-01-02T10:00:00+00:00", fa2_ms=0.5)
    _record("20250103-100000-cccccc", "2025-01-03T10:00:00+00:00", finish=False)
    summaries = store.list_sessions()
    assert [s.id for s in summaries] == ["20250103-100000-cccccc", "20250102-100000-abbbbb",
                                         "20250101-100000-aaaaaa"]
    newest, middle = summaries[0], summaries[1]
    assert newest.status == "incomplete" and middle.status == "complete"
    assert middle.best_speedup == pytest.approx(6.0) and middle.best_speedup_at == "fa2 seq=4096 bf16"
    assert middle.device == "NVIDIA H100" and middle.mode == "kernel" and middle.n_cells == 2
    sessions = data_dir / "sessions"
    assert store.resolve("latest") == sessions / "20250103-100000-cccccc.jsonl"
    assert store.resolve("20250102-100000-abbbbb") == sessions / "20250102-100000-abbbbb.jsonl"
    assert store.resolve("20250102") == sessions / "20250102-100000-abbbbb.jsonl"
    with pytest.raises(SessionError, match="ambiguous session '2025'"):
        store.resolve("2025")
    with pytest.raises(SessionError, match="unknown session 'zzz'"):
        store.resolve("zzz")
    with pytest.raises(SessionError, match="no such session file"):
        store.resolve("missing.json")


def test_unreadable_journal_is_listed_not_fatal(data_dir):
    _record("20250101-100000-aaaaaa", "2025-01-01T10:00:00+00:00")
    (data_dir / "sessions" / "broken.jsonl").write_text("garbage\n")
    summaries = {s.id: s for s in store.list_sessions()}
    assert summaries["broken"].status == "unreadable" and "header" in summaries["broken"].error
    assert store.resolve("latest").stem == "20250101-100000-aaaaaa"


def test_latest_with_no_sessions_is_a_one_line_error(data_dir, capsys):
    assert main(["export", "latest"]) == 2
    assert "no sessions yet" in _err_line(capsys)


def test_sessions_command_lists_a_table(data_dir, capsys):
    assert main(["sessions"]) == 0
    assert "no sessions yet" in capsys.readouterr().out
    _record("20250101-100000-aaaaaa", "2025-01-01T10:00:00+00:00")
    assert main(["sessions"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["ID", "CREATED", "DEVICE"]
    assert out[1].startswith("20250101-100000-aaaaaa") and "3.00x (fa2 seq=4096 bf16)" in out[1]
    assert main(["sessions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n_ok"] == 2


def test_export_to_stdout_and_to_file(data_dir, tmp_path, capsys, monkeypatch):
    session = _record("20250101-100000-aaaaaa", "2025-01-01T10:00:00+00:00")
    assert main(["export", "latest", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert out == render_session(session, "json")
    assert main(["export", "20250101", "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# flashtui session 20250101-100000-aaaaaa")
    target = tmp_path / "report.csv"
    assert main(["export", "latest", "-o", str(target)]) == 0  # format from the suffix
    assert capsys.readouterr().err.strip() == f"wrote {target}"
    assert target.read_text() == render_session(session, "csv")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "latest", "--format", "html"]) == 0
    assert (tmp_path / "20250101-100000-aaaaaa.html").read_text().count("<svg") == 4
    # An exported JSON file is itself a session reference.
    json_file = tmp_path / "s.json"
    json_file.write_text(out)
    assert main(["export", str(json_file), "--format", "json"]) == 0
    assert capsys.readouterr().out == out


def test_export_errors_are_one_line(data_dir, tmp_path, capsys):
    _record("20250101-100000-aaaaaa", "2025-01-01T10:00:00+00:00")
    _record("20250101-110000-bbbbbb", "2025-01-01T11:00:00+00:00")
    assert main(["export", "20250101", "--format", "md"]) == 2
    assert "ambiguous session '20250101'" in _err_line(capsys)
    assert main(["export", "latest", "--format", "pdf"]) == 2
    assert "unknown export format 'pdf'" in _err_line(capsys)
    assert main(["export", "latest", "-o", str(tmp_path / "no" / "dir" / "x.md")]) == 2
    assert "does not exist" in _err_line(capsys)
    assert main(["export", "latest", "-o", str(tmp_path / "x.pdf")]) == 2
    assert "cannot tell the format" in _err_line(capsys)


def test_export_of_an_interrupted_journal_warns_and_works(data_dir, capsys):
    _record("20250101-100000-aaaaaa", "2025-01-01T10:00:00+00:00", finish=False)
    path = data_dir / "sessions" / "20250101-100000-aaaaaa.jsonl"
    with open(path, "ab") as handle:
        handle.write(b'{"record": "cell", "cell": {"backend": "fa')
    assert main(["export", "latest", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3  # header + the two finished cells
    assert "truncated last record" in captured.err and "no footer" in captured.err


def test_diff_exit_codes(data_dir, capsys):
    _record("20250101-100000-aaaaaa", "2025-01-01T10:00:00+00:00", fa2_ms=1.0)
    _record("20250102-100000-bbbbbb", "2025-01-02T10:00:00+00:00", fa2_ms=1.0)
    _record("20250103-100000-cccccc", "2025-01-03T10:00:00+00:00", fa2_ms=1.2)
    assert main(["diff", "20250101", "20250102"]) == 0
    assert "0 regressions" in capsys.readouterr().out
    assert main(["diff", "20250101", "20250103"]) == 1
    assert "1 regression: fa2 seq=4096 bf16" in capsys.readouterr().out
    assert main(["diff", "20250101", "20250103", "--threshold", "25%"]) == 0
    capsys.readouterr()
    assert main(["diff", "20250101", "latest", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["n_regressions"] == 1 and data["threshold"] == 0.1
    assert main(["diff", "20250101", "latest", "--threshold", "fast"]) == 2
    assert "--threshold must be a number" in _err_line(capsys)
    assert main(["diff", "20250101", "nope"]) == 2
    assert "unknown session 'nope'" in _err_line(capsys)
