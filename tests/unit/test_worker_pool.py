"""The worker pool's pure parts and its merge order (tests/faults/test_worker_pool.py runs real workers)."""

from __future__ import annotations

import pytest

from flashtui.client.worker_pool import WorkerPool, parse_gpus, plan_slots, resolve_gpus, work_units
from flashtui.core import protocol as proto
from flashtui.core.spec import CellKey, SpecError, SweepSpec
from flashtui.testing.scripted import ScriptedClient, ready_data


def _ready(**provenance) -> proto.WorkerReady:
    data = ready_data()
    data["provenance"] = {**data["provenance"], **provenance}
    return proto.WorkerReady(**data)


def test_gpus_parse_all_or_a_list():
    assert parse_gpus("all") is None and parse_gpus(" ALL ") is None
    assert parse_gpus("1, 0") == (1, 0)
    for text, needle in (("", "got ''"), ("-1", ">= 0"), ("1,1", "twice"), ("0;1", "got '0;1'")):
        with pytest.raises(SpecError, match=needle):
            parse_gpus(text)


def test_gpus_checked_against_the_workers_gpu_count():
    one = _ready(device_kind="cuda", device_count=1)
    assert resolve_gpus(None, one) == [0]
    assert resolve_gpus((0,), one) == [0]
    with pytest.raises(SpecError, match=r"^--gpus 7: there is no GPU 7; this machine has 1 GPU \(index 0\)$"):
        resolve_gpus((7,), one)
    eight = _ready(device_kind="cuda", device_count=8)
    assert resolve_gpus(None, eight) == list(range(8))
    with pytest.raises(SpecError, match=r"this machine has 8 GPUs \(indices 0-7\)"):
        resolve_gpus((3, 8), eight)
    with pytest.raises(SpecError, match=r"^--gpus: there is no GPU here \(no CUDA here\)"):
        resolve_gpus(None, _ready(device_kind="cpu", cuda_unavailable_reason="no CUDA here"))


def test_slots_pin_each_gpu_and_follow_an_existing_visible_list():
    slots = plan_slots([0, 1], 1)
    assert [(s.device_index, s.env) for s in slots] == [(0, {"CUDA_VISIBLE_DEVICES": "0"}),
                                                      (1, {"CUDA_VISIBLE_DEVICES": "1"})]
    # Under CUDA_VISIBLE_DEVICES=4,6 this process's GPU 1 is the machine's GPU 6.
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in plan_slots([1], 2, "4,6")] == ["6", "6"]
    cpu = plan_slots(None, 3)
    assert [(s.device_index, s.env, s.label) for s in cpu] == [(None, {}, "cpu")] * 3
    assert [s.device_index for s in plan_slots(None, 2, default_index=0)] == [0, 0]


def test_units_are_the_plans_shape_groups_or_single_cells_when_too_few():
    spec = SweepSpec(device="cpu", seqs=(32, 64), dtypes=("fp32",), backends=("standard", "sdpa-math"))
    plan = spec.cells()
    assert work_units(plan, 2) == [plan[:2], plan[2:]]
    assert work_units(plan, 3) == [[k] for k in plan]


def test_cells_finished_out_of_order_are_handed_on_in_plan_order_and_tagged():
    """A slow and a fast scripted worker: the fast one finishes later groups first."""
    spec = SweepSpec(device="cpu", seqs=(32, 48, 64, 80), dtypes=("fp32",), backends=("standard", "sdpa-math"))
    slow, fast = ScriptedClient(cell_delay_s=0.15), ScriptedClient()
    pool = WorkerPool([slow, fast], plan_slots(None, 2))
    pool.start()
    events = list(pool.run_sweep(spec))
    finished = [e for e in events if isinstance(e, proto.CellFinished)]
    assert [e.key for e in finished] == spec.cells(), [e.key.label() for e in finished]
    assert [e.index for e in finished] == list(range(8))
    assert isinstance(events[0], proto.SweepStarted) and events[0].n_cells == 8
    assert events[-1] == proto.SweepFinished(cancelled=False)
    started = [e for e in events if isinstance(e, proto.CellStarted)]
    assert sorted(e.index for e in started) == list(range(8))
    assert all(spec.cells()[e.index] == e.key for e in started)
    # The fast worker took more than its half; both took some; every cell says which.
    counts = {w["cells"] for w in pool.summary()}
    assert sum(counts) == 8 and min(counts) >= 1
    assert all(e.cell["extra"]["shared_device"] is True and e.cell["noisy"] is True for e in finished)


def test_recorder_takes_each_cells_telemetry_from_its_own_gpus_sampler():
    from flashtui.client.recorder import SweepRecorder
    from flashtui.testing.scripted import RecordedSampler, fake_cell

    class NamedSampler(RecordedSampler):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def window(self, t0_s, t1_s, clock="monotonic"):
            return {**super().window(t0_s, t1_s, clock), "sampler": self.name}

    ready = _ready(device_kind="cuda", device_count=2)
    spec = SweepSpec(device="cuda", seqs=(64,), dtypes=("bf16",), backends=("standard",))
    recorder = SweepRecorder.begin(spec, ready, journal=False)
    gpu0, gpu1 = NamedSampler("gpu0"), NamedSampler("gpu1")
    recorder.sampler, recorder.device_samplers = gpu0, {0: gpu0, 1: gpu1}
    for index in (1, 0):
        cell = fake_cell(CellKey("standard", 64, "bf16"))
        cell["extra"] = {"device_index": index, "t_start_wall_s": 100.0, "t_end_wall_s": 100.5}
        recorded = recorder.handle(proto.CellFinished(index=0, cell=cell))
        assert recorded.telemetry["sampler"] == f"gpu{index}"
    recorder.close("complete")
    attachments = recorder.session.attachments
    assert attachments["nvml"]["device_index"] == 0
    assert list(attachments["nvml_by_device"]) == ["1"] and attachments["nvml_by_device"]["1"]["device_index"] == 1
    assert gpu0.stopped and gpu1.stopped
    # Without per-GPU samplers (the TUI's one sampler on its worker's GPU 0), a GPU 1 cell gets none.
    lone = SweepRecorder.begin(spec, ready, journal=False, sampler=NamedSampler("gpu0"))
    cell = fake_cell(CellKey("standard", 64, "bf16"))
    cell["extra"] = {"device_index": 1, "t_start_wall_s": 100.0, "t_end_wall_s": 100.5}
    assert lone.handle(proto.CellFinished(index=0, cell=cell)).telemetry is None
