"""`flashtui serve`: bad input is one line and exit 2 (the browser test serves for real)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from flashtui.tui.serve import HOST, app_command, under_web_driver


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flashtui", "serve", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("port, says", [("0", "--port 0: must be 1-65535"), ("x", "invalid int value: 'x'")])
def test_a_bad_port_is_one_line_and_exit_2(port, says):
    result = serve("--port", port)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flashtui: error: ") and says in lines[0], result.stderr


def test_a_port_in_use_is_one_line_and_exit_2():
    pytest.importorskip("textual_serve")
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip() == f"flashtui: error: port {port} on 127.0.0.1 is in use; pick another with --port"


def test_each_connection_runs_this_interpreters_tui_under_the_web_driver():
    assert app_command().split() == [sys.executable, "-m", "flashtui", "tui"]
    assert app_command("gpu box", "/opt/py/bin/python").endswith(
        "-m flashtui tui --host 'gpu box' --remote-python /opt/py/bin/python")
    assert under_web_driver({"TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver"})
    assert not under_web_driver({})


def test_serve_takes_host_and_other_commands_still_refuse_it():
    from flashtui.cli import build_parser

    args = build_parser().parse_args(["serve", "--port", "8123", "--host", "gpu-box"])
    assert (args.port, args.host) == (8123, "gpu-box")
    result = subprocess.run([sys.executable, "-m", "flashtui", "--host", "gpu-box", "sessions"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "flashtui: error: --host works with the TUI, serve and bench, not sessions"
