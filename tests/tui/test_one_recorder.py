"""One recorder behind both front ends: `flashtui bench` and the TUI record a sweep alike.

1. One recorded event stream (a real H200 sweep with a worker death in it) through
   bench's whole `run` and through the real app (Pilot): the same session JSON, ids and
   timestamps aside; both journals load to that session too.
2. A real CPU worker, one spec, through the `flashtui bench` command and through the
   app: the sessions have the same fields, at every level.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

from flashtui.client import recorder as recorder_module
from flashtui.commands import bench
from flashtui.core.spec import SweepSpec
from flashtui.store.index import load
from flashtui.testing import NoSampler, wait_for
from flashtui.testing.scripted import RecordedSampler, ReplayClient, bench_args, load_recording, recorded_spec
from flashtui.tui import messages as m
from flashtui.tui.app import FlashTuiApp

# Values that differ between two recordings of the same events.
VOLATILE_TOP = ("id", "created_at", "finished_at")
VOLATILE_SAMPLE = ("t_s", "wall_time")


def comparable(session: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(session)
    for key in VOLATILE_TOP:
        assert data.pop(key), key  # present, and set
    # Where the time went: both record it, its seconds are this run's own.
    assert {"worker_start", "wall"} <= set(data["worker"].pop("phases_s"))
    # The worker's log is kept by both, under each session's own name.
    assert data.get("attachments", {}).pop("worker_log")["path"].endswith(".worker.log")
    for sample in data.get("attachments", {}).get("nvml", {}).get("samples", []):
        for key in VOLATILE_SAMPLE:
            sample.pop(key)
    return data


async def run_in_app(spec: SweepSpec, worker_factory: Any, sampler_factory: Any) -> Any:
    seen: list[Any] = []
    app = FlashTuiApp(worker_factory=worker_factory, sampler_factory=sampler_factory)
    async with app.run_test(size=(160, 50), message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 90, "WorkerReady")
        assert await app.start_sweep(spec)
        await wait_for(pilot, lambda: any(isinstance(x, m.SweepFinished) for x in seen), 120, "SweepFinished")
        await wait_for(pilot, lambda: app.sweep.recorder.closed, 10, "the recorder closed")
        return app.sweep.session


async def test_one_recorded_stream_gives_the_same_session_through_bench_and_the_tui(
        isolated_dirs, monkeypatch, capsys):
    head, ready, events = load_recording()
    assert ready.device_kind == "cuda"  # so the NVML telemetry path is in play
    out = isolated_dirs / "bench.json"

    # bench: its whole `run`, the worker client and NVML sampler replaced by the recording.
    monkeypatch.setattr(bench, "WorkerClient", ReplayClient)
    monkeypatch.setattr(recorder_module, "NvmlSampler", RecordedSampler)
    args = bench_args([*head["bench_args"], "--quiet", "--out", str(out)])
    assert bench.run(args) == 1  # a cell failed: the killed one
    assert "sdpa-math" in capsys.readouterr().out
    from_bench = json.loads(out.read_text())

    # The TUI: the real app, the same recording behind its bridge.
    spec = recorded_spec(head)
    session = await run_in_app(spec, ReplayClient, RecordedSampler)
    from_tui = session.to_dict()

    assert comparable(from_tui) == comparable(from_bench)
    # What the issue found missing or different in the TUI's sessions:
    worker = from_tui["worker"]
    assert worker["ready_s"] == ready.ready_s and worker["ready_wall_s"] == head["ready_wall_s"]
    assert worker["pid"] == ready.pid and worker["restarts"] == 1 and worker["crashes"] == 1
    assert from_tui["attachments"]["nvml"]["samples"] and from_tui["attachments"]["nvml"]["rate_hz"] == 10.0
    ok = [c for c in from_tui["cells"] if c["status"] == "ok"]
    assert len(ok) == 5 and all(c["telemetry"]["n_samples"] == 3 for c in ok)
    failed = [c for c in from_tui["cells"] if c["status"] == "failed"]
    assert len(failed) == 1 and "SIGKILL" in failed[0]["reason"] and failed[0]["telemetry"] is None
    assert from_tui["status"] == "complete"
    # Both journals hold that same session.
    for data in (from_bench, from_tui):
        stored, warnings = load(data["id"])
        assert warnings == [] and comparable(stored.to_dict()) == comparable(from_bench)


def fields(value: Any) -> Any:
    """The shape of a JSON value: dict keys (recursively), the union over list items."""
    if isinstance(value, dict):
        return {key: fields(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes = [fields(item) for item in value if isinstance(item, (dict, list))]
        merged: dict[str, Any] = {}
        for shape in shapes:
            if isinstance(shape, dict):
                merged.update(shape)
        return [merged] if merged else []
    return None


async def test_a_tui_and_a_bench_session_of_one_spec_have_the_same_fields(isolated_dirs):
    argv = ["--device", "cpu", "--seq", "32", "--dtype", "fp32", "--backends", "standard,sdpa-flash",
            "--heads", "2", "--head-dim", "32", "--reps", "3", "--warmup-ms", "0"]
    run = subprocess.run([sys.executable, "-m", "flashtui", "bench", *argv, "--quiet", "--json"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    from_bench = json.loads(run.stdout)

    spec = bench.spec_from_args(bench_args(argv), cuda_present=False)
    from flashtui.tui.app import default_worker_factory

    from_tui = (await run_in_app(spec, default_worker_factory, NoSampler)).to_dict()
    assert from_tui["spec"] == from_bench["spec"]
    assert fields(from_tui) == fields(from_bench)
    assert set(from_tui["worker"]) >= {"ready_s", "ready_wall_s", "ready_breakdown_s", "pid", "restarts", "crashes"}
