"""Command line: `flashtui` (the TUI) and its headless subcommands.

Each subcommand lives in ``flashtui/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a handler
``(args) -> int``. Handlers raise :class:`UsageError` (or SpecError, SessionError,
WorkerError) for anything a user got wrong or the environment refused: ``main`` turns
those into one line on stderr and a non-zero exit, never a traceback.

Exit codes: 0 ok, 1 the run finished but something failed (a cell, a regression),
2 bad input, 3 the worker or environment failed, 129 hung up (SIGHUP), 130 interrupted.

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

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_ENV = 3
EXIT_HANGUP = 129
EXIT_INTERRUPTED = 130

# Subcommand modules under flashtui.commands, in help order.
COMMAND_MODULES = ("bench", "doctor", "sessions")


class UsageError(ValueError):
    """Bad input from the user. ``str()`` is one readable line."""


class HangUp(KeyboardInterrupt):
    """SIGHUP: the terminal went away. Clean up like Ctrl-C, but nobody is reading."""


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


def install_hangup_handler() -> None:
    """SIGHUP -> HangUp in the main thread (headless commands; the TUI has its own)."""
    try:
        signal.signal(signal.SIGHUP, _on_sighup)
    except (ValueError, AttributeError, OSError):  # not the main thread / no SIGHUP here
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
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    tui = subparsers.add_parser("tui", help="the terminal UI (the default)")
    tui.set_defaults(func=_run_tui)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"flashtui.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"flashtui.commands.{name}":
                continue  # a subcommand not shipped in this build
            raise
        module.register(subparsers)
    return parser


def _run_tui(args: argparse.Namespace) -> int:
    try:
        from flashtui.tui.app import run_app
    except ModuleNotFoundError as exc:
        raise UsageError(f"the TUI is unavailable: {exc}; try `flashtui bench`") from None
    return run_app(args)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    from flashtui.client.worker_client import WorkerError
    from flashtui.core.session import SessionError
    from flashtui.core.spec import SpecError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        func = getattr(args, "func", None) or _run_tui
        if func is not _run_tui:
            install_hangup_handler()
        return int(func(args) or 0)
    except (UsageError, SpecError, SessionError) as exc:
        print(f"flashtui: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except WorkerError as exc:
        print(f"flashtui: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ENV
    except HangUp:
        return EXIT_HANGUP  # nobody to tell: the terminal is gone
    except KeyboardInterrupt:
        print("flashtui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `flashtui bench --json | head`
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
