"""Hang-up: the terminal goes away (SIGHUP, as when an SSH session drops).

What must hold: the worker is gone within 2 s, no orphan process is left (one would
hold GPU memory), and the journal has every cell finished before the hang-up, ended by
a footer. Real processes, real signals, a real pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import textwrap
import threading
import time

import pytest

from flashtui.store.journal import read_journal

from .conftest import (REPO, TINY, all_worker_pids_with_env, flashtui_env, gone_within, journals,
                       kill_quietly, pid_alive, raw_records, wait_until, worker_pids_of)

WORKER_GONE_S = 2.0
# The third cell hangs, so the worker is certainly mid-cell when the line drops.
SWEEP = ["bench", *TINY, "--backends", "standard", "--seq", "32,40,48"]
FAULT = "hang@standard@48"


def _cells_on_disk(data_dir) -> int:
    found = journals(data_dir)
    if not found:
        return 0
    return sum(r["record"] == "cell" for r in raw_records(found[0]))


def _check_journal_after_hangup(data_dir) -> None:
    contents = read_journal(journals(data_dir)[0])
    assert contents.has_footer, contents.warnings
    assert contents.session.status == "cancelled"
    assert [(c.seq, c.status) for c in contents.session.cells] == [(32, "ok"), (40, "ok")]


def _controlling_tty_preexec() -> None:
    """In the child: a new session whose controlling terminal is the pty on fd 0."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class _Terminal:
    """The master side of a pty: drains the app's output, and hangs up on ``close``.

    The reader polls with select: a thread blocked in read() would keep the master
    file open after os.close(), and the kernel would never hang the line up.
    """

    def __init__(self, master: int) -> None:
        self.master = master
        self.output: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.output.append(chunk)

    def text(self) -> str:
        return b"".join(self.output).decode(errors="replace")

    def hang_up(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self.master)


def test_sighup_to_bench_stops_the_worker_within_2s_and_keeps_the_journal(data_dir):
    proc = subprocess.Popen([sys.executable, "-m", "flashtui", *SWEEP], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=flashtui_env(data_dir, FLASHTUI_INJECT_FAULT=FAULT),
                            cwd=REPO, start_new_session=True)
    workers: list[int] = []
    try:
        wait_until(lambda: _cells_on_disk(data_dir) >= 2, 90, "two finished cells in the journal")
        workers = worker_pids_of(proc.pid)
        assert len(workers) == 1 and pid_alive(workers[0]), workers
        os.kill(proc.pid, signal.SIGHUP)
        took = gone_within(workers, WORKER_GONE_S)
        out, err = proc.communicate(timeout=30)
    finally:
        kill_quietly([proc.pid, *workers])
    assert proc.returncode == 129, err.decode(errors="replace")[-2000:]
    assert b"Traceback" not in err
    assert all_worker_pids_with_env(str(data_dir)) == []  # no orphan anywhere on the machine
    _check_journal_after_hangup(data_dir)
    print(f"worker gone {took:.2f} s after SIGHUP")


def test_sigterm_to_bench_stops_the_worker_and_keeps_the_table_out_file_and_journal(data_dir, tmp_path):
    """`timeout 150 flashtui bench --out F` ran past its cap on the H200 and lost every
    finished cell: SIGTERM now ends the run like Ctrl-C, at once (exit 143)."""
    out = tmp_path / "partial.json"
    proc = subprocess.Popen([sys.executable, "-m", "flashtui", *SWEEP, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=flashtui_env(data_dir, FLASHTUI_INJECT_FAULT=FAULT), cwd=REPO,
                            start_new_session=True)
    workers: list[int] = []
    try:
        wait_until(lambda: _cells_on_disk(data_dir) >= 2, 90, "two finished cells in the journal")
        workers = worker_pids_of(proc.pid)
        assert len(workers) == 1 and pid_alive(workers[0]), workers
        os.kill(proc.pid, signal.SIGTERM)  # what `timeout` sends
        took = gone_within(workers, WORKER_GONE_S)
        stdout, err = proc.communicate(timeout=30)
    finally:
        kill_quietly([proc.pid, *workers])
    text = err.decode(errors="replace")
    assert proc.returncode == 143, text[-2000:]
    assert "Traceback" not in text
    assert "terminated (SIGTERM); finished cells were kept" in text
    assert b"standard" in stdout  # the table of what finished still reached stdout
    import json

    session = json.loads(out.read_text())
    assert session["status"] == "cancelled"
    assert [(c["seq"], c["status"]) for c in session["cells"]] == [(32, "ok"), (40, "ok")]
    assert all_worker_pids_with_env(str(data_dir)) == []
    _check_journal_after_hangup(data_dir)
    print(f"worker gone {took:.2f} s after SIGTERM")


def test_terminal_hangup_under_a_real_pty(data_dir):
    """Close the master side of the CLI's controlling terminal: the kernel sends the
    SIGHUP, and every later write to the terminal fails (EIO) -- the clean-up must not."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "flashtui", *SWEEP], stdin=slave, stdout=slave,
                            stderr=slave, env=flashtui_env(data_dir, FLASHTUI_INJECT_FAULT=FAULT),
                            cwd=REPO, preexec_fn=_controlling_tty_preexec)
    os.close(slave)
    terminal = _Terminal(master)
    workers: list[int] = []
    try:
        wait_until(lambda: _cells_on_disk(data_dir) >= 2, 90, "two finished cells in the journal")
        workers = worker_pids_of(proc.pid)
        assert len(workers) == 1, workers
        terminal.hang_up()  # the SSH connection drops
        took = gone_within(workers, WORKER_GONE_S)
        proc.wait(timeout=30)
    finally:
        kill_quietly([proc.pid, *workers])
    assert proc.returncode in (129, -signal.SIGHUP), proc.returncode
    assert all_worker_pids_with_env(str(data_dir)) == []
    _check_journal_after_hangup(data_dir)
    print(f"worker gone {took:.2f} s after the pty hung up")


PARENT = textwrap.dedent("""
    import sys, threading, time
    from flashtui.client.worker_client import WorkerClient
    client = WorkerClient()
    # Started from a thread that then ends, as the TUI's bridge does.
    starter = threading.Thread(target=client.start)
    starter.start(); starter.join()
    time.sleep(0.5)
    print(client.pid, client.alive, flush=True)
    time.sleep(600)
""")


def test_worker_dies_with_its_sigkilled_parent_and_survives_its_starter_thread(data_dir):
    """The TUI case: a WorkerClient's process is killed -9 (no clean-up runs at all).

    Also a regression test: PR_SET_PDEATHSIG fires when the *thread* that forked the
    worker exits, so a worker started from a short-lived thread used to be SIGKILLed
    half a second after it was ready. The client now forks from one long-lived thread.
    """
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              env=flashtui_env(data_dir), cwd=REPO)
    worker = None
    try:
        pid_text, alive = parent.stdout.readline().split()
        worker = int(pid_text)
        assert alive == "True", "the worker died with the thread that started it"
        assert pid_alive(worker)
        parent.kill()
        took = gone_within([worker], WORKER_GONE_S)
    finally:
        kill_quietly([parent.pid] + ([worker] if worker else []))
        parent.wait(timeout=10)
    assert all_worker_pids_with_env(str(data_dir)) == []
    print(f"worker gone {took:.2f} s after its parent was killed")


def test_tui_hangup_mid_sweep_under_a_real_pty(data_dir, tmp_path):
    """`flashtui` (the TUI) on a pty: wait for "worker ready", start the default CPU
    sweep with ctrl+r, hang the line up mid-cell. The app and its worker both go, and
    the journal holds every finished cell intact, ended by a footer."""
    pytest.importorskip("textual")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x32\x00\xa0\x00\x00\x00\x00\x00")  # 50 x 160
    env = flashtui_env(data_dir, TERM="xterm-256color", FLASHTUI_CONFIG_DIR=str(tmp_path / "config"),
                       FLASHTUI_INJECT_FAULT="hang@standard@256")
    proc = subprocess.Popen([sys.executable, "-m", "flashtui", "tui"], stdin=slave, stdout=slave,
                            stderr=slave, env=env, cwd=REPO, preexec_fn=_controlling_tty_preexec)
    os.close(slave)
    terminal = _Terminal(master)
    workers: list[int] = []
    try:
        # Ready is posted from the bridge's start thread, which then ends: the worker
        # must outlive it (see the PR_SET_PDEATHSIG test above).
        wait_until(lambda: "worker ready" in terminal.text(), 90, "the TUI to show 'worker ready'")
        os.write(master, b"\x12")  # ctrl+r: run the form's (default CPU) sweep
        # Default CPU sweep: standard, sdpa, sdpa-math, sdpa-flash at 128, then standard@256 hangs.
        wait_until(lambda: _cells_on_disk(data_dir) >= 3, 90, "three finished cells in the journal")
        workers = worker_pids_of(proc.pid)
        assert len(workers) == 1, (workers, terminal.text()[-1500:])
        terminal.hang_up()
        took = gone_within(workers, WORKER_GONE_S)
        proc.wait(timeout=15)
    finally:
        kill_quietly([proc.pid, *workers])
    assert all_worker_pids_with_env(str(data_dir)) == []
    contents = read_journal(journals(data_dir)[0])
    assert contents.skipped_lines == 0, contents.warnings
    assert [(c.backend, c.seq, c.status) for c in contents.session.cells][:3] == [
        ("standard", 128, "ok"), ("sdpa", 128, "ok"), ("sdpa-math", 128, "ok")]
    # The app ends the journal itself: a footer, the sweep marked cancelled, exit 129.
    assert proc.returncode == 129, proc.returncode
    assert contents.has_footer and contents.session.status == "cancelled", contents.warnings
    print(f"TUI exit status {proc.returncode}; footer written: {contents.has_footer}; "
          f"worker gone {took:.2f} s after the pty hung up")
