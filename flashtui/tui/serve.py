"""``flashtui serve``: the TUI in a browser, through textual-serve, on 127.0.0.1 only.

textual-serve runs a small aiohttp server; each browser connection (each tab, each
reload) starts its own ``python -m flashtui tui`` process with Textual's web driver, and
with it its own worker process: two tabs are two independent apps, two workers, two
sessions; closing a tab ends its app and its worker. Nothing is shared but the disk
(sessions, the doctor cache, the config).

Bound to 127.0.0.1 and never wider: whoever reaches the port runs benchmarks as you.
From a laptop, tunnel it: ``ssh -L 8000:127.0.0.1:8000 gpu-box`` and open
http://127.0.0.1:8000 (the same port on both ends: the page's websocket address names it).
"""

from __future__ import annotations

import errno
import shlex
import socket
import sys

from flashtui.errors import UsageError, WorkerError

HOST = "127.0.0.1"
DEFAULT_PORT = 8000
INSTALL_HINT = "textual-serve is not installed: pip install 'flashtui[web]' (or pip install textual-serve)"
# The app process textual-serve starts per connection (it sets TEXTUAL_DRIVER to its web driver).
WEB_DRIVER_ENV = "TEXTUAL_DRIVER"


def app_command(host: str | None = None, remote_python: str | None = None) -> str:
    """The shell command textual-serve runs for each connection: this interpreter's flashtui
    (with ``--host``: that TUI's worker runs over ssh, as ``flashtui --host`` does)."""
    argv = [sys.executable, "-m", "flashtui", "tui"]
    if host:
        argv += ["--host", host] + (["--remote-python", remote_python] if remote_python else [])
    return shlex.join(argv)


def under_web_driver(environ: dict[str, str]) -> bool:
    """Started by textual-serve (stdin/stdout are its pipes, not a tty): the TUI may run."""
    return "web_driver" in environ.get(WEB_DRIVER_ENV, "")


def _check_port(port: int) -> None:
    """A port already taken is one line now, not an aiohttp traceback later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {HOST} is in use; pick another with --port") from None
            raise WorkerError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None


def serve(port: int = DEFAULT_PORT, debug: bool = False, host: str | None = None,
          remote_python: str | None = None) -> int:
    """Serve the app on http://127.0.0.1:PORT until Ctrl+C (``host``: workers over ssh)."""
    if not 0 < port < 65536:
        raise UsageError(f"--port {port}: must be 1-65535")
    try:
        from textual_serve.server import Server
    except ModuleNotFoundError:
        raise UsageError(INSTALL_HINT) from None
    _check_port(port)
    server = Server(app_command(host, remote_python), host=HOST, port=port, title="flashtui")
    server.serve(debug=debug)
    return 0


__all__ = ["HOST", "DEFAULT_PORT", "app_command", "under_web_driver", "serve"]
