"""`flashtui` without a terminal: one line pointing to `flashtui bench`, exit 2, no traceback."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest


def run_tui(args: list[str], stdin: int | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flashtui", *args], stdin=stdin, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("args", [[], ["tui"]])
def test_stdin_and_stdout_not_a_tty(args):
    result = run_tui(args, subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "flashtui bench" in lines[0] and "terminal" in lines[0], result.stderr


def test_stdin_a_tty_but_stdout_piped():
    leader, follower = pty.openpty()
    try:
        result = run_tui([], follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "flashtui bench" in lines[0], result.stderr
    assert "\x1b[" not in result.stdout + result.stderr  # no escape codes into the pipe
