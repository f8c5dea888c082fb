"""Helpers for the fault-injection suite: real `flashtui` processes, real signals.

Every test here runs the real CLI (or the real worker) as a subprocess with its own
data directory, injects the fault through ``FLASHTUI_INJECT_FAULT`` (see
``flashtui/engine/faults.py``), and then reads what reached the disk with the same
loaders a user's next command would use (``flashtui.store.journal.read_journal``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]

# Tiny CPU shapes: a cell takes well under a second on a 2-core machine.
TINY = ["--device", "cpu", "--heads", "2", "--head-dim", "32", "--reps", "3",
        "--warmup-ms", "0", "--monitor-hz", "0"]


def flashtui_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a flashtui subprocess: this checkout, an isolated data dir."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["FLASHTUI_DATA_DIR"] = str(data_dir)
    env.pop("FLASHTUI_INJECT_FAULT", None)
    env.update(extra)
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def flashtui(args: list[str], data_dir: Path, *, timeout: float = 120, cwd: Path | None = None,
             python: str = sys.executable, **env: str) -> Run:
    """Run ``python -m flashtui ARGS`` to completion."""
    r = subprocess.run([python, "-m", "flashtui", *args], capture_output=True, text=True,
                       timeout=timeout, env=flashtui_env(data_dir, **env), cwd=cwd or REPO)
    return Run(r.returncode, r.stdout, r.stderr)


def start_flashtui(args: list[str], data_dir: Path, *, python: str = sys.executable,
                   **env: str) -> subprocess.Popen[str]:
    """Start ``python -m flashtui ARGS`` without waiting (several runs overlap on 2 cores)."""
    return subprocess.Popen([python, "-m", "flashtui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=flashtui_env(data_dir, **env),
                            cwd=REPO)


def finish(proc: subprocess.Popen[str], timeout: float = 150) -> Run:
    """Wait for a started run; kill it (by pid) and fail on timeout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"flashtui did not finish within {timeout:g} s: {err[-2000:]}")
    return Run(proc.returncode, out, err)


def assert_one_line_error(run: Run, needle: str, code: int = 2) -> str:
    """Exit ``code``, exactly one non-empty stderr line containing ``needle``, no traceback."""
    lines = run.error_lines()
    assert run.returncode == code, (run.returncode, run.stderr[-2000:])
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert len(lines) == 1, run.stderr[-2000:]
    assert lines[0].startswith("flashtui: error: "), lines[0]
    assert needle in lines[0], lines[0]
    return lines[0]


def journals(data_dir: Path) -> list[Path]:
    folder = data_dir / "sessions"
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def only_journal(data_dir: Path) -> Path:
    found = journals(data_dir)
    assert len(found) == 1, found
    return found[0]


def raw_records(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of a journal, in order (what fsync put on disk)."""
    import json

    out = []
    for line in path.read_bytes().split(b"\n"):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a half-written last line: read_journal reports it
    return out


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie holds no memory)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all threads), from /proc."""
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return kids


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children(child)
    return out


def worker_pids_of(pid: int) -> list[int]:
    """Descendants of ``pid`` running ``flashtui.worker`` (from /proc/PID/cmdline)."""
    found = []
    for child in descendants(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"flashtui.worker" in f.read():
                    found.append(child)
        except OSError:
            pass
    return found


def all_worker_pids_with_env(marker: str) -> list[int]:
    """Every live process whose environment carries ``marker`` (a per-test data dir).

    Finds orphans too: a worker reparented to init is no longer our descendant.
    """
    needle = marker.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read() and pid_alive(int(entry)):
                    found.append(int(entry))
        except OSError:
            pass
    return found


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, step_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def gone_within(pids: list[int], timeout_s: float) -> float:
    """Seconds until every pid is gone; fails the test past ``timeout_s``."""
    start = time.monotonic()
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout_s,
               f"pids {pids} to exit (still alive: {[p for p in pids if pid_alive(p)]})")
    return time.monotonic() - start


def kill_quietly(pids: list[int]) -> None:
    """Clean-up for a failed test: SIGKILL the processes this test started, by pid."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mount a tmpfs of a given size (and ``ro``) under tmp_path; needs root and mount."""
    mounted: list[Path] = []

    def mount(name: str, size: str = "1m", read_only: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the filesystem holding ``folder`` to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"x")
    except OSError:
        pass
    finally:
        os.close(fd)
