"""The worker process: ``python -m flashtui.worker``.

Reads JSON-lines requests on stdin, writes versioned events on stdout, logs on stderr.
The protocol owns file descriptor 1: anything else that prints (a library, a C
extension) is redirected to stderr so it cannot corrupt the stream.

It dies with its client: stdin reaching EOF (the client closed or crashed) ends the
process at once, and on Linux the kernel sends it SIGKILL if the parent dies first
(PR_SET_PDEATHSIG), so no orphan keeps holding GPU memory after an SSH hang-up.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # before importing torch: the ready time includes it


def _process_start() -> float:
    """perf_counter value at process creation (Linux /proc), else _T0."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime_s = float(f.read().split()[0])
        import os as _os

        age_s = uptime_s - start_ticks / _os.sysconf("SC_CLK_TCK")
        return _T0 - max(age_s, 0.0)
    except (OSError, ValueError, IndexError):
        return _T0


_PROCESS_START = _process_start()

import ctypes  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from typing import IO, Any  # noqa: E402

from flashtui.core.protocol import (  # noqa: E402
    REQUEST, Cancel, Capacity, CapacityFinished, CellFinished, CellStarted, Log, Message, Probe,
    ProbeCellFinished, ProbeFinished, Progress, ProtocolError, Request, RequestFailed, RunSweep, Shutdown,
    SweepFinished, SweepStarted, WarmedUp, WarmUp, WorkerReady, decode, encode,
)
from flashtui.core.spec import CellKey, SpecError, SweepSpec  # noqa: E402
from flashtui.errors import EXIT_WORKER_POISONED  # noqa: E402

PR_SET_PDEATHSIG = 1
EXIT_POISONED = EXIT_WORKER_POISONED

class Worker:
    def __init__(self, out: IO[str]) -> None:
        self._probe_matrix: dict | None = None  # the last Probe's matrix (for only_fastest)
        self.out = out
        self.out_lock = threading.Lock()
        self.requests: queue.Queue[Request | None] = queue.Queue()
        self.cancel = threading.Event()
        self.device = None
        self.device_details: dict[str, Any] = {}

    # ------------------------------------------------------------- I/O
    def emit(self, event: Message) -> None:
        line = encode(event)
        with self.out_lock:
            self.out.write(line)
            self.out.flush()

    def log(self, level: str, text: str) -> None:
        self.emit(Log(level=level, text=text))

    def progress(self, text: str) -> None:
        self.emit(Progress(text=text))

    def read_stdin(self) -> None:
        """Reader thread: Cancel acts at once; everything else queues for the main loop."""
        for raw in sys.stdin:
            if not raw.strip():
                continue
            try:
                msg = decode(raw, kinds=(REQUEST,))
            except ProtocolError as exc:
                self.emit(RequestFailed(request="?", reason=str(exc)))
                continue
            if isinstance(msg, Cancel):
                self.cancel.set()
                continue
            if isinstance(msg, Shutdown):
                self.cancel.set()
            self.requests.put(msg)  # type: ignore[arg-type]
        # The client is gone: nothing left to report to, free the GPU now.
        os._exit(0)

    # ------------------------------------------------------------- start-up
    def start(self) -> None:
        """Import torch, create the CUDA context, probe backends: then report ready.

        Each step's cost is reported (``ready_breakdown_s``): start-up is part of the
        user's wait, so it is measured like everything else.
        """
        steps: dict[str, float] = {"interpreter_to_worker": _T0 - _PROCESS_START}
        mark = time.perf_counter()

        def step(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            steps[name] = now - mark
            mark = now

        from flashtui.engine import hostload

        hostload.start_reader()  # the first cell's host-load verdict needs earlier readings
        import torch  # noqa: F401

        step("import_torch")
        from flashtui.engine import backends, distributed, provenance

        step("import_engine")
        distributed.pin_device_from_env()  # a rank's context on its own GPU, never on cuda:0
        self.device, self.device_details = provenance.detect_device()
        step("cuda_init" if self.device.kind == "cuda" else "device_detect")
        self.provenance = provenance.collect(self.device, self.device_details)
        step("provenance")
        self.backends = backends.availability(self.device)
        self.cpu_backends = backends.availability(backends.DeviceInfo("cpu", "cpu"))
        step("backend_probe")
        self.emit(WorkerReady(pid=os.getpid(), ready_s=time.perf_counter() - _T0,
                              ready_breakdown_s=steps, provenance=self.provenance,
                              backends=self.backends, cpu_backends=self.cpu_backends))

    def device_for(self, spec: SweepSpec):
        from flashtui.engine.backends import DeviceInfo

        if spec.device == "cuda":
            if self.device is None or self.device.kind != "cuda":
                reason = self.device_details.get("cuda_unavailable_reason", "no CUDA device")
                raise SpecError(f"--device cuda but {reason}; use --device cpu")
            return self.device
        from flashtui.engine.provenance import _cpu_name

        return DeviceInfo("cpu", _cpu_name())

    # ------------------------------------------------------------- requests
    def serve(self) -> None:
        threading.Thread(target=self.read_stdin, daemon=True, name="stdin").start()
        while True:
            msg = self.requests.get()
            if msg is None or isinstance(msg, Shutdown):
                return
            handler = self.handlers.get(type(msg))
            if handler is None:
                self.emit(RequestFailed(request=msg.type, reason=f"unsupported request {msg.type}"))
                continue
            try:
                handler(msg)
            except SpecError as exc:
                self.emit(RequestFailed(request=msg.type, reason=str(exc)))
            except Exception as exc:  # noqa: BLE001 - report, keep serving
                self.log("error", traceback.format_exc())
                self.emit(RequestFailed(request=msg.type, reason=f"{type(exc).__name__}: {exc}"))

    @property
    def handlers(self) -> dict[type[Request], Any]:
        """The requests this worker serves (Inject is for tests and refused here)."""
        return {RunSweep: self.on_run_sweep, Probe: self.on_probe, Capacity: self.on_capacity,
                WarmUp: self.on_warm_up}

    def on_warm_up(self, msg: WarmUp) -> None:
        """The one-time costs a runner pays before its first cell, paid now; the profiler's
        too (model mode needs it, and the user's time on Setup is idle anyway)."""
        from flashtui.engine.phases import pay_start_up

        self.emit(WarmedUp(seconds=round(pay_start_up(self.device.kind, self.progress, self.log,
                                                      profiler=True), 4)))

    def on_run_sweep(self, msg: RunSweep) -> None:
        spec = SweepSpec.from_dict(msg.spec)
        cells: list[CellKey] = list(msg.cells)
        device = self.device_for(spec)
        self.cancel.clear()
        if msg.distributed is not None:  # one rank under torchrun: its share, then the hand-over
            from flashtui.core.distributed import RankInfo
            from flashtui.engine.distributed import run_sweep

            return run_sweep(self, spec, cells, device, RankInfo.from_request(msg.distributed))
        runner = self._runner(spec, device)
        from flashtui.engine.memory import is_poisoned
        self.emit(SweepStarted(n_cells=len(cells)))
        cancelled = False
        try:
            # Once-per-worker costs before the first CellStarted: the client's watchdog
            # times cells, and a fresh worker's first cell must not pay for its start-up.
            runner.pay_start_up()
            for index, key in enumerate(cells):
                if self.cancel.is_set():
                    cancelled = True
                    break
                self.emit(CellStarted(index=index, backend=key.backend, seq=key.seq, dtype=key.dtype))
                cell = runner.run_cell(key)
                self.emit(CellFinished(index=index, cell=cell.to_dict()))
                if cell.status == "failed" and is_poisoned(cell.reason):
                    # A sticky CUDA error leaves this process's context unusable: every
                    # later call would fail too. Exit; the client restarts a fresh worker.
                    self.log("error", f"CUDA context poisoned ({cell.reason}); worker exiting")
                    os._exit(EXIT_POISONED)
        finally:
            runner.release()
        self.emit(SweepFinished(cancelled=cancelled or self.cancel.is_set() and index < len(cells) - 1))

    def _runner(self, spec: SweepSpec, device):
        common = dict(log=self.log, progress=self.progress, should_stop=self.cancel.is_set)
        if spec.mode == "kernel":
            from flashtui.engine.kernel import KernelRunner

            return KernelRunner(spec, device, **common)
        from flashtui.engine.models import ModelRunner  # transformers is paid for only here

        return ModelRunner(spec, device, **common)

    def on_probe(self, msg: Probe) -> None:
        from flashtui.engine.capability import probe

        self.cancel.clear()
        if msg.only_fastest:
            from flashtui.engine.capability import probe_fastest

            matrix = self._probe_matrix or {"backends": {}, "cells": []}
            self.emit(ProbeFinished(result={"fastest": probe_fastest(self.device, matrix, self.progress)}))
            return
        result = probe(self.device, self.provenance, self.backends, progress=self.progress,
                       fastest=msg.fastest, full=msg.full,
                       names=tuple(msg.backends) if msg.backends is not None else None,
                       on_cell=lambda cell, index, n_cells: self.emit(
                           ProbeCellFinished(cell=cell, index=index, n_cells=n_cells)))
        self._probe_matrix = result.get("matrix")  # what a later only_fastest Probe times
        if msg.prime_fastest and self._probe_matrix and not self._probe_matrix.get("poisoned"):
            from flashtui.engine.capability import prime_fastest

            result["primed_s"] = prime_fastest(self.device, self._probe_matrix, self.progress)
        self.emit(ProbeFinished(result=result))
        if result.get("matrix", {}).get("poisoned"):
            self.log("error", "CUDA context poisoned during the probe; worker exiting")
            os._exit(EXIT_POISONED)

    def on_capacity(self, msg: Capacity) -> None:
        from flashtui.engine.capability import capacity

        spec = SweepSpec.from_dict(msg.spec)
        device = self.device_for(spec)
        self.cancel.clear()
        result = capacity(spec, device, progress=self.progress, should_stop=self.cancel.is_set)
        self.emit(CapacityFinished(result=result))


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        if os.getppid() == 1:  # parent died before prctl took effect
            os._exit(0)


def main() -> int:
    _die_with_parent()
    signal.signal(signal.SIGHUP, lambda *_: os._exit(0))
    # Keep fd 1 for the protocol; route every other write to stdout onto stderr.
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = Worker(protocol_out)
    try:
        worker.start()
    except Exception as exc:  # noqa: BLE001 - report why we could not start, then exit
        traceback.print_exc()
        print(f"worker failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    worker.serve()
    # Shut down: nothing is left to write (results went out as events, the client keeps the
    # session). Skip the interpreter's teardown of torch, inductor and the CuTe DSL (1.3-1.5 s
    # on the H200, all of it inside every `flashtui bench` wall); the OS frees the GPU context.
    protocol_out.flush()
    sys.stderr.flush()
    os._exit(0)
