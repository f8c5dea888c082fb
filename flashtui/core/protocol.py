"""Worker <-> client wire format: typed messages as versioned JSON lines.

One JSON object per line, ``{"v": 1, "type": "...", ...fields}``. Requests go to the
worker's stdin (imperative names), events come back on its stdout (past-tense facts).
Only plain JSON crosses the boundary: nothing is unpickled or evaluated, logs can be
replayed in tests, and the same worker can run behind ``ssh host python -m flashtui.worker``.

Every message is one frozen dataclass below, registered by its class name (the wire
``type``). :func:`encode` turns one into a line, :func:`decode` a line into one, checking
the version, the type, that every required field is there and that each has its JSON
type; fields a newer worker adds are passed over (fields are only ever added, never
renamed, within a protocol version). Client events (``WorkerDied``...) are facts the
client observes itself; they share the registry so every consumer handles one family of
types, but :func:`decode` refuses them off the wire: no worker may claim them.

Neither side imports the other: the engine and the client both depend on this module,
which depends on nothing but the standard library (and the core's CellKey).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

from flashtui.core.results import Cell
from flashtui.core.spec import CellKey, SpecError

PROTOCOL_VERSION = 1

REQUEST = "request"  # client -> worker
EVENT = "event"  # worker -> client
CLIENT = "client"  # made by the client itself, never on the wire
WIRE_KINDS = (REQUEST, EVENT)

# Every message type by its wire name.
REGISTRY: dict[str, type["Message"]] = {}


class ProtocolError(ValueError):
    """A line (or a message) that is not valid in this protocol version."""


@dataclass(frozen=True)
class Message:
    """Base of every request and event; subclasses are registered by class name."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind and "kind" not in cls.__dict__:  # Request, Event...: bases, not types
            REGISTRY[cls.__name__] = cls

    def __post_init__(self) -> None:
        for name, hint in _hints(type(self)).items():
            value = getattr(self, name)
            if not _matches(value, hint):
                raise ProtocolError(f"{self.type}.{name} must be {_describe(hint)}, "
                                    f"got {type(value).__name__} {_short(value)}")

    @property
    def type(self) -> str:
        """The wire name (the class name)."""
        return type(self).__name__

    def fields(self) -> dict[str, Any]:
        """The payload as plain JSON-ready values (no ``v``/``type``)."""
        return {f.name: _to_wire(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (messages are frozen)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Request(Message):
    kind: ClassVar[str] = REQUEST


@dataclass(frozen=True)
class Event(Message):
    kind: ClassVar[str] = EVENT


@dataclass(frozen=True)
class ClientEvent(Event):
    kind: ClassVar[str] = CLIENT


# ---------------------------------------------------------------------- requests
@dataclass(frozen=True, kw_only=True)
class RunSweep(Request):
    """Run ``cells`` (in this order) of the sweep ``spec`` (SweepSpec.to_dict())."""

    spec: dict[str, Any]
    cells: tuple[CellKey, ...]  # wire: [[backend, seq, dtype], ...]
    # Added in v1: this worker is one rank under torchrun (core.distributed.RankInfo's
    # fields). It runs its share of ``cells``; rank 0 also sends every other rank's cells.
    distributed: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class Cancel(Request):
    """Stop after the cell in flight; the sweep ends with cancelled=true."""


@dataclass(frozen=True, kw_only=True)
class Probe(Request):
    """Doctor: the capability matrix, by running tiny kernels."""

    fastest: bool = True  # also the short labelled "fastest here" timing
    full: bool | None = None  # every cell of compile-heavy backends (None: the worker's env)
    # Added in v1 (the doctor's parallel probe): probe only these backends (None: all).
    backends: list[str] | None = None
    # Only the "fastest here" timing, over the backends this worker's last Probe saw run
    # (run one worker at a time after a parallel probe, so no timing shares the GPU).
    only_fastest: bool = False
    # After the matrix, one untimed call per backend at the "fastest here" shape (its
    # compile), so a later only_fastest Probe times warm kernels (a parallel doctor).
    prime_fastest: bool = False


@dataclass(frozen=True, kw_only=True)
class Capacity(Request):
    """The longest sequence each backend of ``spec`` fits."""

    spec: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class WarmUp(Request):
    """Pay the worker's one-time start-up costs now (torch.profiler's start, 5-6 s under
    CUPTI on the H200; the heap settled), while nothing waits: the TUI sends it while
    the user is on the Setup screen, so the first cell of the first sweep is not held
    back by them. Answered by WarmedUp (added in v1)."""


@dataclass(frozen=True, kw_only=True)
class Shutdown(Request):
    """Exit after the request in hand."""


@dataclass(frozen=True, kw_only=True)
class Inject(Request):
    """Test-only fault injection; no worker of this version accepts it (RequestFailed)."""

    fault: str


# ------------------------------------------------------------------------ events
@dataclass(frozen=True, kw_only=True)
class WorkerReady(Event):
    """The worker imported torch, made its device context and probed the backends."""

    pid: int
    ready_s: float  # the worker's own clock: process start to ready
    provenance: dict[str, Any]
    backends: dict[str, Any]  # name -> {"available": bool, "reason": str | None} on its device
    ready_breakdown_s: dict[str, Any] | None = None  # seconds per start-up step
    cpu_backends: dict[str, Any] | None = None  # the same for a --device cpu run on a GPU box

    @property
    def device_kind(self) -> str:
        return str(self.provenance.get("device_kind") or "cpu")

    # Who answered: every worker of protocol v1 puts both in its provenance (no new wire
    # field needed); a client checks the version against its own (flashtui --host).
    @property
    def flashtui_version(self) -> str | None:
        value = self.provenance.get("flashtui")
        return str(value) if value is not None else None

    @property
    def hostname(self) -> str | None:
        value = self.provenance.get("hostname")
        return str(value) if value is not None else None

    def backends_for(self, device: str) -> dict[str, Any]:
        """Availability on ``device`` (the worker's own, or the CPU beside it)."""
        if device == self.device_kind or self.cpu_backends is None:
            return self.backends
        return self.cpu_backends

    def available(self, device: str) -> list[str]:
        return [name for name, info in self.backends_for(device).items() if info.get("available")]


@dataclass(frozen=True, kw_only=True)
class SweepStarted(Event):
    n_cells: int


@dataclass(frozen=True, kw_only=True)
class CellStarted(Event):
    index: int
    backend: str
    seq: int
    dtype: str

    @property
    def key(self) -> CellKey:
        return CellKey(self.backend, self.seq, self.dtype)


@dataclass(frozen=True, kw_only=True)
class CellFinished(Event):
    index: int
    cell: dict[str, Any]  # Cell.to_dict(); status may be ok, failed, oom, unsupported

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            self.key
        except SpecError as exc:
            raise ProtocolError(f"CellFinished.cell has no valid key: {exc}") from None

    @property
    def key(self) -> CellKey:
        return CellKey.from_list([self.cell.get("backend"), self.cell.get("seq"), self.cell.get("dtype")])

    def to_cell(self) -> Cell:
        """A fresh Cell (each call: the event stays unchanged whoever edits the cell)."""
        return Cell.from_dict(self.cell)


@dataclass(frozen=True, kw_only=True)
class SweepFinished(Event):
    cancelled: bool


@dataclass(frozen=True, kw_only=True)
class ProbeFinished(Event):
    result: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class ProbeCellFinished(Event):
    """One finished capability-matrix cell, so the doctor fills in live (added in v1)."""

    cell: dict[str, Any]
    index: int = 0
    n_cells: int = 0


@dataclass(frozen=True, kw_only=True)
class WarmedUp(Event):
    """The answer to WarmUp: how long the start-up costs took (0 when already paid)."""

    seconds: float


@dataclass(frozen=True, kw_only=True)
class CapacityFinished(Event):
    result: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    text: str


@dataclass(frozen=True, kw_only=True)
class Log(Event):
    level: str  # debug | info | warning | error (the client adds "stderr" for log tails)
    text: str


@dataclass(frozen=True, kw_only=True)
class RequestFailed(Event):
    request: str
    reason: str


# ---------------------------------------------------------------- client events
@dataclass(frozen=True, kw_only=True)
class WorkerDied(ClientEvent):
    """The worker process went away (or was killed by the cell watchdog) mid-sweep."""

    reason: str
    returncode: int | None = None


@dataclass(frozen=True, kw_only=True)
class WorkerRestarted(ClientEvent):
    """A fresh worker replaced the old one; ``restarts`` counts them for this client."""

    pid: int | None
    restarts: int


@dataclass(frozen=True, kw_only=True)
class WorkerStartFailed(ClientEvent):
    """The worker could not start; ``reason`` is one readable line."""

    reason: str


# ------------------------------------------------------------------------ codec
def encode(msg: Message) -> str:
    """One message as a JSON line (with trailing newline). NaN/inf become null."""
    if not isinstance(msg, Message) or type(msg).__name__ not in REGISTRY:
        raise ProtocolError(f"not a protocol message: {msg!r}")
    payload = {"v": PROTOCOL_VERSION, "type": msg.type, **_jsonable(msg.fields())}
    return json.dumps(payload, separators=(",", ":"), allow_nan=False) + "\n"


def decode(line: str | bytes, kinds: Iterable[str] = WIRE_KINDS) -> Message:
    """Parse and check one line; ``kinds`` are the kinds accepted (default: requests and
    events, never client events). Raises :class:`ProtocolError` with a one-line reason."""
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
    cls = REGISTRY.get(type_) if isinstance(type_, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {type_!r}")
    kinds = tuple(kinds)
    if cls.kind not in kinds:
        if cls.kind == CLIENT:
            raise ProtocolError(f"{type_} is a client event; it never comes over the wire")
        named = {REQUEST: "a request", EVENT: "an event"}
        raise ProtocolError(f"{type_} is {named[cls.kind]}; expected "
                            f"{' or '.join(named.get(k, k) for k in kinds)}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    missing = [name for name, f in known.items()
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and name not in payload]
    if missing:
        raise ProtocolError(f"{type_} is missing field(s): {', '.join(missing)}")
    hints = _hints(cls)
    values = {name: _from_wire(payload[name], hints[name], f"{type_}.{name}")
              for name in known if name in payload}
    return cls(**values)


def message_types(kind: str | None = None) -> dict[str, type[Message]]:
    """The registry, optionally only one kind (REQUEST, EVENT or CLIENT)."""
    return {name: cls for name, cls in REGISTRY.items() if kind is None or cls.kind == kind}


# ---------------------------------------------------------------------- helpers
_HINTS: dict[type, dict[str, Any]] = {}
_KEYS = tuple[CellKey, ...]


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        resolved = typing.get_type_hints(cls)
        hints = {f.name: resolved[f.name] for f in dataclasses.fields(cls)}
        _HINTS[cls] = hints
    return hints


def _alternatives(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _matches(value: Any, hint: Any) -> bool:
    for option in _alternatives(hint):
        base = typing.get_origin(option) or option
        if option is Any or (option is type(None) and value is None):
            return True
        if base is bool and isinstance(value, bool):
            return True
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if base in (str, dict, list) and isinstance(value, base):
            return True
        if option == _KEYS and isinstance(value, tuple) and all(isinstance(k, CellKey) for k in value):
            return True
    return False


def _describe(hint: Any) -> str:
    names = []
    for option in _alternatives(hint):
        if option == _KEYS:
            names.append("a list of [backend, seq, dtype]")
        elif option is type(None):
            names.append("null")
        else:
            names.append((typing.get_origin(option) or option).__name__)
    return " or ".join(names)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _to_wire(value: Any) -> Any:
    if isinstance(value, tuple) and all(isinstance(k, CellKey) for k in value):
        return [k.to_list() for k in value]
    return value


def _from_wire(value: Any, hint: Any, where: str) -> Any:
    if _KEYS in _alternatives(hint) and isinstance(value, list):
        try:
            return tuple(CellKey.from_list(item) for item in value)
        except SpecError as exc:
            raise ProtocolError(f"{where}: {exc}") from None
    return value


def _jsonable(value: Any) -> Any:
    """NaN/inf are not JSON: they become None (rendered as NA)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


__all__ = [
    "CLIENT", "EVENT", "PROTOCOL_VERSION", "REGISTRY", "REQUEST", "WIRE_KINDS",
    "Cancel", "Capacity", "CapacityFinished", "CellFinished", "CellStarted", "ClientEvent",
    "Event", "Inject", "Log", "Message", "Probe", "ProbeFinished", "Progress", "ProtocolError",
    "Request", "RequestFailed", "RunSweep", "Shutdown", "SweepFinished", "SweepStarted",
    "WorkerDied", "WorkerReady", "WorkerRestarted", "WorkerStartFailed", "decode", "encode",
    "message_types",
]
