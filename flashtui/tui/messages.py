"""Typed Textual messages: worker events and monitor samples, as the app receives them.

The bridge thread turns each client event into one of these and posts it to the app
(``post_message`` is the only thread-safe way in). Payloads stay plain dicts as they
came off the wire; the panels format them with :mod:`flashtui.tui.present`.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class WorkerEvent(Message):
    """Base of every message that carries a worker/client event."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.data: dict[str, Any] = dict(data or {})


class WorkerReady(WorkerEvent):
    """The worker started: ``data`` is WorkerReady's payload (backends, provenance, pid)."""


class WorkerStartFailed(WorkerEvent):
    """The worker could not start; ``reason`` is one readable line."""

    def __init__(self, reason: str) -> None:
        super().__init__({"reason": reason})
        self.reason = reason


class SweepStarted(WorkerEvent):
    """A sweep began: ``data["n_cells"]``."""


class CellStarted(WorkerEvent):
    """``data``: index, backend, seq, dtype."""


class Progress(WorkerEvent):
    """``data["text"]``: what the worker is doing now."""


class Log(WorkerEvent):
    """``data``: level, text (worker log lines, and stderr tail lines from the bridge)."""


class CellFinished(WorkerEvent):
    """``data``: index, cell (a results.Cell as a dict; status may be failed/oom)."""


class WorkerDied(WorkerEvent):
    """``data["reason"]``: why the worker process went away mid-sweep."""


class WorkerRestarted(WorkerEvent):
    """``data``: pid, restarts."""


class SweepFinished(WorkerEvent):
    """``data["cancelled"]``: the sweep stopped early at the user's request."""


class BridgeError(WorkerEvent):
    """Something in the bridge thread failed; ``reason`` is one readable line."""

    def __init__(self, reason: str) -> None:
        super().__init__({"reason": reason})
        self.reason = reason


EVENT_TYPES: dict[str, type[WorkerEvent]] = {
    cls.__name__: cls
    for cls in (WorkerReady, SweepStarted, CellStarted, Progress, Log, CellFinished,
                WorkerDied, WorkerRestarted, SweepFinished)
}


def from_event(type_name: str, data: dict[str, Any]) -> WorkerEvent | None:
    """The typed message for a client event, or None for an event the UI ignores."""
    cls = EVENT_TYPES.get(type_name)
    return cls(data) if cls is not None else None


class MonitorSampled(Message):
    """A new NVML sample arrived (the newest; older pending ones are dropped).

    The full trace lives in the bridge's history (nothing is lost by coalescing):
    this message only says "redraw", so a queue backed up behind a slow frame holds
    one of these, not hundreds.
    """

    def __init__(self, sample: Any) -> None:
        super().__init__()
        self.sample = sample

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MonitorSampled)


class MonitorStatus(Message):
    """The sampler's state: ``available`` and, when not, a ``reason`` to show."""

    def __init__(self, available: bool, reason: str | None) -> None:
        super().__init__()
        self.available = available
        self.reason = reason


# ------------------------------------------------------------------ doctor probe
class ProbeProgress(Message):
    """The capability probe is running: ``text`` says what it does now (worker Progress)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ProbeCell(Message):
    """One capability-matrix cell finished (worker ProbeCellFinished): the matrix fills in."""

    def __init__(self, cell: dict[str, Any], index: int, n_cells: int) -> None:
        super().__init__()
        self.cell = cell
        self.index = index
        self.n_cells = n_cells


class ProbeFinished(Message):
    """The probe answered: ``ready`` (WorkerReady data) and ``result`` (ProbeFinished's)."""

    def __init__(self, ready: dict[str, Any], result: dict[str, Any], seconds: float) -> None:
        super().__init__()
        self.ready = ready
        self.result = result
        self.seconds = seconds


class ProbeFailed(Message):
    """The probe could not run; ``reason`` is one readable line."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


# ------------------------------------------------------------------------ py-spy
class PySpyFrames(Message):
    """A fresh ``monitor.pyspy.HotFrames`` of the worker (newest replaces pending ones)."""

    def __init__(self, hot: Any) -> None:
        super().__init__()
        self.hot = hot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PySpyFrames)


class PySpyStatus(Message):
    """py-spy could not sample: ``reason`` is its one-line hint; ``fatal`` stops polling."""

    def __init__(self, reason: str, fatal: bool = False) -> None:
        super().__init__()
        self.reason = reason
        self.fatal = fatal


class RecordingStarted(Message):
    """``py-spy record`` is attached to the worker and writing ``path``."""

    def __init__(self, path: str, recording: Any) -> None:
        super().__init__()
        self.path = path
        self.recording = recording


class RecordingStopped(Message):
    """The profile is written: ``attachment`` is what goes into session.attachments."""

    def __init__(self, attachment: dict[str, Any]) -> None:
        super().__init__()
        self.attachment = attachment


class RecordingFailed(Message):
    """Recording could not start or its file is unusable; ``reason`` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
