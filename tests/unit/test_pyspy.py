"""py-spy driver against the real py-spy: dumps, hot frames, recorded profiles, hints.

Children spin in functions with distinctive names so the assertions prove py-spy
really read *their* stacks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from flashtui.monitor import nvml as mnvml
from flashtui.monitor import pyspy
from flashtui.monitor.pyspy import PySpyError, PySpyUnavailable, SpeedscopeError

REPO_ROOT = Path(__file__).resolve().parents[2]

PYSPY = pyspy.find_pyspy()
needs_pyspy = pytest.mark.skipif(PYSPY is None, reason="py-spy not installed (pip install py-spy)")

# A child with one busy thread (the hot loop) and one idle thread (blocked in sleep).
SPINNER = textwrap.dedent("""
    import sys, threading, time

    def flashtui_test_idle_waiter():
        while True:
            time.sleep(30)  # awake so rarely that no dump catches it running

    def flashtui_test_hot_loop(seconds):
        end = time.monotonic() + seconds
        x = 0
        while time.monotonic() < end:
            x += 1
        return x

    threading.Thread(target=flashtui_test_idle_waiter, daemon=True).start()
    print("ready", flush=True)
    flashtui_test_hot_loop(float(sys.argv[1]))
""")


@pytest.fixture
def spinner(tmp_path):
    """A running Python child spinning in flashtui_test_hot_loop for up to 20 s."""
    script = tmp_path / "spinner.py"
    script.write_text(SPINNER)
    proc = subprocess.Popen([sys.executable, str(script), "20"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.1)  # let it enter the loop
    yield proc
    proc.kill()
    proc.wait()


# ------------------------------------------------------------------- finding it
@needs_pyspy
def test_find_pyspy_returns_an_executable():
    assert os.path.isfile(PYSPY) and os.access(PYSPY, os.X_OK)
    out = subprocess.run([PYSPY, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("py-spy ")


def test_missing_pyspy_gives_install_hint_not_a_crash(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python"))  # nothing beside it either
    assert pyspy.find_pyspy() is None
    for call in (
        lambda: pyspy.dump(os.getpid()),
        lambda: pyspy.hottest_frames(os.getpid(), samples=1),
        lambda: pyspy.record_command(tmp_path / "p.json"),
        lambda: pyspy.record_pid(os.getpid(), tmp_path / "p.json"),
    ):
        with pytest.raises(PySpyUnavailable) as info:
            call()
        assert str(info.value) == "py-spy not installed: pip install py-spy"


def test_explicit_missing_executable_gives_install_hint(tmp_path):
    with pytest.raises(PySpyUnavailable, match="pip install py-spy"):
        pyspy.dump(os.getpid(), exe=str(tmp_path / "no-such-py-spy"))


def test_import_stays_light_in_fresh_interpreter():
    code = (
        "import sys, flashtui.monitor.pyspy;"
        "print(','.join(m for m in ('torch', 'textual', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == ""


# ------------------------------------------------------------------------- dump
@needs_pyspy
def test_dump_sees_the_hot_function_and_the_idle_thread(spinner):
    # On a loaded 2-core box one dump can catch the spinner descheduled (not "active"):
    # a few dumps give it the chance to be seen running.
    for _ in range(5):
        threads = pyspy.dump(spinner.pid)
        assert len(threads) == 2
        by_leaf = {t.frames[0].name: t for t in threads}
        hot = by_leaf["flashtui_test_hot_loop"]
        if hot.active:
            break
    assert hot.active and hot.thread_name == "MainThread"
    assert hot.frames[0].short_filename == "spinner.py"
    assert isinstance(hot.frames[0].line, int)
    assert hot.frames[-1].name == "<module>"  # innermost first, module last
    idle = by_leaf["flashtui_test_idle_waiter"]
    assert idle.active is False
    assert hot.to_dict()["frames"][0]["name"] == "flashtui_test_hot_loop"


@needs_pyspy
def test_hottest_frames_ranks_the_busy_function_first(spinner):
    report = pyspy.hottest_frames(spinner.pid, samples=6, interval_s=0.02)
    assert report.n_dumps == 6 and report.stopped_early is None
    # Only active threads are counted: the spinning one in (nearly) every dump; on a
    # loaded box a dump can catch it descheduled, so a majority, not all six.
    assert 4 <= report.n_stacks <= 6
    top = report.frames[0]
    assert top.name == "flashtui_test_hot_loop" and top.self_count == report.n_stacks
    assert report.share(top) >= 0.75
    assert top.line is None and top.location == "spinner.py"  # all lines of the loop merged
    module = next(f for f in report.frames if f.name == "<module>")
    assert module.self_count == 0 and module.total_count == report.n_stacks
    assert all(f.name != "flashtui_test_idle_waiter" for f in report.frames)

    by_line = pyspy.hottest_frames(spinner.pid, samples=6, interval_s=0.02, by="line")
    loop_lines = [f for f in by_line.frames if f.name == "flashtui_test_hot_loop"]
    assert 4 <= sum(f.self_count for f in loop_lines) == by_line.n_stacks
    assert all(f.location == f"spinner.py:{f.line}" for f in loop_lines)
    with pytest.raises(ValueError, match="by must be"):
        pyspy.hottest_frames(spinner.pid, by="module")

    everything = pyspy.hottest_frames(spinner.pid, samples=2, interval_s=0.0, active_only=False)
    assert everything.n_stacks == 4
    assert any(f.name == "flashtui_test_idle_waiter" for f in everything.frames)


@needs_pyspy
def test_nonblocking_dumps_still_find_the_busy_function(spinner):
    # Non-blocking reads never pause the process; a stack may be torn now and then.
    report = pyspy.hottest_frames(spinner.pid, samples=6, interval_s=0.02, nonblocking=True)
    assert report.n_dumps == 6
    assert report.frames[0].name == "flashtui_test_hot_loop" and report.frames[0].self_count >= 4


@needs_pyspy
def test_hottest_frames_returns_partial_result_when_the_process_exits(tmp_path):
    script = tmp_path / "spinner.py"
    script.write_text(SPINNER)
    proc = subprocess.Popen([sys.executable, str(script), "0.6"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        report = pyspy.hottest_frames(proc.pid, samples=200, interval_s=0.05)
    finally:
        proc.kill()
        proc.wait()
    assert 1 <= report.n_dumps < 200
    assert report.stopped_early is not None and str(proc.pid) in report.stopped_early
    assert report.frames[0].name == "flashtui_test_hot_loop"


@needs_pyspy
def test_dump_of_missing_process_is_a_readable_error():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid is free now
    with pytest.raises(PySpyError) as info:
        pyspy.dump(dead.pid)
    assert not isinstance(info.value, PySpyUnavailable)
    assert str(info.value) == f"py-spy: no running process with pid {dead.pid}"


@needs_pyspy
def test_dump_of_an_exited_unreaped_process_is_not_a_ptrace_refusal():
    # A worker that just died stays a zombie until its client reaps it; ptrace on a
    # zombie fails with EPERM, which once read as "ptrace refused" and turned the
    # py-spy panel off for the rest of the sweep.
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while not pyspy._process_gone(zombie.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert Path(f"/proc/{zombie.pid}").exists()  # not reaped: still in the process table
        with pytest.raises(PySpyError) as info:
            pyspy.dump(zombie.pid)
        assert not isinstance(info.value, PySpyUnavailable)
        assert str(info.value) == f"py-spy: no running process with pid {zombie.pid}"
    finally:
        zombie.wait()


@needs_pyspy
def test_ptrace_refusal_gives_the_actionable_hint(spinner):
    """Run the real py-spy as an unprivileged user against our (root-owned) child."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run py-spy as an unprivileged user")
    # A place an unprivileged user can read (pytest's tmp_path is private to root).
    shared = Path(tempfile.mkdtemp(prefix="flashtui-pyspy-"))
    try:
        shared.chmod(0o755)
        binary = shared / "py-spy"
        shutil.copy(PYSPY, binary)
        wrapper = shared / "py-spy-as-nobody"
        wrapper.write_text(
            f"#!/bin/sh\nexec {setpriv} --reuid=65534 --regid=65534 --clear-groups {binary} \"$@\"\n"
        )
        for path in (binary, wrapper):
            path.chmod(0o755)
        with pytest.raises(PySpyUnavailable) as info:
            pyspy.dump(spinner.pid, exe=str(wrapper))
        assert str(info.value) == pyspy.PTRACE_HINT
        assert "\n" not in str(info.value)
        with pytest.raises(PySpyUnavailable, match="ptrace refused"):
            pyspy.record_pid(spinner.pid, shared / "never.json", exe=str(wrapper))
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_parse_dump_json_rejects_non_json():
    with pytest.raises(PySpyError, match="no JSON"):
        pyspy.parse_dump_json("Error: something")
    with pytest.raises(PySpyError, match="not a list"):
        pyspy.parse_dump_json('{"pid": 1}')


# ----------------------------------------------------------------------- record
def test_record_command_shape_and_validation(tmp_path):
    out = tmp_path / "prof.json"
    cmd = pyspy.record_command(out, rate_hz=250, exe=sys.executable)  # any executable file
    assert cmd[0] == sys.executable and cmd[1] == "record" and cmd[-1] == "--"
    assert cmd[cmd.index("-o") + 1] == str(out)
    assert cmd[cmd.index("-f") + 1] == "speedscope"
    assert cmd[cmd.index("-r") + 1] == "250"
    assert "--subprocesses" not in cmd
    assert "--subprocesses" in pyspy.record_command(out, subprocesses=True, exe=sys.executable)
    for bad in ({"fmt": "svg"}, {"rate_hz": 0}, {"rate_hz": 2.5}, {"rate_hz": 5000}):
        with pytest.raises(ValueError):
            pyspy.record_command(out, exe=sys.executable, **bad)


@needs_pyspy
def test_record_command_launches_child_and_writes_valid_speedscope(tmp_path):
    out = tmp_path / "launched.json"
    child = textwrap.dedent("""
        import json, time
        def flashtui_test_recorded_work(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass
        print(json.dumps({"v": 1, "type": "Log", "level": "info", "text": "hi"}), flush=True)
        flashtui_test_recorded_work(1.0)
    """)
    done = subprocess.run(
        [*pyspy.record_command(out, rate_hz=200), sys.executable, "-c", child],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = pyspy.validate_speedscope(out)
    assert summary["exporter"].startswith("py-spy@")
    assert summary["n_samples"] >= 50  # ~1 s at 200 Hz, generous for a loaded box
    assert summary["top_frames"][0]["name"] == "flashtui_test_recorded_work"
    # The rest is interpreter start-up, which a loaded box stretches (68% seen at load 5).
    assert summary["top_frames"][0]["self_samples"] >= 0.5 * summary["n_samples"]
    assert summary["duration_s"] == pytest.approx(summary["n_samples"] / 200, rel=0.01)
    # py-spy shares the child's stdout: its lines are recognisable, the child's are not.
    lines = done.stdout.splitlines()
    child_lines = [ln for ln in lines if not pyspy.is_pyspy_output(ln)]
    assert [json.loads(ln)["type"] for ln in child_lines] == ["Log"]
    assert any(ln.startswith("py-spy> ") for ln in lines)


@needs_pyspy
def test_worker_client_under_pyspy_launcher(tmp_path):
    """The real worker, started under py-spy: ready, closed gracefully, profile written."""
    from flashtui.client.worker_client import WorkerClient

    out = tmp_path / "worker.json"
    client = WorkerClient(launcher=pyspy.record_command(out, rate_hz=100), ready_timeout_s=60)
    try:
        ready = client.start()
        # client.pid is py-spy's; the worker (and its GPU memory) is a descendant.
        assert ready.pid != client.pid
        assert ready.pid in mnvml.descendant_pids(client.pid)
    finally:
        client.close(timeout_s=15)
    summary = pyspy.validate_speedscope(out)
    assert summary["n_samples"] > 0 and summary["n_frames"] > 0
    # The profile is the worker's: its entry module is on the recorded stacks.
    frames = json.loads(out.read_text())["shared"]["frames"]
    assert any("flashtui" in (f.get("file") or "") for f in frames)


@needs_pyspy
def test_record_pid_attaches_and_stop_writes_profile(spinner, tmp_path):
    out = tmp_path / "attached.json"
    recording = pyspy.record_pid(spinner.pid, out, rate_hz=100)
    assert recording.running
    time.sleep(0.8)
    path = recording.stop()
    assert path == out and not recording.running
    summary = pyspy.validate_speedscope(out)
    assert summary["n_samples"] >= 30
    assert summary["top_frames"][0]["name"] == "flashtui_test_hot_loop"
    assert "Control-C" in recording.output  # stopped by our SIGINT, not by the child exiting


@needs_pyspy
def test_record_pid_of_missing_process_raises_at_start(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with pytest.raises(PySpyError, match=f"no running process with pid {dead.pid}"):
        pyspy.record_pid(dead.pid, tmp_path / "x.json")


# ------------------------------------------------------------------- speedscope
def _speedscope(**overrides):
    data = {
        "$schema": pyspy.SPEEDSCOPE_SCHEMA,
        "shared": {"frames": [{"name": "inner", "file": "a.py", "line": 3},
                              {"name": "outer", "file": "a.py", "line": 9}]},
        "profiles": [{"type": "sampled", "name": "t", "unit": "seconds", "startValue": 0,
                      "endValue": 0.03, "samples": [[1, 0], [1, 0], [1]],
                      "weights": [0.01, 0.01, 0.01]}],
        "exporter": "test",
    }
    data.update(overrides)
    return data


def test_validate_speedscope_counts_self_and_total(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(_speedscope()))
    summary = pyspy.validate_speedscope(path)
    assert summary["n_samples"] == 3 and summary["n_frames"] == 2 and summary["n_profiles"] == 1
    assert summary["duration_s"] == pytest.approx(0.03)
    assert summary["top_frames"] == [
        {"name": "inner", "file": "a.py", "line": 3, "self_samples": 2, "total_samples": 2},
        {"name": "outer", "file": "a.py", "line": 9, "self_samples": 1, "total_samples": 3},
    ]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update({"$schema": "https://example.com"}), "$schema"),
        (lambda d: d.update({"shared": {}}), "shared.frames"),
        (lambda d: d.update({"profiles": []}), "no profiles"),
        (lambda d: d["profiles"][0].pop("weights"), "samples/weights"),
        (lambda d: d["profiles"][0]["weights"].append(0.01), "3 samples but 4 weights"),
        (lambda d: (d["profiles"][0]["samples"].append([7]), d["profiles"][0]["weights"].append(0.01)),
         "unknown frame index"),
        (lambda d: d["profiles"][0].update({"type": "evented"}), "'evented'"),
    ],
)
def test_validate_speedscope_rejects_broken_files(tmp_path, mutate, message):
    data = _speedscope()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpeedscopeError) as info:
        pyspy.validate_speedscope(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_validate_speedscope_unreadable_and_not_json(tmp_path):
    with pytest.raises(SpeedscopeError, match="cannot read"):
        pyspy.validate_speedscope(tmp_path / "absent.json")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("py-spy> not json")
    with pytest.raises(SpeedscopeError, match="not JSON"):
        pyspy.validate_speedscope(garbage)


def test_is_pyspy_output():
    assert pyspy.is_pyspy_output("py-spy> Sampling process 100 times a second.\n")
    assert pyspy.is_pyspy_output(b"\n")
    assert not pyspy.is_pyspy_output('{"v": 1, "type": "Log"}\n')
