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
import threading
import time
from typing import Any, Callable

from flashtui.core import protocol as proto
from flashtui.core.spec import CellKey, SweepSpec
from flashtui.core.log_noise import hidden_summary, split_noise
from flashtui.tui import messages as m
from flashtui.errors import one_line

TRACE_CAPACITY = 240  # samples kept for the live sparkline (2 min at 2 Hz, 12 s at 20 Hz)
# The capability probe: seconds on CPU, minutes on a GPU where fa4/flex compile first.
PROBE_TIMEOUT_S = 600.0
# The profiler's start-up: 5-6 s on the H200, up to ~12 s on a loaded 2-core CPU.
WARM_UP_TIMEOUT_S = 120.0


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
        # A sweep over several workers (the Setup screen's GPUs field): the pool while it runs,
        # and how its extra workers are built (env overrides -> a client; tests pass fakes).
        self.pool: Any | None = None
        self.client_factory: Callable[[dict[str, str]], Any] | None = None

    # ------------------------------------------------------------------ status
    @property
    def running(self) -> bool:
        """A sweep (or restart) is in flight."""
        return self._busy.is_set()

    @property
    def worker_pid(self) -> int | None:
        return self.client.pid

    @property
    def ready_wall_s(self) -> float | None:
        """Spawn to WorkerReady of the current worker, as the client saw it."""
        return self.client.ready_wall_s

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
                self.post(m.WorkerStartFailed(proto.WorkerStartFailed(reason=one_line(exc))))
                return
            self.post(m.WorkerReady(ready))
        self._start_sampler(ready)
        self._warm_up()

    def _warm_up(self) -> None:
        """The worker's one-time start-up costs (torch.profiler's start: seconds on a GPU),
        paid while the user is still on Setup. Holds the operations lock like any request:
        a sweep started meanwhile waits for it, as it would have paid it itself. A worker
        that does not know WarmUp (an older one over --host) just pays it in its first sweep."""
        with self._ops_lock:
            if self._closed:
                return
            try:
                self.client.request(proto.WarmUp(), proto.WarmedUp, timeout_s=WARM_UP_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - an optimization only; the sweep pays it otherwise
                pass

    def _start_sampler(self, ready: proto.WorkerReady) -> None:
        if self.sampler_factory is None or self._closed:
            return
        try:
            self.sampler = self.sampler_factory(ready)
            self.sampler.on_sample(self._on_sample)
            self.sampler.watch_pid(ready.pid)
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
        pool = self.pool
        if pool is not None:  # a sweep over several workers: stop its own workers too
            try:
                pool.cancel()
                pool.close(timeout_s=1.0)
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
    def run_sweep(self, spec: SweepSpec, cells: list[CellKey] | None = None, gpus: str | None = None) -> bool:
        """Start a sweep in the background; False when one is already running.

        ``gpus`` ('all', '0,1'): one worker per GPU (client.worker_pool), this bridge's
        worker kept as GPU 0's; the extra workers are closed when the sweep ends."""
        if self._busy.is_set():
            return False
        self._busy.set()
        self.busy_with = "sweep"
        self._thread(self._run_sweep, spec, cells, gpus, name="flashtui-bridge-sweep")
        return True

    def _make_pool(self, spec: SweepSpec, gpus: str) -> Any:
        from flashtui.client.worker_pool import pinned_env, pool_for
        from flashtui.errors import SpecError

        if getattr(self.client, "remote_host", None):
            raise SpecError("GPUs: one worker per GPU starts local workers; not with --host")

        factory = self.client_factory
        if factory is None:
            from flashtui.client.worker_client import WorkerClient

            timeout_s = getattr(self.client, "cell_timeout_s", None)

            def factory(env: dict[str, str]) -> Any:
                return WorkerClient(env=pinned_env(env), cell_timeout_s=timeout_s)
        pool = pool_for(self.client, self.client.start(), device=spec.device, gpus=gpus, workers=None,
                        make_client=factory, first_owned=False)
        self.pool = pool
        pool.start()
        return pool

    def _run_sweep(self, spec: SweepSpec, cells: list[CellKey] | None, gpus: str | None = None) -> None:
        finished = False
        try:
            with self._ops_lock:
                runner = self._make_pool(spec, gpus) if gpus else self.client
                for event in runner.run_sweep(spec, cells):
                    message = m.from_event(event)
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
            if self.pool is not None:
                pool, self.pool = self.pool, None
                pool.close(timeout_s=1.0)  # its own workers only: this bridge's stays
            self.busy_with = None
            self._busy.clear()
            if not finished:  # the sweep thread failed (BridgeError said why): it ended early
                self.post(m.SweepFinished(proto.SweepFinished(cancelled=True)))

    def cancel(self) -> None:
        """Stop after the cell in flight (thread-safe)."""
        try:
            (self.pool or self.client).cancel()
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
            if self.sampler is not None:
                try:
                    self.sampler.watch_pid(ready.pid)
                except Exception:
                    pass
            self.post(m.WorkerRestarted(proto.WorkerRestarted(pid=ready.pid, restarts=self.client.restarts)))
            self.post(m.WorkerReady(ready))
        except Exception as exc:
            self.post(m.WorkerStartFailed(proto.WorkerStartFailed(reason=one_line(exc))))
        finally:
            self.busy_with = None
            self._busy.clear()

    # ------------------------------------------------------------------- probe
    def probe(self, fastest: bool = True, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
        """Run the worker's capability probe in the background; False while busy.

        Posts ProbeProgress (the worker's Progress lines) and ProbeCell (each finished
        matrix cell), then ProbeFinished or
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

        def on_event(event: proto.Event) -> None:
            if isinstance(event, proto.Progress):
                self.post(m.ProbeProgress(event.text))
            elif isinstance(event, proto.ProbeCellFinished):
                self.post(m.ProbeCell(event))

        try:
            with self._ops_lock:
                self.post(m.ProbeProgress("starting the worker…"))
                ready = self.client.start()
                groups = self._doctor_groups()
                if groups:
                    helpers = "; ".join("+".join(group) for group in groups)
                    self.post(m.ProbeProgress(f"probing backends with tiny kernels ({helpers} in "
                                              "workers of their own, at once)…"))
                    reply = proto.ProbeFinished(result=self._probe_parallel(ready, groups, fastest, timeout_s,
                                                                            on_event))
                else:
                    self.post(m.ProbeProgress("probing backends with tiny kernels…"))
                    reply = self.client.request(proto.Probe(fastest=fastest), proto.ProbeFinished,
                                                timeout_s=timeout_s, on_event=on_event)
            self.post(m.ProbeFinished(reply, ready, time.monotonic() - started))
        except Exception as exc:
            self.post(m.ProbeFailed(one_line(exc)))
        finally:
            self.busy_with = None
            self._busy.clear()

    def _doctor_groups(self) -> list[tuple[str, ...]]:
        """The slow backends that probe in helper workers (client.doctor_parallel): on a
        local GPU box only (a --host worker's helpers would have to start over there)."""
        if getattr(self.client, "remote_host", None):
            return []
        from flashtui.client import doctor_parallel, environment

        try:
            preview = environment.preview()
        except Exception:  # noqa: BLE001 - no preview: probe in one worker, as before
            return []
        return doctor_parallel.helper_groups(preview, None, serial=False)

    def _probe_parallel(self, ready: proto.WorkerReady, groups: list[tuple[str, ...]], fastest: bool,
                        timeout_s: float, on_event: Callable[[proto.Event], None]) -> dict[str, Any]:
        """The doctor's probe over this worker and one helper per slow group (flashtui
        doctor's way); matrix cells are renumbered so the screen counts them as one probe."""
        import os

        from flashtui.client import doctor_parallel as dp

        factory = self.client_factory
        if factory is None:
            from flashtui.client.worker_client import WorkerClient

            def factory(env: dict[str, str]) -> Any:
                return WorkerClient(env=env)
        helpers = [dp.Share(factory(dict(os.environ)), group) for group in groups]
        main = dp.Share(self.client, None)
        main.ready = ready
        order = list(ready.backends or {})
        count = [0]
        lock = threading.Lock()

        def renumbered(share: dp.Share, event: proto.Event) -> None:
            if isinstance(event, proto.ProbeCellFinished) and share.names:
                with lock:
                    per_backend = max(1, int(event.n_cells or 0) // len(share.names))
                    event = proto.ProbeCellFinished(cell=event.cell, index=count[0], n_cells=per_backend * len(order))
                    count[0] += 1
            on_event(event)
        try:
            dp.start_all(helpers)
            shares = dp.assign([main, *helpers], order)
            return dp.run_parallel(shares, order, full=False, fastest=fastest, timeout_s=timeout_s,
                                   on_event=renumbered)
        finally:
            for helper in helpers:
                try:
                    helper.client.close()
                except Exception:  # noqa: BLE001
                    pass

    # ------------------------------------------------------------------ stderr
    def _post_stderr_tail(self, max_lines: int = 20) -> None:
        """New lines of the worker's stderr log since the last call, as Log messages."""
        path = self.client.log_path
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
        # Profiler trace lines and library warnings: one "N ... hidden" line, not a screenful.
        lines, hidden = split_noise(lines)
        for line in lines[-max_lines:]:
            self.post(m.Log(proto.Log(level="stderr", text=line)))
        summary = hidden_summary(hidden)
        if summary is not None:
            self.post(m.Log(proto.Log(level="info", text=f"{summary} (full worker log: {path})")))
