"""Worker <-> client wire format: versioned JSON lines.

One JSON object per line, ``{"v": 1, "type": "...", ...fields}``. Requests go to the
worker's stdin (imperative names), events come back on its stdout (past-tense facts).
Only plain JSON crosses the boundary: nothing is unpickled or evaluated, logs can be
replayed in tests, and the same worker can run behind ``ssh host python -m flashtui.worker``.

Neither side imports the other: the engine and the client both depend on this module,
which depends on nothing but the standard library.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1

# Requests (client -> worker) and the fields each must carry.
REQUESTS: dict[str, tuple[str, ...]] = {
    "RunSweep": ("spec", "cells"),  # cells: [[backend, seq, dtype], ...] in run order
    "Cancel": (),  # stop after the cell in flight; the sweep ends with cancelled=true
    "Probe": (),  # doctor: capability matrix by running tiny kernels
    "Capacity": ("spec",),  # longest sequence each backend fits
    "Shutdown": (),
    "Inject": ("fault",),  # test-only fault injection; refused unless FLASHTUI_ALLOW_INJECT=1
}

# Events (worker -> client) and the fields each must carry.
EVENTS: dict[str, tuple[str, ...]] = {
    "WorkerReady": ("pid", "ready_s", "provenance", "backends"),
    "SweepStarted": ("n_cells",),
    "CellStarted": ("index", "backend", "seq", "dtype"),
    "CellFinished": ("index", "cell"),
    "SweepFinished": ("cancelled",),
    # One finished capability-matrix cell (doctor fills in live); optional: index, n_cells.
    "ProbeCellFinished": ("cell",),
    "ProbeFinished": ("result",),
    "CapacityFinished": ("result",),
    "Progress": ("text",),
    "Log": ("level", "text"),
    "RequestFailed": ("request", "reason"),
}


class ProtocolError(ValueError):
    """A line that is not a valid message of this protocol version."""


@dataclass(frozen=True)
class Message:
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def _jsonable(value: Any) -> Any:
    """NaN/inf are not JSON: they become None (rendered as NA)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def encode(type_: str, **data: Any) -> str:
    """One message as a JSON line (with trailing newline)."""
    if type_ not in REQUESTS and type_ not in EVENTS:
        raise ProtocolError(f"unknown message type {type_!r}")
    required = REQUESTS.get(type_) or EVENTS.get(type_) or ()
    missing = [name for name in required if name not in data]
    if missing:
        raise ProtocolError(f"{type_} is missing field(s): {', '.join(missing)}")
    payload = {"v": PROTOCOL_VERSION, "type": type_, **_jsonable(data)}
    return json.dumps(payload, separators=(",", ":"), allow_nan=False) + "\n"


def decode(line: str | bytes) -> Message:
    """Parse and check one line. Raises :class:`ProtocolError` with a one-line reason."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.strip()
    if not text:
        raise ProtocolError("empty line")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON ({exc.msg}): {text[:80]!r}") from None
    if not isinstance(payload, dict):
        raise ProtocolError("a message must be a JSON object")
    version = payload.pop("v", None)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version {version!r} but this flashtui speaks {PROTOCOL_VERSION}; "
            "run the same flashtui version on both sides"
        )
    type_ = payload.pop("type", None)
    required = REQUESTS.get(type_) if type_ in REQUESTS else EVENTS.get(type_)
    if required is None:
        raise ProtocolError(f"unknown message type {type_!r}")
    missing = [name for name in required if name not in payload]
    if missing:
        raise ProtocolError(f"{type_} is missing field(s): {', '.join(missing)}")
    return Message(type_, payload)
