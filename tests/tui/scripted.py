"""A deterministic stand-in for WorkerClient (same interface), for snapshots and benchmarks.

Pilot tests of behaviour use the real worker; snapshots need identical pixels every run,
so they replay fixed events shaped exactly like the real worker's (see test_app_sweep).
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
# What the real CPU worker answered to Probe once (2-core AMD EPYC, torch 2.13 CPU).
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

    def run_sweep(self, spec: SweepSpec, cells: list[CellKey] | None = None) -> Iterator[proto.Event]:
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
