"""The worker's hottest Python frames, sampled with py-spy from a background thread.

Why a thread and a "wanted" switch: each ``py-spy dump`` costs a process start and a
read of the worker's memory (non-blocking: the worker is not paused, so its timings are
not billed for the dumps, but the reads still take a core). The
app turns sampling on only while it is worth it (a sweep runs, the py-spy tab is on
screen, no ``py-spy record`` holds the worker: two tracers cannot attach at once) and
off otherwise. Every ``period_s`` the thread takes ``samples`` dumps and posts a
:class:`~flashtui.tui.messages.PySpyFrames`; a missing py-spy or a refused ptrace
posts the one-line hint as a fatal :class:`~flashtui.tui.messages.PySpyStatus`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from flashtui.tui import messages as m
from flashtui.errors import one_line

PERIOD_S = 2.0  # one refresh of the panel
SAMPLES = 10  # dumps per refresh
SAMPLE_INTERVAL_S = 0.02
TOP_N = 12  # rows in the panel


class PySpyPoller:
    """Posts PySpyFrames every ``period_s`` while ``wanted``; never raises into the UI."""

    def __init__(self, pid: Callable[[], int | None], post: Callable[[Any], Any], *,
                 period_s: float = PERIOD_S, samples: int = SAMPLES,
                 interval_s: float = SAMPLE_INTERVAL_S, top_n: int = TOP_N) -> None:
        self.pid = pid
        self.post = post
        self.period_s = period_s
        self.samples = samples
        self.interval_s = interval_s
        self.top_n = top_n
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.n_refreshes = 0

    @property
    def wanted(self) -> bool:
        return self._wanted.is_set()

    def set_wanted(self, on: bool) -> None:
        """Sample (True) or idle (False); starts the thread on first use."""
        if on:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="flashtui-pyspy")
                self._thread.start()
            self._wanted.set()
        else:
            self._wanted.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wanted.set()  # wake the thread so it sees the stop

    def _run(self) -> None:
        from flashtui.monitor import pyspy

        while not self._stop.is_set():
            if not self._wanted.wait(0.5) or self._stop.is_set():
                continue
            started = time.monotonic()
            pid = self.pid()
            if pid is None:
                self.post(m.PySpyStatus("no worker process to sample yet"))
            else:
                try:
                    # Non-blocking: the panel reads the worker's stacks without pausing it,
                    # so cells timed while the tab is open are not billed for the dumps.
                    hot = pyspy.hottest_frames(pid, samples=self.samples, interval_s=self.interval_s,
                                               top_n=self.top_n, by="line", nonblocking=True)
                    self.n_refreshes += 1
                    if self._wanted.is_set():
                        self.post(m.PySpyFrames(hot))
                except pyspy.PySpyUnavailable as exc:
                    self._wanted.clear()
                    self.post(m.PySpyStatus(one_line(exc), fatal=True))
                except pyspy.PySpyError as exc:
                    self.post(m.PySpyStatus(one_line(exc)))
                except Exception as exc:  # a py-spy we do not understand: one line, go on
                    self.post(m.PySpyStatus(f"py-spy sampling failed: {one_line(exc)}"))
            self._stop.wait(max(0.0, self.period_s - (time.monotonic() - started)))


def profile_path(session_id: str) -> Path:
    """Where a recording of ``session_id`` goes: next to its journal, never overwriting."""
    from flashtui.paths import profiles_dir

    folder = profiles_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{session_id}.profile.speedscope.json"
    n = 2
    while path.exists():
        path = folder / f"{session_id}.profile-{n}.speedscope.json"
        n += 1
    return path


def start_recording(pid: int, path: Path, post: Callable[[Any], Any]) -> threading.Thread:
    """In a thread: attach ``py-spy record`` (waits until it samples); post the outcome."""

    def run() -> None:
        from flashtui.monitor import pyspy

        try:
            recording = pyspy.record_pid(pid, path)
        except Exception as exc:  # PySpyUnavailable / PySpyError / ValueError: one line
            post(m.RecordingFailed(one_line(exc)))
            return
        post(m.RecordingStarted(str(path), recording))

    thread = threading.Thread(target=run, daemon=True, name="flashtui-pyspy-record")
    thread.start()
    return thread


def stop_recording(recording: Any, info: dict[str, Any], post: Callable[[Any], Any]) -> threading.Thread:
    """In a thread: stop py-spy, check the speedscope file, post what to attach
    (``info``: the recording's details, e.g. pid, cells, why it stopped)."""

    def run() -> None:
        from flashtui.monitor import pyspy

        try:
            path = recording.stop(check=True)
            summary = pyspy.validate_speedscope(path)
        except Exception as exc:  # PySpyError / SpeedscopeError: one line
            post(m.RecordingFailed(f"profile not saved: {one_line(exc)}"))
            return
        post(m.RecordingStopped(str(path), summary, info))

    thread = threading.Thread(target=run, daemon=True, name="flashtui-pyspy-stop")
    thread.start()
    return thread
