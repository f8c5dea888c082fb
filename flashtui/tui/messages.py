"""Typed Textual messages: worker events and monitor samples, as the app receives them.

The bridge thread wraps each client event (a :mod:`flashtui.core.protocol` dataclass)
in one of these and posts it to the app (``post_message`` is the only thread-safe way
in). ``message.event`` is the protocol event itself, unchanged: the app hands it to the
recorder and the panels format what they need with :mod:`flashtui.tui.present`.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from textual.message import Message

from flashtui.core import protocol as proto

E = TypeVar("E", bound=proto.Event)


class WorkerEvent(Message, Generic[E]):
    """Base of every message that carries one worker/client event (``event``)."""

    def __init__(self, event: E) -> None:
        super().__init__()
        self.event: E = event


class WorkerReady(WorkerEvent[proto.WorkerReady]):
    """The worker started (or restarted): backends, provenance, pid."""


class WorkerStartFailed(WorkerEvent[proto.WorkerStartFailed]):
    """The worker could not start; ``event.reason`` is one readable line."""

    @property
    def reason(self) -> str:
        return self.event.reason


class SweepStarted(WorkerEvent[proto.SweepStarted]):
    """A sweep began: ``event.n_cells``."""


class CellStarted(WorkerEvent[proto.CellStarted]):
    """``event``: index, backend, seq, dtype."""


class Progress(WorkerEvent[proto.Progress]):
    """``event.text``: what the worker is doing now."""


class Log(WorkerEvent[proto.Log]):
    """``event``: level, text (worker log lines, and stderr tail lines from the bridge)."""


class CellFinished(WorkerEvent[proto.CellFinished]):
    """``event``: index, cell (a results.Cell as a dict; status may be failed/oom)."""


class WorkerDied(WorkerEvent[proto.WorkerDied]):
    """``event.reason``: why the worker process went away mid-sweep."""


class WorkerRestarted(WorkerEvent[proto.WorkerRestarted]):
    """``event``: pid, restarts."""


class SweepFinished(WorkerEvent[proto.SweepFinished]):
    """``event.cancelled``: the sweep stopped early (asked to, or its thread failed)."""


class RequestFailed(WorkerEvent[proto.RequestFailed]):
    """The worker refused the sweep (a model it cannot load, no CUDA): ``event.reason``."""


class BridgeError(Message):
    """Something in the bridge thread failed; ``reason`` is one readable line."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


# The message for each client event the bridge passes on.
EVENT_TYPES: dict[type[proto.Event], type[WorkerEvent[Any]]] = {
    proto.WorkerReady: WorkerReady, proto.WorkerStartFailed: WorkerStartFailed,
    proto.SweepStarted: SweepStarted, proto.CellStarted: CellStarted, proto.Progress: Progress,
    proto.Log: Log, proto.CellFinished: CellFinished, proto.WorkerDied: WorkerDied,
    proto.WorkerRestarted: WorkerRestarted, proto.SweepFinished: SweepFinished,
    proto.RequestFailed: RequestFailed,
}


def from_event(event: proto.Event) -> WorkerEvent[Any] | None:
    """The typed message for a client event, or None for an event the UI ignores."""
    cls = EVENT_TYPES.get(type(event))
    return cls(event) if cls is not None else None


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


class ProbeCell(WorkerEvent[proto.ProbeCellFinished]):
    """One capability-matrix cell finished (``event``: cell, index, n_cells): the matrix
    fills in while the probe runs (the slow backends come last)."""


class ProbeFinished(Message):
    """The probe answered: ``event`` (its result), the worker's ``ready``, ``seconds`` taken."""

    def __init__(self, event: proto.ProbeFinished, ready: proto.WorkerReady, seconds: float) -> None:
        super().__init__()
        self.event = event
        self.ready = ready
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
    """The profile is written at ``path``: its speedscope ``summary`` and the recording's
    ``details`` (pid, started_at, cells, stopped), for SweepRecorder.attach_profile."""

    def __init__(self, path: str, summary: dict[str, Any], details: dict[str, Any]) -> None:
        super().__init__()
        self.path = path
        self.summary = summary
        self.details = details


class RecordingFailed(Message):
    """Recording could not start or its file is unusable; ``reason`` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


# ------------------------------------------------------------------------ screens
class RunTabShown(Message):
    """The Run screen switched tabs (``tab``: live, charts or pyspy); py-spy sampling
    follows what is on screen."""

    def __init__(self, tab: str) -> None:
        super().__init__()
        self.tab = tab
