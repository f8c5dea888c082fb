"""Output paths are checked before any work, and written without clobbering.

``bench --out``, ``bench --profile`` and ``export -o`` through the real CLI, on real
files: a symlink is written through (it stays a link, its target gets the data
atomically); a FIFO, a device, a directory, /proc or /sys, a missing or read-only
directory is refused with one line and exit 2 *before* the worker starts; and a write
that still fails after a sweep (a full disk) prints the table anyway, keeps the
session in the store and names the path in one line.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from flashtui.store import index as store

from .conftest import TINY, assert_one_line_error, fill, flashtui, only_journal
from .test_bad_input import stored_session  # noqa: F401 - fixture

SWEEP = [*TINY, "--seq", "64", "--backends", "standard,sdpa-math", "--quiet"]


def _specials(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (path, what the one line must say); each made for real."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "to-pipe").symlink_to(fifo)
    (tmp_path / "a-dir").mkdir()
    plain = tmp_path / "plain"
    plain.write_text("keep me\n")
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    return {
        "fifo": (str(fifo), "is a FIFO"),
        "link-to-fifo": (str(tmp_path / "to-pipe"), "is a FIFO"),
        "directory": (str(tmp_path / "a-dir"), "is a directory"),
        "dev-full": ("/dev/full", "is a device"),
        "dev-null": ("/dev/null", "is a device"),
        "proc": ("/proc/version", "/proc is a kernel pseudo-filesystem"),
        "sys": ("/sys/flashtui.json", "/sys is a kernel pseudo-filesystem"),
        "missing-dir": (str(tmp_path / "no" / "such" / "x.json"), "does not exist"),
        "file-as-dir": (str(plain / "x.json"), "is not a directory"),
        "symlink-loop": (str(tmp_path / "loop-a"), "symbolic links"),
    }


SPECIAL_NAMES = ["fifo", "link-to-fifo", "directory", "dev-full", "dev-null", "proc", "sys",
                 "missing-dir", "file-as-dir", "symlink-loop"]


def _unchanged(tmp_path: Path) -> None:
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)
    assert os.path.islink(tmp_path / "to-pipe")
    assert (tmp_path / "plain").read_text() == "keep me\n"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("name", SPECIAL_NAMES)
def test_bench_out_refuses_before_any_work(name, tmp_path, data_dir):
    path, needle = _specials(tmp_path)[name]
    started = time.monotonic()
    run = flashtui(["bench", *SWEEP, "--out", path], data_dir, timeout=60)
    elapsed_s = time.monotonic() - started
    line = assert_one_line_error(run, needle)
    assert line.startswith("flashtui: error: --out: cannot write ")
    assert run.stdout == "" and not (data_dir / "sessions").exists()  # no worker, no session
    assert elapsed_s < 10, f"refusing took {elapsed_s:.1f} s: the worker must not start"
    _unchanged(tmp_path)


@pytest.mark.parametrize("name", ["fifo", "dev-full", "directory", "proc"])
def test_bench_profile_refuses_before_any_work(name, tmp_path, data_dir):
    path, needle = _specials(tmp_path)[name]
    run = flashtui(["bench", *SWEEP, "--profile", path], data_dir, timeout=60)
    line = assert_one_line_error(run, needle)
    assert line.startswith("flashtui: error: --profile: cannot write ")
    _unchanged(tmp_path)


@pytest.mark.parametrize("name", SPECIAL_NAMES)
def test_export_o_refuses_and_touches_nothing(name, tmp_path, data_dir, stored_session):  # noqa: F811
    path, needle = _specials(tmp_path)[name]
    before = stored_session.read_bytes()
    run = flashtui(["export", stored_session.stem, "--format", "json", "-o", path], data_dir)
    assert_one_line_error(run, needle)
    assert stored_session.read_bytes() == before
    _unchanged(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_read_only_directory_is_refused_before_the_sweep(mount_tmpfs, data_dir):
    folder = mount_tmpfs("ro", read_only=True)
    run = flashtui(["bench", *SWEEP, "--out", str(folder / "s.json")], data_dir, timeout=60)
    assert_one_line_error(run, "read-only file system")
    assert run.stdout == ""


def test_bench_out_through_a_symlink_keeps_the_link(tmp_path, data_dir):
    target = tmp_path / "results" / "latest-real.json"
    target.parent.mkdir()
    target.write_text("the previous run\n")
    target.chmod(0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    dangling = tmp_path / "new.json"
    dangling.symlink_to(tmp_path / "results" / "not-yet.json")
    run = flashtui(["bench", *SWEEP, "--out", str(link)], data_dir)
    assert run.returncode == 0, run.stderr[-2000:]
    assert os.path.islink(link) and os.readlink(link) == str(target)
    data = json.loads(target.read_text())
    assert [c["backend"] for c in data["cells"]] == ["standard", "sdpa-math"]
    assert target.stat().st_mode & 0o777 == 0o640  # the file's mode survives the replace
    assert sorted(p.name for p in target.parent.iterdir()) == ["latest-real.json"]  # no temp left
    # A dangling link: the file it names is created, the link stays.
    session_id = data["id"]
    run = flashtui(["export", session_id, "--format", "json", "-o", str(dangling)], data_dir)
    assert run.returncode == 0, run.stderr
    assert os.path.islink(dangling)
    assert json.loads((tmp_path / "results" / "not-yet.json").read_text())["id"] == session_id


def test_export_o_through_a_symlink_writes_its_target(tmp_path, data_dir, stored_session):  # noqa: F811
    target = tmp_path / "report-v1.md"
    target.write_text("old report\n")
    link = tmp_path / "report.md"
    link.symlink_to(target.name)  # relative, as `ln -s` makes it
    run = flashtui(["export", stored_session.stem, "-o", str(link)], data_dir)
    assert run.returncode == 0, run.stderr
    assert os.path.islink(link) and os.readlink(link) == "report-v1.md"
    assert target.read_text().startswith("# flashtui session")


def test_out_failing_after_the_sweep_still_prints_the_table_and_keeps_the_session(mount_tmpfs, data_dir):
    """The check passes (a writable directory); the disk fills up during the sweep."""
    full = mount_tmpfs("full", size="16k")
    fill(full)
    out = full / "s.json"
    run = flashtui(["bench", *SWEEP, "--out", str(out)], data_dir)
    lines = run.error_lines()
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert len(lines) == 1 and lines[0].startswith(f"flashtui: error: --out: cannot write {out}: "
                                                   "No space left on device"), lines
    assert "kept in the store as session" in lines[0]
    # The measured numbers reached the screen...
    assert "standard" in run.stdout and "sdpa-math" in run.stdout and "ok" in run.stdout
    # ...and the store.
    session, _ = store.load_path(only_journal(data_dir))
    assert session.id in lines[0]
    assert [c.status for c in session.cells] == ["ok", "ok"] and session.status == "complete"
    assert not out.exists() and sorted(p.name for p in full.iterdir()) == ["filler"]


def test_profile_through_a_symlink_is_moved_into_place(tmp_path, data_dir):
    from flashtui.monitor.pyspy import find_pyspy

    if find_pyspy() is None:
        pytest.skip("py-spy not installed")
    target = tmp_path / "prof-real.json"
    link = tmp_path / "prof.json"
    link.symlink_to(target)
    run = flashtui(["bench", *SWEEP, "--profile", str(link)], data_dir, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert os.path.islink(link)
    data = json.loads(target.read_text())
    assert data["$schema"].startswith("https://www.speedscope.app")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == ["prof-real.json", "prof.json"]
