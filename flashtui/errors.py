"""Every one-line error flashtui raises, and the exit code each one means.

Standard library only, so every layer may import it (core and the engine included).
``flashtui.cli.main`` catches :class:`FlashtuiError` once and prints ``str(exc)``'s first
line with the error's ``exit_code``: no traceback reaches a user. Only the entry points
import ``cli``; everything else imports its errors and exit codes from here.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # the run finished, but a cell failed, missed parity, or a diff regressed
EXIT_USAGE = 2  # bad input: a flag, a spec, a path, a session file
EXIT_ENV = 3  # the worker or the environment failed
EXIT_WORKER_POISONED = 75  # the worker's own exit: a CUDA error poisoned its context (EX_TEMPFAIL)
EXIT_HANGUP = 129  # SIGHUP: the terminal went away (128 + 1)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM: `timeout`, a job scheduler, kill (128 + 15)


class FlashtuiError(Exception):
    """Base of every error a user is shown as one line; ``exit_code`` is what the CLI returns."""

    exit_code = EXIT_USAGE

    def one_line(self) -> str:
        text = str(self).strip().splitlines()
        return text[0] if text else type(self).__name__


class UsageError(FlashtuiError, ValueError):
    """Bad input from the user (a flag, a value, a path)."""


class SpecError(UsageError):
    """A sweep spec that cannot run as given (bad sequence length, dtype, backend...)."""


class SessionError(UsageError):
    """A session file that is not a flashtui session of a version this build reads."""


class StorageError(UsageError):
    """A file flashtui was asked to write (or read) could not be: names the path and the reason."""


class WorkerError(FlashtuiError, RuntimeError):
    """The worker could not be started, died for good, or answered nonsense."""

    exit_code = EXIT_ENV


class HangUp(KeyboardInterrupt):
    """SIGHUP: the terminal went away. Clean up like Ctrl-C, but nobody is reading."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, a scheduler, ``kill``): clean up like Ctrl-C, at once."""


def one_line(exc: BaseException) -> str:
    """The first line of any exception's text (its type name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
