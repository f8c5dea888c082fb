"""The TUI's controllers, driven without Textual: a recorded sweep, py-spy record, the doctor."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from flashtui.core import protocol as proto
from flashtui.core.spec import CellKey
from flashtui.store.index import load
from flashtui.testing.scripted import PROBE_RESULT_PATH, load_recording, recorded_spec
from flashtui.tui.controllers import DoctorController, PySpyController, SweepController


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_controllers_load_no_textual():
    code = "import sys, flashtui.tui.controllers; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.replace("'", '"'))
    assert "textual" not in loaded and "rich" not in loaded and "torch" not in loaded


def test_a_sweep_through_the_controller_records_logs_and_journals(data_dir):
    head, ready, events = load_recording()
    clock = Clock()
    sweep = SweepController(clock=clock)
    assert "still starting" in sweep.refusal(has_worker=True, busy_with=None).text
    sweep.worker_ready(ready)
    assert sweep.refusal(has_worker=True, busy_with=None) is None
    assert "probe is running" in sweep.refusal(has_worker=True, busy_with="probe").text
    assert "already running" in sweep.refusal(has_worker=True, busy_with="sweep").text
    assert "no worker" in sweep.refusal(has_worker=False, busy_with=None).text

    spec = recorded_spec(head)
    view = sweep.start(spec, ready_wall_s=head["ready_wall_s"])
    assert view.logs == [("info", "▶ sweep: 2 seqs × 1 dtypes")] and sweep.running
    logs, notes, nows = [], [], []
    for event in events:
        clock.now_s += 1.0
        if isinstance(event, proto.SweepStarted):
            sweep.sweep_started(event)
            continue
        if isinstance(event, proto.CellStarted):
            view = sweep.cell_started(event)
        elif isinstance(event, proto.CellFinished):
            cell, view = sweep.cell_finished(event)
            assert cell is not None and cell.key == event.key
        elif isinstance(event, proto.WorkerDied):
            view = sweep.worker_died(event)
        elif isinstance(event, proto.WorkerRestarted):
            view = sweep.worker_restarted(event)
        elif isinstance(event, proto.SweepFinished):
            view = sweep.sweep_finished(event)
        else:
            continue
        logs += view.logs
        notes += view.notes
        nows += [view.now] if view.now else []
    assert not sweep.running and sweep.done == 6 and sweep.total == 6
    assert nows[0] == "running standard seq=128 bf16" and nows[-1] == "sweep complete (1 cell failed)"
    assert [level for level, _ in logs].count("error") == 2  # the failed cell, the worker's death
    assert any(text.startswith("sdpa-math seq=256 bf16: ") and "SIGKILL" in text for _, text in logs)
    assert [n.title for n in notes if n.severity == "error"] == ["worker crashed", "cell failed"]
    done, total, text = sweep.progress(final=True)
    assert (done, total) == (6, 6) and text.startswith("6/6 cells")
    # Cell dicts for the tables: cached per cell, speedups attached.
    first = sweep.cell_dicts()
    assert len(first) == 6 and sweep.cell_dicts()[0] is first[0]
    assert first[1]["speedup_vs_standard"] == sweep.session.cells[1].speedup_vs_standard

    sweep.close()
    stored, warnings = load(sweep.session.id)
    assert warnings == [] and stored.status == "complete" and len(stored.cells) == 6
    assert stored.worker["crashes"] == 1 and stored.worker["restarts"] == 1

    # A re-run of one cell goes into the same (finished) session, replacing the cell.
    key = CellKey("sdpa-math", 256, "bf16")
    rerun = [e for e in events if isinstance(e, proto.CellFinished) and e.key == CellKey("sdpa-flash", 256, "bf16")]
    view = sweep.start(spec, [key])
    assert view.logs == [("info", "▶ sweep: sdpa-math seq=256 bf16")] and sweep.total == 1
    fixed = rerun[0].replace(cell={**rerun[0].cell, "backend": "sdpa-math"})
    cell, _ = sweep.cell_finished(fixed)
    sweep.sweep_finished(proto.SweepFinished(cancelled=False))
    sweep.close()
    assert len(sweep.session.cells) == 6 and sweep.session.find(key).status == "ok"
    assert sweep.session.status == "complete"


def test_pyspy_record_state_machine_marks_cells_and_stops_after_n(data_dir):
    head, ready, events = load_recording()
    sweep = SweepController(journal=False)
    sweep.worker_ready(ready)
    pyspy = PySpyController(record_cells=2)
    hint = "py-spy not installed: pip install py-spy"

    step = pyspy.toggle(sweep_running=False, has_session=False, pid=None, pyspy_found=True, install_hint=hint)
    assert not step.start and "start a sweep first" in step.note.text
    sweep.start(recorded_spec(head))
    step = pyspy.toggle(sweep_running=True, has_session=True, pid=42, pyspy_found=False, install_hint=hint)
    assert not step.start and step.note.text == hint
    assert pyspy.sampling_wanted(visible=True, sweep_running=True)
    step = pyspy.toggle(sweep_running=True, has_session=True, pid=42, pyspy_found=True, install_hint=hint)
    assert step.start and step.pid == 42

    assert pyspy.starting(42) == "● starting py-spy record on pid 42…"
    sweep.mark_pyspy(pyspy.marking)
    assert not pyspy.sampling_wanted(visible=True, sweep_running=True)  # two tracers cannot attach
    assert "a moment" in pyspy.toggle(sweep_running=True, has_session=True, pid=42, pyspy_found=True,
                                      install_hint=hint).note.text
    line, view = pyspy.started("/tmp/p.speedscope.json", recording="handle")
    assert "stops after 2 cells" in line and view.logs[0][0] == "info"
    finished = [e for e in events if isinstance(e, proto.CellFinished)]
    stops = []
    for event in finished[:2]:
        cell, _ = sweep.cell_finished(event)
        assert cell.extra["timed_under_pyspy_record"] is True
        stops.append(pyspy.cell_recorded(cell))
    assert stops == [None, "after 2 cells"]
    recording, details = pyspy.stop(stops[-1])
    assert recording == "handle" and pyspy.state == "stopping"
    assert details["pid"] == 42 and details["stopped"] == "after 2 cells" and details["started_at"]
    assert details["cells"] == ["standard seq=128 bf16", "sdpa-math seq=128 bf16"]
    pyspy.close_after = True
    assert not pyspy.take_close_after(sweep_running=False)  # still writing the profile
    text, view = pyspy.stopped("/tmp/p.speedscope.json", {"n_samples": 7}, details)
    sweep.mark_pyspy(pyspy.marking)
    assert "7 samples, 2 cells" in text and view.notes[0].title == "py-spy"
    assert pyspy.take_close_after(sweep_running=False) and not pyspy.take_close_after(sweep_running=False)
    cell, _ = sweep.cell_finished(finished[2])
    assert "timed_under_pyspy_record" not in cell.extra
    attachment = sweep.recorder.attach_profile("/tmp/p.speedscope.json", summary={"n_samples": 7}, **details)
    assert attachment["format"] == "speedscope" and attachment["n_samples"] == 7 and "summary" not in attachment


def test_doctor_controller_refuses_while_busy_and_builds_the_report():
    _, ready, _ = load_recording()
    clock = Clock()
    doctor = DoctorController(pyspy_state=lambda: {"available": False, "path": None, "reason": "no py-spy"},
                              clock=clock)
    status, note = doctor.refusal(has_worker=False, sweep_running=False, busy_with=None)
    assert "no worker" in status and note is None
    status, note = doctor.refusal(has_worker=True, sweep_running=True, busy_with=None)
    assert status == "probe not run: a sweep is running (r when it is done)" and note.severity == "warning"
    assert doctor.refusal(has_worker=True, sweep_running=False, busy_with=None) is None
    assert doctor.probe_started() == "probing: starting…"
    assert doctor.refusal(has_worker=True, sweep_running=False, busy_with="probe")[1].text == \
        "the probe is already running"
    clock.now_s += 5
    assert doctor.probe_progress("probing fa2").startswith("probing: probing fa2 (")
    doctor.nvml_probed({"available": False, "reason": "no driver (test)"})
    result = json.loads(PROBE_RESULT_PATH.read_text())
    status = doctor.probe_finished(proto.ProbeFinished(result=result), ready, 12.0)
    assert status.startswith("probe finished in") and not doctor.probe_running
    assert doctor.report["matrix"] and doctor.report["pyspy"]["reason"] == "no py-spy"
    assert doctor.ready is ready and doctor.preview()["nvml"]["reason"] == "no driver (test)"
    status, note = doctor.probe_failed("the worker died")
    assert "r tries again" in status and note.title == "doctor"


def test_doctor_controller_caches_a_probe_and_answers_the_next_first_visit_from_it(monkeypatch):
    """A real DoctorCache under the test's FLASHTUI_CACHE_DIR: probe -> stored; a fresh
    controller answers from it; a changed fingerprint probes again and says what changed."""
    from flashtui.client import environment
    from flashtui.client.doctor_cache import DoctorCache

    _, ready, _ = load_recording()
    result = json.loads(PROBE_RESULT_PATH.read_text())
    no_pyspy = lambda: {"available": False, "path": None, "reason": "no py-spy"}  # noqa: E731
    wall = [1_000_000.0]
    first = DoctorController(pyspy_state=no_pyspy, cache=DoctorCache(), wall_clock=lambda: wall[0])
    assert first.answer_from_cache(first.lookup_cache()) is None  # nothing cached yet
    first.probe_started()
    cells = result["matrix"]["cells"]
    first.ready = ready
    progress, matrix = first.probe_cell(proto.ProbeCellFinished(cell=cells[0], index=0, n_cells=len(cells)))
    assert progress == f"1/{len(cells)} cells probed" and matrix["cells"] == [cells[0]]
    assert list(matrix["backends"])[:len(ready.backends)] == list(ready.backends)
    first.probe_finished(proto.ProbeFinished(result=result), ready, 3.0)
    assert first.report["cached"] is False and first.cells == []

    second = DoctorController(pyspy_state=no_pyspy, cache=DoctorCache())
    lookup = second.lookup_cache()
    assert lookup.entry["probed_at_unix"] == 1_000_000.0
    status = second.answer_from_cache(lookup)
    assert status.startswith("cached ") and status.endswith(" ago, r probes again")
    assert second.report["cached"] is True and second.report["matrix"] == first.report["matrix"]

    real_versions = environment.package_versions
    monkeypatch.setattr(environment, "package_versions",
                        lambda: {**real_versions(), "flash_attn": "9.9.9"})
    third = DoctorController(pyspy_state=no_pyspy, cache=DoctorCache())
    assert third.answer_from_cache(third.lookup_cache()) is None
    third.probe_started()
    status = third.probe_finished(proto.ProbeFinished(result=result), ready, 3.0)
    assert "the environment changed since the cached answer (flash_attn absent -> 9.9.9)" in status
