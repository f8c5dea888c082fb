"""The bridge: worker client and NVML sampler in threads, events out as Textual messages.

Why a bridge and not client calls in the UI: every client call blocks (the worker takes
seconds to start, a sweep minutes). One operations thread runs them one at a time (a
lock serializes start / sweep / restart, since the client is not re-entrant) and turns
each event into a typed message via ``post`` (the app's thread-safe ``post_message``).
``cancel`` is safe from the UI thread at any time.

The sampler's callback runs in its own thread; it appends to a bounded history here and
posts a coalescing :class:`~flashtui.tui.messages.MonitorSampled`, so the UI redraws at
its own pace and never falls behind.
"""

from __future__ import annotations

import collections
import inspect
import threading
import time
from typing import Any, Callable

from flashtui.core.spec import CellKey, SweepSpec
from flashtui.tui import messages as m
from flashtui.errors import one_line

TRACE_CAPACITY = 240  # samples kept for the live sparkline (2 min at 2 Hz, 12 s at 20 Hz)
# The capability probe: seconds on CPU, minutes on a GPU where fa4/flex compile first.
PROBE_TIMEOUT_S = 600.0


class WorkerBridge:
    """Owns the client (and optionally a sampler) for the app; all waiting happens here."""

    def __init__(self, client: Any, post: Callable[[Any], Any],
                 sampler_factory: Callable[[], Any] | None = None) -> None:
        self.client = client
        self.post = post
        self.sampler_factory = sampler_factory
        self.sampler: Any | None = None
        self.trace: collections.deque[Any] = collections.deque(maxlen=TRACE_CAPACITY)
        self._trace_lock = threading.Lock()
        self._ops_lock = threading.Lock()
        self._busy = threading.Event()
        self._stderr_offset = 0
        self._closed = False
        # What holds the client now: "sweep", "restart" or "probe" (None when idle).
        self.busy_with: str | None = None

    # ------------------------------------------------------------------ status
    @property
    def running(self) -> bool:
        """A sweep (or restart) is in flight."""
        return self._busy.is_set()

    @property
    def worker_pid(self) -> int | None:
        return getattr(self.client, "pid", None)

    def _thread(self, target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True, name=name)
        thread.start()
        return thread

    # --------------------------------------------------------------- lifecycle
    def start(self) -> threading.Thread:
        """Start the worker in the background; posts WorkerReady or WorkerStartFailed."""
        return self._thread(self._start, name="flashtui-bridge-start")

    def _start(self) -> None:
        with self._ops_lock:
            try:
                ready = self.client.start()
            except Exception as exc:  # WorkerError and anything unexpected: one line
                self.post(m.WorkerStartFailed(one_line(exc)))
                return
            self.post(m.WorkerReady(dict(ready.data)))
        self._start_sampler(ready.data)

    def _start_sampler(self, ready_data: dict[str, Any]) -> None:
        if self.sampler_factory is None or self._closed:
            return
        try:
            self.sampler = self.sampler_factory(ready_data)
            self.sampler.on_sample(self._on_sample)
            if ready_data.get("pid") and hasattr(self.sampler, "watch_pid"):
                self.sampler.watch_pid(ready_data["pid"])
            status = self.sampler.start()
            self.post(m.MonitorStatus(bool(getattr(status, "available", False)),
                                      getattr(status, "reason", None)))
        except Exception as exc:
            self.post(m.MonitorStatus(False, f"sampler failed to start: {one_line(exc)}"))

    def _on_sample(self, sample: Any) -> None:
        with self._trace_lock:
            self.trace.append(sample)
        self.post(m.MonitorSampled(sample))

    def trace_snapshot(self) -> list[Any]:
        with self._trace_lock:
            return list(self.trace)

    def close(self) -> None:
        """Stop the sampler, cancel any sweep, shut the worker down (best effort)."""
        self._closed = True
        if self.sampler is not None:
            try:
                self.sampler.stop()
            except Exception:
                pass
        try:
            self.client.cancel()
        except Exception:
            pass
        try:
            self.client.close(timeout_s=1.0)
        except Exception:
            pass

    # ------------------------------------------------------------------ sweeps
    def run_sweep(self, spec: SweepSpec, cells: list[CellKey] | None = None) -> bool:
        """Start a sweep in the background; False when one is already running."""
        if self._busy.is_set():
            return False
        self._busy.set()
        self.busy_with = "sweep"
        self._thread(self._run_sweep, spec, cells, name="flashtui-bridge-sweep")
        return True

    def _run_sweep(self, spec: SweepSpec, cells: list[CellKey] | None) -> None:
        finished = False
        try:
            with self._ops_lock:
                for event in self.client.run_sweep(spec, cells):
                    message = m.from_event(event.type, event.data)
                    if message is None:
                        continue
                    if isinstance(message, (m.WorkerDied, m.SweepFinished)):
                        self._post_stderr_tail()
                    if isinstance(message, m.SweepFinished):
                        finished = True
                        self._busy.clear()
                    self.post(message)
        except Exception as exc:
            self.post(m.BridgeError(f"sweep stopped: {one_line(exc)}"))
        finally:
            self.busy_with = None
            self._busy.clear()
            if not finished:
                self.post(m.SweepFinished({"cancelled": True, "error": True}))

    def cancel(self) -> None:
        """Stop after the cell in flight (thread-safe)."""
        try:
            self.client.cancel()
        except Exception:
            pass

    def restart(self) -> bool:
        """Restart the worker in the background; False while a sweep runs."""
        if self._busy.is_set():
            return False
        self._busy.set()
        self.busy_with = "restart"
        self._thread(self._restart, name="flashtui-bridge-restart")
        return True

    def _restart(self) -> None:
        try:
            with self._ops_lock:
                ready = self.client.restart()
            if self.sampler is not None and ready.data.get("pid"):
                try:
                    self.sampler.watch_pid(ready.data["pid"])
                except Exception:
                    pass
            self.post(m.WorkerRestarted({"pid": ready.data.get("pid"),
                                         "restarts": getattr(self.client, "restarts", None)}))
            self.post(m.WorkerReady(dict(ready.data)))
        except Exception as exc:
            self.post(m.WorkerStartFailed(one_line(exc)))
        finally:
            self.busy_with = None
            self._busy.clear()

    # ------------------------------------------------------------------- probe
    def probe(self, fastest: bool = True, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
        """Run the worker's capability probe in the background; False while busy.

        Posts ProbeProgress (the worker's Progress lines), then ProbeFinished or
        ProbeFailed. Shares the operations lock with sweeps: the client is not re-entrant.
        """
        if self._busy.is_set():
            return False
        self._busy.set()
        self.busy_with = "probe"
        self._thread(self._probe, fastest, timeout_s, name="flashtui-bridge-probe")
        return True

    def _probe(self, fastest: bool, timeout_s: float) -> None:
        started = time.monotonic()
        try:
            with self._ops_lock:
                self.post(m.ProbeProgress("starting the worker…"))
                ready = self.client.start()
                self.post(m.ProbeProgress("probing backends with tiny kernels…"))
                reply = self._request_with_progress("Probe", "ProbeFinished", timeout_s, fastest=fastest)
            self.post(m.ProbeFinished(dict(ready.data), dict(reply.data.get("result") or {}),
                                      time.monotonic() - started))
        except Exception as exc:
            self.post(m.ProbeFailed(one_line(exc)))
        finally:
            self.busy_with = None
            self._busy.clear()

    def _request_with_progress(self, type_: str, reply: str, timeout_s: float, **data: Any) -> Any:
        """``client.request`` that forwards the worker's Progress lines as ProbeProgress.

        ``WorkerClient.request`` passes Progress over; when it grows an ``on_event``
        callback that is used, else the same loop runs here on its ``_send``/``_next``.
        Clients without either (the scripted one) answer through plain ``request``.
        """
        client = self.client

        def on_event(event: Any) -> None:
            if getattr(event, "type", None) == "Progress":
                self.post(m.ProbeProgress(str(event.data.get("text", ""))))
            elif getattr(event, "type", None) == "ProbeCellFinished":
                self.post(m.ProbeCell(dict(event.data["cell"]), int(event.data.get("index") or 0),
                                      int(event.data.get("n_cells") or 0)))

        try:
            accepts = "on_event" in inspect.signature(client.request).parameters
        except (TypeError, ValueError):
            accepts = False
        if accepts:
            return client.request(type_, reply, timeout_s=timeout_s, on_event=on_event, **data)
        if not (hasattr(client, "_send") and hasattr(client, "_next")):
            return client.request(type_, reply, timeout_s=timeout_s, **data)
        from flashtui.client.worker_client import _EOF, WorkerError, describe_exit

        client._send(type_, **data)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            item = client._next(0.5)
            if item is None:
                if client.alive:
                    continue
                item = _EOF
            if item is _EOF:
                proc = getattr(client, "proc", None)
                raise WorkerError(f"the worker {describe_exit(proc.returncode if proc else None)} "
                                  f"during {type_}: {client.stderr_tail() or 'no output'}")
            if item.type == reply:
                return item
            if item.type == "RequestFailed":
                raise WorkerError(f"{type_} failed: {item['reason']}")
            on_event(item)
        raise WorkerError(f"{type_} got no reply within {timeout_s:.0f} s")

    # ------------------------------------------------------------------ stderr
    def _post_stderr_tail(self, max_lines: int = 20) -> None:
        """New lines of the worker's stderr log since the last call, as Log messages."""
        path = getattr(self.client, "log_path", None)
        if path is None:
            return
        try:
            with open(path, "rb") as handle:
                handle.seek(self._stderr_offset)
                chunk = handle.read()
                self._stderr_offset = handle.tell()
        except OSError:
            return
        lines = [line for line in chunk.decode(errors="replace").splitlines() if line.strip()]
        for line in lines[-max_lines:]:
            self.post(m.Log({"level": "stderr", "text": line}))
