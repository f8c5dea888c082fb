"""Waiting on a headless app (``App.run_test``'s Pilot) until something shows."""

from __future__ import annotations

import time
from typing import Any, Callable


class AppStopped(RuntimeError):
    """The app's message loop ended on an exception: nothing on screen will change."""


async def wait_until(pilot: Any, predicate: Callable[[], Any], timeout_s: float) -> bool:
    """Let the app run until ``predicate()`` is truthy (True) or ``timeout_s`` passes (False).

    Raises :class:`AppStopped` as soon as the app has stopped on an exception.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        error = getattr(pilot.app, "_exception", None)
        if error is not None:
            raise AppStopped(f"{type(error).__name__}: {error}")
        await pilot.pause(0.1)
    return bool(predicate())


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout_s: float = 30.0,
                   what: str = "condition") -> Any:
    """For tests: ``predicate()``'s first truthy value; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
