"""Start, drive, cancel and restart the measurement worker. No torch here.

``WorkerClient`` owns one ``python -m flashtui.worker`` subprocess. A reader thread
turns its stdout into typed :mod:`flashtui.core.protocol` events; ``run_sweep`` yields
them and survives the worker dying: the cell in flight is reported failed with the
reason (signal, exit code, last stderr line), a fresh worker is started, and the sweep
goes on with the next cell. A per-cell watchdog turns a hung cell into the same story.

What the client observes itself (``WorkerDied``, ``WorkerRestarted``) are the
protocol's client events: the same registry, never accepted off the wire.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from flashtui import paths
from flashtui.errors import EXIT_WORKER_POISONED, WorkerError
from flashtui.client.environment import bytecode_cache_env, compile_cache_env
from flashtui.core.protocol import (
    EVENT, Cancel, CellFinished, CellStarted, Event, Log, ProtocolError, Request, RequestFailed,
    RunSweep, Shutdown, SweepFinished, SweepStarted, WorkerDied, WorkerReady, WorkerRestarted,
    decode, encode,
)
from flashtui.core.results import Cell
from flashtui.core.spec import CellKey, SweepSpec

_EOF = object()
Reply = TypeVar("Reply", bound=Event)


class _Spawner:
    """Starts every worker from one thread that lives as long as this process.

    Why: the worker asks the kernel to SIGKILL it when its parent dies
    (PR_SET_PDEATHSIG, see engine/server.py), and for Linux the "parent" is the
    *thread* that forked it. A worker started from a short-lived thread (the TUI's
    start-up and sweep threads) was killed the moment that thread returned.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None

    def popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, daemon=True,
                                                 name="flashtui-spawner")
                self._thread.start()
        reply: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._requests.put((cmd, kwargs, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value

    def _serve(self) -> None:
        while True:
            cmd, kwargs, reply = self._requests.get()
            try:
                reply.put((True, subprocess.Popen(cmd, **kwargs)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                reply.put((False, exc))


_spawn = _Spawner().popen


def describe_exit(returncode: int | None) -> str:
    """'killed by SIGKILL', 'segmentation fault (SIGSEGV)', 'exited with code 3'."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        signum = -returncode
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        if name == "SIGSEGV":
            return "crashed with a segmentation fault (SIGSEGV)"
        if name == "SIGABRT":
            return "aborted (SIGABRT)"
        return f"killed by {name}"
    if returncode == EXIT_WORKER_POISONED:
        return "exited: a CUDA error poisoned its context"
    return f"exited with code {returncode}"


class WorkerClient:
    """One measurement worker process and the conversation with it."""

    def __init__(
        self,
        *,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        ready_timeout_s: float = 180.0,
        cell_timeout_s: float | None = None,
        launcher: list[str] | None = None,
    ) -> None:
        self.python = python
        self.env = dict(os.environ if env is None else env)
        # The worker must find this very flashtui, installed or not.
        src_root = str(Path(__file__).resolve().parents[2])
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (src_root, self.env.get("PYTHONPATH", "")) if p
        )
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        # Compile once: inductor, Triton, CuTe DSL and FA4 keep their output in flashtui's
        # cache dir across workers and runs (a variable the user set wins).
        self.env.update(compile_cache_env(self.env))
        # Inductor compiles in-process: flashtui's flex graphs hold one or two Triton kernels,
        # so its pool of compile subprocesses (each importing torch, while cells are timed)
        # buys nothing: flex's first call on the H200, cold 3.30 s with the pool, 3.31 s without;
        # warm 1.25 s vs 0.96 s (benchmarks/first_use.py). A value the user set wins.
        self.env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
        pycache = bytecode_cache_env(self.env)
        if pycache:  # this Python would recompile torch from source in every worker
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env.update(pycache)
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="flashtui-worker-", suffix=".log", dir=paths.worker_log_dir())
            os.close(fd)
        self.log_path = Path(log_path)
        self.ready_timeout_s = ready_timeout_s
        self.cell_timeout_s = cell_timeout_s
        # Optional command prefix, e.g. ["py-spy", "record", ..., "--"] (see monitor.pyspy).
        self.launcher = list(launcher or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: WorkerReady | None = None
        # Spawn to WorkerReady as this process saw it (the worker's own clock is ready_s).
        self.ready_wall_s: float | None = None
        self.restarts = 0
        self._events: queue.Queue[Any] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._cancel_requested = threading.Event()

    # ----------------------------------------------------------------- lifecycle
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> WorkerReady:
        """Start the worker and wait for WorkerReady (raises WorkerError with the reason)."""
        if self.alive:
            assert self.ready is not None
            return self.ready
        started = time.monotonic()
        self._events = queue.Queue()
        log = open(self.log_path, "ab")
        cmd = self.command()
        try:
            self.proc = _spawn(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=self.env, start_new_session=False,
            )
        except OSError as exc:
            raise WorkerError(f"cannot start the worker ({cmd[0]}): {exc.strerror or exc}") from None
        finally:
            log.close()
        self._reader = threading.Thread(
            target=self._read_stdout, args=(self.proc, self._events), daemon=True,
            name="flashtui-worker-reader",
        )
        self._reader.start()
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise WorkerError(
                    f"the worker did not report ready within {self.ready_timeout_s:.0f} s; "
                    f"see {self.log_path}"
                )
            try:
                item = self._events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if item is _EOF:
                self.proc.wait(timeout=5)
                raise WorkerError(self.not_ready_reason())
            if isinstance(item, WorkerReady):
                self.check_ready(item)
                self.ready = item
                self.ready_wall_s = time.monotonic() - started
                return item

    def command(self) -> list[str]:
        """The argv that starts one worker (a remote client puts ssh in front)."""
        return [*self.launcher, self.python, "-m", "flashtui.worker"]

    def not_ready_reason(self) -> str:
        """One line: why the worker exited before WorkerReady."""
        returncode = self.proc.returncode if self.proc else None
        return (f"the worker {describe_exit(returncode)} before it was ready: "
                f"{self.stderr_tail() or 'no output'}")

    def death_reason(self) -> str:
        """One line: why the worker went away mid-sweep (exit status, last stderr line)."""
        returncode = self.proc.returncode if self.proc else None
        tail = self.stderr_tail()
        return f"worker {describe_exit(returncode)}" + (f": {tail}" if tail else "")

    def check_ready(self, ready: WorkerReady) -> None:
        """Refuse a worker that cannot serve this client (raises WorkerError); local: none."""

    def restart(self) -> WorkerReady:
        self.kill()
        self.restarts += 1
        return self.start()

    def kill(self) -> None:
        """Stop the worker now (SIGKILL after a short grace for Shutdown)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - kernel refused SIGKILL
            pass
        self._close_pipes(proc)

    def close(self, timeout_s: float | None = None) -> None:
        """Ask the worker to shut down; kill it if it does not within ``timeout_s``.

        Under a launcher (py-spy record) the grace is longer: the profile is written
        only when the worker exits on its own.
        """
        if timeout_s is None:
            timeout_s = 30.0 if self.launcher else 3.0
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                self._send(Shutdown())
                proc.wait(timeout=timeout_s)
            except (WorkerError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self.proc = None

    def __enter__(self) -> "WorkerClient":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @staticmethod
    def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _read_stdout(proc: subprocess.Popen[bytes], out: "queue.Queue[Any]") -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if not raw.strip() or raw.startswith(b"py-spy> "):
                continue  # blank lines, and a py-spy launcher's own status lines
            try:
                out.put(decode(raw, kinds=(EVENT,)))
            except ProtocolError as exc:
                # Stray prints from libraries land here; keep them visible, not fatal.
                out.put(Log(level="warning", text=f"unparsed worker output: {exc}"))
        out.put(_EOF)

    def _send(self, request: Request) -> None:
        if not self.alive or self.proc is None or self.proc.stdin is None:
            raise WorkerError("the worker is not running")
        line = encode(request).encode()
        with self._write_lock:
            try:
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                raise WorkerError("the worker stopped listening (broken pipe)") from None

    def stderr_tail(self, max_lines: int = 1) -> str:
        """The last non-empty line(s) of the worker's stderr log, for one-line reasons."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        # Library chatter (the profiler's USDT trace lines) says nothing about a death.
        lines = [line.strip() for line in lines if line.strip() and not line.startswith("USDT:")]
        return " | ".join(lines[-max_lines:])

    def _next(self, timeout_s: float | None) -> Any:
        """Next event, ``_EOF`` when the worker is gone, or None on timeout."""
        try:
            return self._events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    # ------------------------------------------------------------------- sweeps
    def cancel(self) -> None:
        """Stop after the cell in flight. Safe from any thread."""
        self._cancel_requested.set()
        try:
            self._send(Cancel())
        except WorkerError:
            pass

    def plan(self, spec: SweepSpec) -> list[CellKey]:
        """The cell list for ``spec``, resolving the default backends against the worker."""
        self.start()
        assert self.ready is not None
        return spec.cells(self.ready.available(spec.device))

    def run_sweep(self, spec: SweepSpec, cells: list[CellKey] | None = None, *,
                  distributed: dict[str, Any] | None = None,
                  restart_on_death: bool = True) -> Iterator[Event]:
        """Run the cells (default: the whole plan) and yield every event as it arrives.

        The last event is always ``SweepFinished``. Worker death mid-cell yields a
        ``CellFinished`` with status "failed" and the reason, then ``WorkerDied`` and
        ``WorkerRestarted``, and the sweep continues on a fresh worker.
        ``distributed`` (core.distributed.RankInfo.to_request()): the worker is one rank
        under torchrun; a dead one is not restarted (it cannot rejoin its process group).
        ``restart_on_death=False`` (a worker pool, which hands the cells left to other
        workers): it stops after ``WorkerDied`` and the failed cell too.
        """
        pending = list(cells) if cells is not None else self.plan(spec)
        self._cancel_requested.clear()
        total = len(pending)
        done = 0
        first = True
        while pending:
            self.start()
            self._send(RunSweep(spec=spec.to_dict(), cells=tuple(pending), distributed=distributed))
            in_flight: CellKey | None = None
            cell_started_at = time.monotonic()
            finished_normally = False
            while True:
                timeout = 0.5
                item = self._next(timeout)
                if item is None:
                    if (
                        self.cell_timeout_s is not None and in_flight is not None
                        and time.monotonic() - cell_started_at > self.cell_timeout_s
                    ):
                        self.kill()
                        item = _EOF
                        reason = (
                            f"timed out: no result within {self.cell_timeout_s:g} s; "
                            "the worker was killed and restarted"
                        )
                    elif self.alive:
                        continue
                    else:
                        item = _EOF
                        reason = None
                else:
                    reason = None
                if item is _EOF:
                    proc = self.proc
                    if proc is not None:
                        try:
                            proc.wait(timeout=5)
                        except subprocess.TimeoutExpired:
                            self.kill()
                    why = reason or self.death_reason()
                    yield WorkerDied(reason=why, returncode=proc.returncode if proc else None)
                    if in_flight is not None:
                        failed = Cell(in_flight.backend, in_flight.seq, in_flight.dtype,
                                      status="failed", reason=why)
                        yield CellFinished(index=done, cell=failed.to_dict())
                        pending.remove(in_flight)
                        done += 1
                    if (self._cancel_requested.is_set() or not pending or distributed is not None
                            or not restart_on_death):
                        break
                    self.restart()
                    yield WorkerRestarted(pid=self.pid, restarts=self.restarts)
                    break
                assert isinstance(item, Event)
                # Indices count cells of the whole sweep, across restarted workers.
                if isinstance(item, SweepStarted):
                    if first:
                        first = False
                        yield SweepStarted(n_cells=total)
                    continue
                if isinstance(item, CellStarted):
                    in_flight = item.key
                    cell_started_at = time.monotonic()
                    yield item.replace(index=done)
                    continue
                if isinstance(item, CellFinished):
                    if item.key in pending:
                        pending.remove(item.key)
                    if item.key == in_flight or distributed is None:
                        # (Under torchrun rank 0 also relays other ranks' cells meanwhile.)
                        in_flight = None
                    yield item.replace(index=done)
                    done += 1
                    continue
                if isinstance(item, SweepFinished):
                    finished_normally = True
                    if item.cancelled:
                        self._cancel_requested.set()
                    break
                if isinstance(item, RequestFailed):
                    # The worker refused the whole sweep (bad model, no CUDA): say why, stop.
                    yield item
                    finished_normally = True
                    pending = []
                    break
                yield item
            if (finished_normally or self._cancel_requested.is_set() or distributed is not None
                    or not restart_on_death):
                break
        if first:
            yield SweepStarted(n_cells=total)
        yield SweepFinished(cancelled=self._cancel_requested.is_set() and bool(pending))

    def request(self, request: Request, reply: type[Reply], *, timeout_s: float = 600.0,
                on_event: Callable[[Event], None] | None = None) -> Reply:
        """Send one request and wait for its ``reply`` event (e.g. ``Probe()``,
        ``ProbeFinished``); other events (Log, Progress) go to ``on_event`` when given,
        else are passed over. The worker dying, refusing, or staying silent past
        ``timeout_s`` raises :class:`WorkerError` with one line."""
        self.start()
        self._send(request)
        type_ = request.type
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            item = self._next(0.5)
            if item is None:
                if not self.alive:
                    item = _EOF
                else:
                    continue
            if item is _EOF:
                raise WorkerError(
                    f"the worker {describe_exit(self.proc.returncode if self.proc else None)} "
                    f"during {type_}: {self.stderr_tail() or 'no output'}"
                )
            if isinstance(item, reply):
                return item
            if isinstance(item, RequestFailed):
                raise WorkerError(f"{type_} failed: {item.reason}")
            if on_event is not None:
                on_event(item)
        raise WorkerError(f"{type_} got no reply within {timeout_s:.0f} s")
