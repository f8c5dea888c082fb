"""Shared fixtures: an isolated config/data dir and the tiny CPU sweep settings."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import pytest

from flashtui.tui.textshot import screen_text  # noqa: F401 - re-exported for the tests

# A sweep that finishes in a few seconds on a 2-core CPU.
TINY_CPU = dict(device="cpu", backends=("standard", "sdpa-math", "sdpa-flash"),
                seqs=(64, 128), dtypes=("fp32",), reps=3, warmup_ms=5.0, heads=2, head_dim=32)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Config, data and screenshots under tmp_path; never the user's real dirs."""
    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


class NoSampler:
    """A sampler stand-in reporting no GPU (the CPU machine's normal state)."""

    def __init__(self, ready: dict[str, Any]) -> None:
        self.callbacks: list[Callable[[Any], None]] = []

    def on_sample(self, cb: Callable[[Any], None]) -> Callable[[], None]:
        self.callbacks.append(cb)
        return lambda: None

    def watch_pid(self, pid: int | None) -> None:
        pass

    def start(self) -> Any:
        class Status:
            available = False
            reason = "no NVIDIA driver on this machine (test)"
        return Status()

    def stop(self) -> None:
        pass


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout_s: float = 30.0,
                   what: str = "condition") -> Any:
    """Let the app run until ``predicate()`` is truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


