"""A deterministic stand-in for WorkerClient (same interface), for snapshots and benchmarks.

Pilot tests of behaviour use the real worker; snapshots need identical pixels every run,
so they replay fixed events shaped exactly like the real worker's (see tests/tui/test_app_sweep.py).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from flashtui.core import protocol as proto
from flashtui.core.spec import BACKENDS, CellKey, SweepSpec

CPU_ONLY = ("standard", "sdpa", "sdpa-math", "sdpa-flash")
# What the real CPU worker answered to Probe once (2-core AMD EPYC, torch 2.13 CPU); package data.
PROBE_RESULT_PATH = Path(__file__).with_name("probe_cpu.json")


def ready_data(pid: int = 4242) -> dict[str, Any]:
    backends = {
        name: {"available": name in CPU_ONLY,
               "reason": None if name in CPU_ONLY else f"{name} runs on CUDA GPUs only (this run is on cpu)"}
        for name in BACKENDS
    }
    return {"pid": pid, "ready_s": 1.0, "backends": backends, "cpu_backends": backends,
            "provenance": {"device_kind": "cpu", "device_name": "Test CPU", "torch": "2.13.0+cpu"}}


def fake_cell(key: CellKey) -> dict[str, Any]:
    """Plausible, fixed numbers: standard is slowest and materializes S x S."""
    factor = {"standard": 1.0, "sdpa": 0.3, "sdpa-math": 0.9, "sdpa-flash": 0.3}.get(key.backend, 0.5)
    median_ms = round(0.001 * key.seq * factor, 6)
    theory = key.seq * key.seq * 4 * 4 * (1 if key.backend != "sdpa-flash" else 0.2)
    rel = 1.8e-7 * (1.0 if key.backend == "standard" else 1.05)
    return {
        "backend": key.backend, "seq": key.seq, "dtype": key.dtype, "status": "ok", "reason": None,
        "median_ms": median_ms, "iqr_ms": median_ms * 0.05, "min_ms": median_ms * 0.9, "reps": 3,
        "tflops": 4.0 * 4 * key.seq * key.seq * 64 / 2 / (median_ms * 1e-3) / 1e12,
        "peak_alloc_bytes": None, "theory_bytes": int(theory),
        "parity": {"reference": "fp64", "max_abs": 5e-7, "mean_abs": 4e-8, "rel_l2": rel,
                   "standard_rel_l2": 1.8e-7, "ratio_vs_standard": rel / 1.8e-7, "passed": True},
        "duration_s": 0.1, "extra": {},
    }


class ScriptedClient:
    """Answers start/run_sweep/cancel/restart/close like WorkerClient, instantly."""

    def __init__(self, cell_delay_s: float = 0.0) -> None:
        self.cell_delay_s = cell_delay_s
        self.restarts = 0
        self.ready_wall_s: float | None = None
        self.pid: int | None = None
        self.log_path = tempfile.NamedTemporaryFile(prefix="flashtui-fake-", suffix=".log", delete=False).name
        self._cancel = False

    def start(self) -> proto.WorkerReady:
        self.pid = 4242
        self.ready_wall_s = 1.25
        return proto.WorkerReady(**ready_data(self.pid))

    def restart(self) -> proto.WorkerReady:
        self.restarts += 1
        return self.start()

    def cancel(self) -> None:
        self._cancel = True

    def close(self, timeout_s: float = 0.0) -> None:
        self.pid = None

    def request(self, request: proto.Request, reply: type[Any], *, timeout_s: float = 600.0,
                on_event: Callable[[proto.Event], None] | None = None) -> Any:
        """Probe only: the recorded CPU answer (deterministic for snapshots)."""
        if not isinstance(request, proto.Probe):
            raise RuntimeError(f"the scripted client does not answer {request.type}")
        return proto.ProbeFinished(result=json.loads(PROBE_RESULT_PATH.read_text()))

    def run_sweep(self, spec: SweepSpec, cells: list[CellKey] | None = None,
                  **_options: Any) -> Iterator[proto.Event]:
        """``_options``: WorkerClient's (restart_on_death); nothing here dies."""
        self._cancel = False
        plan = list(cells) if cells is not None else spec.cells(CPU_ONLY)
        yield proto.SweepStarted(n_cells=len(plan))
        for index, key in enumerate(plan):
            if self._cancel:
                break
            yield proto.CellStarted(index=index, backend=key.backend, seq=key.seq, dtype=key.dtype)
            if self.cell_delay_s:
                time.sleep(self.cell_delay_s)
            yield proto.CellFinished(index=index, cell=fake_cell(key))
        yield proto.SweepFinished(cancelled=self._cancel)


# A real sweep's client events, recorded on an H200 (tests/tui/record_sweep.py says how): six
# bf16 cells, the worker SIGKILLed during sdpa-math seq=256 and restarted.
SWEEP_H200_PATH = Path(__file__).with_name("sweep_h200.jsonl")


def load_recording(path: Path = SWEEP_H200_PATH) -> tuple[dict[str, Any], proto.WorkerReady, list[proto.Event]]:
    """(how it was recorded, its WorkerReady, the events run_sweep yielded)."""
    lines = path.read_text().splitlines()
    head = json.loads(lines[0])
    events = [proto.decode(line, kinds=(proto.EVENT, proto.CLIENT)) for line in lines[1:]]
    ready = events.pop(0)
    assert isinstance(ready, proto.WorkerReady)
    return head, ready, events  # type: ignore[return-value]


def bench_args(argv: list[str]) -> Any:
    """``flashtui bench`` flags parsed as the CLI does (an argparse Namespace)."""
    import argparse

    from flashtui.commands import bench

    parser = argparse.ArgumentParser(prog="flashtui")
    bench.register(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


def recorded_spec(head: dict[str, Any]) -> SweepSpec:
    """The SweepSpec a recording was made with (its bench flags on its GPU worker)."""
    from flashtui.commands import bench

    return bench.spec_from_args(bench_args(head["bench_args"]), cuda_present=True)


class ReplayClient(ScriptedClient):
    """WorkerClient's interface over a recorded stream: its WorkerReady, then its events.

    Takes (and ignores) WorkerClient's keyword arguments, so `flashtui bench` can build it.
    """

    def __init__(self, path: Path = SWEEP_H200_PATH, **_worker_client_kwargs: Any) -> None:
        super().__init__()
        self.head, self.ready, self.events = load_recording(path)

    def start(self) -> proto.WorkerReady:
        if self.pid is None:
            self.pid = self.ready.pid
            self.ready_wall_s = self.head["ready_wall_s"]
        return self.ready

    def kill(self) -> None:
        self.pid = None

    def run_sweep(self, spec: SweepSpec, cells: list[CellKey] | None = None) -> Iterator[proto.Event]:
        self.start()
        for event in self.events:
            if isinstance(event, proto.WorkerRestarted):
                self.pid, self.restarts = event.pid, event.restarts
            yield event


class RecordedSampler:
    """NvmlSampler's interface with fixed readings, so two runs attach the same telemetry.

    ``samples()`` are twelve readings after ``since_s`` (only their times differ between
    runs); ``window()`` summarizes from the cell's own (recorded) times.
    """

    N_SAMPLES = 12

    def __init__(self, ready: Any = None, *, rate_hz: float = 10.0, **_hints: Any) -> None:
        self.rate_hz = rate_hz
        self.pids: list[int | None] = []
        self.started_s: float | None = None
        self.stopped = False

    class _Status:
        available = True
        reason = None

        def to_dict(self) -> dict[str, Any]:
            return {"available": True, "reason": None}

    status = _Status()

    def on_sample(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None

    def watch_pid(self, pid: int | None) -> None:
        self.pids.append(pid)

    def start(self) -> Any:
        self.started_s = time.monotonic()
        return self.status

    def stop(self) -> None:
        self.stopped = True

    def samples(self, since_s: float | None = None) -> list[Any]:
        from flashtui.monitor.nvml import Sample

        base_s = since_s if since_s is not None else (self.started_s or 0.0)
        return [Sample(t_s=base_s + (i + 1) / self.rate_hz, wall_time=time.time(), gpu_index=0,
                       mem_used_bytes=(10 + i) << 30, mem_total_bytes=141 << 30, power_w=300.0 + i,
                       sm_clock_mhz=1980.0, temp_c=40.0 + i / 2) for i in range(self.N_SAMPLES)]

    def window(self, t0_s: float, t1_s: float, clock: str = "monotonic") -> dict[str, Any]:
        return {"clock": clock, "span_s": round(t1_s - t0_s, 6), "n_samples": 3,
                "sm_clock_mhz": {"min": 1980.0, "median": 1980.0, "max": 1980.0}}

    def stats(self) -> dict[str, Any]:
        return {"n_samples": self.N_SAMPLES, "rate_hz": self.rate_hz, "status": self.status.to_dict()}
