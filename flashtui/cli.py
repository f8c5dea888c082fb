"""Command line: `flashtui` (the TUI) and its headless subcommands.

An entry point only: nothing else in flashtui imports this module. Each subcommand lives
in ``flashtui/commands/<name>.py`` and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to a handler ``(args) -> int``. Handlers raise a
:class:`flashtui.errors.FlashtuiError` subclass for anything a user got wrong or the
environment refused: ``main`` catches it once and prints one line on stderr with the
error's exit code, never a traceback. Exit codes are listed in ``flashtui/errors.py``.

SIGTERM (``timeout``, a job scheduler) is turned into :class:`Terminated` the same way:
the worker is stopped at once and every finished cell still reaches the table, ``--out``
and the journal; the exit code is 143.

Hang-up: a headless command turns SIGHUP (the SSH session dropped) into
:class:`HangUp`, a KeyboardInterrupt, so the same ``finally`` paths that handle Ctrl-C
stop the worker and write the journal footer ("cancelled"). Writes to the dead
terminal are sent to /dev/null instead of failing with EIO halfway through clean-up.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import NoReturn, Sequence

from flashtui import __version__
from flashtui.client.remote import HOST_COMMANDS, add_host_arguments
from flashtui.errors import (  # noqa: F401 - EXIT_* and UsageError re-exported for scripts
    EXIT_FINDINGS,
    EXIT_HANGUP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    FlashtuiError,
    HangUp,
    Terminated,
    UsageError,
    one_line,
)


# Subcommand modules under flashtui.commands, in help order.
COMMAND_MODULES = ("bench", "doctor", "sessions")


def _silence_dead_terminal() -> None:
    """Point fds 1 and 2 at /dev/null where they no longer accept writes (a hung-up tty).

    A zero-byte write costs nothing on a file or pipe and fails with EIO on a tty
    after hang-up, so redirected output (``--json > file``) keeps flowing.
    """
    for fd in (1, 2):
        try:
            os.write(fd, b"")
        except OSError:
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
            except OSError:
                pass


def _on_sighup(signum: int, frame: object) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # clean-up must not be interrupted again
    _silence_dead_terminal()
    raise HangUp()


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # clean-up must not be interrupted again
    raise Terminated()


def install_hangup_handler() -> None:
    """SIGHUP -> HangUp and SIGTERM -> Terminated in the main thread (headless commands;
    the TUI has its own)."""
    for signum, handler in (("SIGHUP", _on_sighup), ("SIGTERM", _on_sigterm)):
        try:
            signal.signal(getattr(signal, signum), handler)
        except (ValueError, AttributeError, OSError):  # not the main thread / no such signal here
            pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flashtui",
        description="What does FlashAttention buy me here? Run with no command for the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"flashtui {__version__}")
    add_host_arguments(parser)  # for the TUI: `flashtui --host gpu-box`
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    tui = subparsers.add_parser("tui", help="the terminal UI (the default)")
    add_host_arguments(tui, sub=True)
    tui.set_defaults(func=_run_tui)
    serve = subparsers.add_parser(
        "serve", help="the terminal UI in a browser on http://127.0.0.1:PORT (textual-serve)",
        description="Serve the TUI to a browser on 127.0.0.1 only (tunnel it with ssh -L). "
                    "Each browser tab gets its own app and its own worker process.")
    serve.add_argument("--port", type=int, default=8000, help="the port on 127.0.0.1 (default 8000)")
    serve.add_argument("--debug", action="store_true", help="textual-serve's debug logging")
    add_host_arguments(serve, sub=True)  # each connection's TUI runs its worker on HOST
    serve.set_defaults(func=_run_serve)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"flashtui.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"flashtui.commands.{name}":
                continue  # a subcommand not shipped in this build
            raise
        module.register(subparsers)
    return parser


def _has_terminal() -> bool:
    """Both ends of the TUI are a terminal: keys come in on stdin, frames go out on stdout."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def _served() -> bool:
    """Started by ``flashtui serve`` (textual-serve's web driver): no tty, and none needed."""
    from flashtui.tui.serve import under_web_driver

    return under_web_driver(dict(os.environ))


def _run_serve(args: argparse.Namespace) -> int:
    from flashtui.tui.serve import serve

    return serve(args.port, debug=args.debug, host=getattr(args, "host", None),
                 remote_python=getattr(args, "remote_python", None))


def _run_tui(args: argparse.Namespace) -> int:
    if not _has_terminal() and not _served():
        # Piped, redirected or under cron: a full-screen UI would hang or print escape codes.
        raise UsageError("the TUI needs a terminal (stdin and stdout a tty); "
                         "for a headless run use `flashtui bench` (see `flashtui bench --help`)")
    try:
        from flashtui.tui.app import run_app
    except ModuleNotFoundError as exc:
        raise UsageError(f"the TUI is unavailable: {exc}; try `flashtui bench`") from None
    return run_app(args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        func = getattr(args, "func", None) or _run_tui
        if getattr(args, "host", None) and args.command not in HOST_COMMANDS:
            raise UsageError(f"--host works with the TUI, serve and bench, not {args.command}")
        if func is not _run_tui:
            install_hangup_handler()
        return int(func(args) or 0)
    except FlashtuiError as exc:
        print(f"flashtui: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except HangUp:
        return EXIT_HANGUP  # nobody to tell: the terminal is gone
    except Terminated:
        print("flashtui: terminated (SIGTERM); finished cells were kept", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("flashtui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `flashtui bench --json | head`
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
