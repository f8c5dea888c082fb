"""`--host`: the worker over a real ssh to a throw-away sshd on 127.0.0.1.

The "remote" host is this machine: its python with PYTHONPATH at this checkout, passed on
the ssh command line (FLASHTUI_REMOTE_ENV), since ssh does not forward the environment.
The sshd is real (/usr/sbin/sshd, own host key, own user key, own config on a free port);
without the binary (or, as non-root, without its privilege-separation dir) the tests skip
and say why. `.ci/run` installs openssh-server when it is missing and CI runs as root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.faults.conftest import REPO, TINY, assert_one_line_error, flashtui, only_journal

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}: {proc.stderr.read()[-1000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {port} within {timeout_s} s")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 for this user: its port, pid, FLASHTUI_SSH value, keys."""
    if not os.path.exists(SSHD) or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip(f"no sshd here ({SSHD} or ssh/ssh-keygen missing): apt-get install openssh-server")
    if not os.path.isdir("/run/sshd"):
        if os.geteuid() != 0:
            pytest.skip("sshd needs its privilege-separation dir /run/sshd (create it as root)")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    tmp = tmp_path_factory.mktemp("sshd")
    host_key, user_key = tmp / "host_ed25519", tmp / "user_ed25519"
    for key in (host_key, user_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = tmp / "authorized_keys"
    authorized.write_text(Path(f"{user_key}.pub").read_text())
    port = _free_port()
    cfg = tmp / "sshd_config"
    cfg.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}", "StrictModes no", "UsePAM no",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin yes",
        f"PidFile {tmp / 'sshd.pid'}", "LogLevel ERROR", "",
    ]))
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stderr=subprocess.PIPE, text=True)
    try:
        _wait_listening(port, proc)
    except RuntimeError as exc:
        proc.kill()
        pytest.skip(f"could not start a test sshd: {exc}")
    known = tmp / "known_hosts"
    ssh_cmd = (f"ssh -p {port} -i {user_key} -o UserKnownHostsFile={known} "
               "-o StrictHostKeyChecking=accept-new -o BatchMode=yes -o LogLevel=ERROR")
    yield SimpleNamespace(port=port, pid=proc.pid, ssh_cmd=ssh_cmd, known_hosts=known, user_key=user_key)
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def _remote_env(ssh_cmd: str, pythonpath: Path = REPO) -> dict[str, str]:
    return {"FLASHTUI_SSH": ssh_cmd, "FLASHTUI_REMOTE_ENV": f"PYTHONPATH={pythonpath}"}


def _bench(args, data_dir, env, timeout=150):
    return flashtui(["bench", *TINY, "--seq", "64", "--dtype", "fp32", "--backends", "standard,sdpa-math",
                     *args], data_dir, timeout=timeout, **env)


def test_bench_over_ssh_produces_cells_and_names_the_host(sshd, tmp_path):
    ssh_cmd = sshd.ssh_cmd
    out = tmp_path / "session.json"
    run = _bench(["--host", "127.0.0.1", "--remote-python", sys.executable, "--json", "--out", str(out)],
                 tmp_path / "data", _remote_env(ssh_cmd))
    assert run.returncode == 0, run.stderr[-3000:]
    session = json.loads(run.stdout)
    assert [(c["backend"], c["status"]) for c in session["cells"]] == [("standard", "ok"), ("sdpa-math", "ok")]
    assert all(c["median_ms"] > 0 for c in session["cells"])
    prov = session["provenance"]
    assert prov["remote_host"] == "127.0.0.1"
    assert prov["hostname"] == socket.gethostname()  # the worker's own word (same box here)
    assert prov["flashtui"]
    # Stored locally: the journal in this data dir, the --out file here.
    journal = only_journal(tmp_path / "data")
    assert session["id"] in journal.name
    assert json.loads(out.read_text())["provenance"]["remote_host"] == "127.0.0.1"


def test_nothing_listening_is_one_line(sshd, tmp_path):
    port = _free_port()  # bound, closed: nothing listens there
    ssh_cmd = sshd.ssh_cmd
    cmd = ssh_cmd.replace(f"-p {sshd.port} ", f"-p {port} ")
    run = _bench(["--host", "127.0.0.1"], tmp_path / "data", _remote_env(cmd), timeout=60)
    line = assert_one_line_error(run, "cannot connect to 127.0.0.1", code=3)
    assert "connection refused" in line


def test_unknown_host_is_one_line(sshd, tmp_path):
    ssh_cmd = sshd.ssh_cmd
    run = _bench(["--host", "no-such-host.invalid"], tmp_path / "data", _remote_env(ssh_cmd), timeout=60)
    assert_one_line_error(run, "ssh: could not resolve host no-such-host.invalid", code=3)


def test_wrong_host_key_is_one_line(sshd, tmp_path):
    ssh_cmd = sshd.ssh_cmd
    known = tmp_path / "known_hosts"
    # Another key pinned for this host: ssh must refuse (strict checking).
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    known.write_text(f"[127.0.0.1]:{sshd.port} " + (tmp_path / "other.pub").read_text())
    cmd = ssh_cmd.replace(f"UserKnownHostsFile={sshd.known_hosts}", f"UserKnownHostsFile={known}").replace(
        "StrictHostKeyChecking=accept-new", "StrictHostKeyChecking=yes")
    run = _bench(["--host", "127.0.0.1"], tmp_path / "data", _remote_env(cmd), timeout=60)
    assert_one_line_error(run, "host key verification failed for 127.0.0.1", code=3)


def test_wrong_user_key_is_one_line(sshd, tmp_path):
    ssh_cmd, user_key = sshd.ssh_cmd, sshd.user_key
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
    cmd = ssh_cmd.replace(f"-i {user_key}", f"-i {tmp_path / 'stranger'} -o IdentitiesOnly=yes")
    run = _bench(["--host", "127.0.0.1"], tmp_path / "data", _remote_env(cmd), timeout=60)
    assert_one_line_error(run, "permission denied (publickey) for 127.0.0.1", code=3)


def test_flashtui_missing_on_host_is_one_line(sshd, tmp_path):
    ssh_cmd = sshd.ssh_cmd
    # -S: no site-packages (where an editable install lives), and no PYTHONPATH given.
    env = {"FLASHTUI_SSH": ssh_cmd, "FLASHTUI_REMOTE_ENV": f"PYTHONPATH={tmp_path}"}
    run = _bench(["--host", "127.0.0.1", "--remote-python", f"{sys.executable} -S"], tmp_path / "data",
                 env, timeout=60)
    assert_one_line_error(run, f"flashtui is not installed for {sys.executable} -S on 127.0.0.1", code=3)


def test_other_flashtui_version_on_host_is_one_line(sshd, tmp_path):
    ssh_cmd = sshd.ssh_cmd
    from flashtui import __version__

    other = tmp_path / "other" / "flashtui"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text('__version__ = "0.0.1"\n')
    run = _bench(["--host", "127.0.0.1", "--remote-python", f"{sys.executable} -S"], tmp_path / "data",
                 _remote_env(ssh_cmd, other.parent), timeout=60)
    assert_one_line_error(run, f"127.0.0.1 runs flashtui 0.0.1, this is {__version__}", code=3)


@pytest.mark.slow  # two worker starts and a seconds-long cell per side
@pytest.mark.parametrize("side", ["client", "server"])
def test_dropped_connection_fails_the_cell_and_the_sweep_finishes(sshd, side):
    """Drop the ssh link mid-cell (kill ssh here, or the host's sshd session): that cell
    fails saying so, a fresh worker (over a new connection) runs the rest."""
    from tests.faults.conftest import children
    from flashtui.client.remote import RemoteWorkerClient, SshTarget
    from flashtui.core import protocol as proto
    from flashtui.core.spec import SweepSpec, cpu_defaults

    ssh_cmd = sshd.ssh_cmd
    target = SshTarget.from_options("127.0.0.1", sys.executable, environ=_remote_env(ssh_cmd))
    base = cpu_defaults()
    # The first cell is slow (seconds of warm-up) so the link drops while it runs.
    base.update(seqs=(64,), dtypes=("fp32",), heads=2, head_dim=32, reps=3, warmup_ms=2500.0,
                backends=("standard", "sdpa-math"), device="cpu")
    spec = SweepSpec(**base)
    client = RemoteWorkerClient(target)
    events = []
    try:
        for event in client.run_sweep(spec):
            events.append(event)
            if isinstance(event, proto.CellStarted) and client.restarts == 0:
                time.sleep(0.5)
                if side == "client":
                    os.kill(client.local_pid, signal.SIGKILL)  # the ssh process here
                else:
                    for pid in children(sshd.pid):  # the host's end: its per-connection sshd
                        os.kill(pid, signal.SIGKILL)
    finally:
        client.close()
    finished = [e.to_cell() for e in events if isinstance(e, proto.CellFinished)]
    assert [(c.backend, c.status) for c in finished] == [("standard", "failed"), ("sdpa-math", "ok")]
    if side == "client":
        assert "SIGKILL" in finished[0].reason
    else:
        assert finished[0].reason.startswith("the ssh connection to 127.0.0.1 dropped"), finished[0].reason
    assert any(isinstance(e, proto.WorkerDied) for e in events)
    assert [e.restarts for e in events if isinstance(e, proto.WorkerRestarted)] == [1]
    assert isinstance(events[-1], proto.SweepFinished) and not events[-1].cancelled


# A stand-in pynvml module for the "remote" host (put first on its PYTHONPATH): one GPU,
# fixed readings, and the watched pid listed with 5 GiB. The sampler process, ssh and the
# client-side reader are all real; only the driver is not (this machine has no GPU).
FAKE_PYNVML = '''
import types
class NVMLError(Exception):
    def __init__(self, value):
        super().__init__(f"fake NVML error {value}")
        self.value = value
NVML_ERROR_NOT_FOUND = 6
NVML_CLOCK_SM = 1
NVML_TEMPERATURE_GPU = 0
_DEV = {"name": "Fake H200", "pci": "00000000:17:00.0"}
def nvmlInit(): pass
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return 1
def nvmlSystemGetDriverVersion(): return "999.1"
def nvmlDeviceGetHandleByIndex(i):
    if i != 0: raise NVMLError(6)
    return _DEV
def nvmlDeviceGetHandleByPciBusId(bus_id):
    if bus_id != _DEV["pci"]: raise NVMLError(6)
    return _DEV
def nvmlDeviceGetHandleByUUID(uuid): raise NVMLError(6)
def nvmlDeviceGetIndex(h): return 0
def nvmlDeviceGetName(h): return h["name"]
def nvmlDeviceGetMemoryInfo(h): return types.SimpleNamespace(used=3 << 30, total=141 << 30, free=0)
def nvmlDeviceGetUtilizationRates(h): return types.SimpleNamespace(gpu=97, memory=41)
def nvmlDeviceGetClockInfo(h, kind): return 1980
def nvmlDeviceGetPowerUsage(h): return 650000
def nvmlDeviceGetTemperature(h, sensor): return 61
def nvmlDeviceGetComputeRunningProcesses(h):
    return [types.SimpleNamespace(pid=4242, usedGpuMemory=5 << 30)]
'''


def test_remote_nvml_sampler_streams_the_hosts_gpu(sshd, tmp_path):
    from flashtui.client.remote import RemoteNvmlSampler, SshTarget

    fake = tmp_path / "fake_nvml"
    fake.mkdir()
    (fake / "pynvml.py").write_text(FAKE_PYNVML)
    ssh_cmd = sshd.ssh_cmd
    env = {"FLASHTUI_SSH": ssh_cmd, "FLASHTUI_REMOTE_ENV": f"PYTHONPATH={fake}:{REPO}"}
    target = SshTarget.from_options("127.0.0.1", sys.executable, environ=env)
    sampler = RemoteNvmlSampler(target, rate_hz=20, pid=4242, pci_bus_id="00000000:17:00.0")
    seen = []
    sampler.on_sample(seen.append)
    t0_wall = time.time()
    status = sampler.start()
    try:
        assert status.available, status
        assert status.device_names == ("Fake H200",) and status.driver_version == "999.1"
        deadline = time.monotonic() + 20
        while len(seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(seen) >= 5
        sample = sampler.latest()
        assert sample.mem_used_bytes == 3 << 30 and sample.proc_mem_bytes == 5 << 30
        assert sample.sm_clock_mhz == 1980 and sample.power_w == 650.0
        sampler.watch_pid(1)  # a pid the fake does not list: per-process memory is NA
        deadline = time.monotonic() + 10
        while sampler.latest().proc_mem_bytes is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sampler.latest().proc_mem_bytes is None
        window = sampler.window(t0_wall, time.time(), clock="wall")  # host clock == cell clock
        assert window["count"] >= 5 and window["sm_clock_mhz"]["median"] == 1980, window
    finally:
        sampler.stop()
    assert not sampler.running
    stats = sampler.stats()
    assert stats["host"] == "127.0.0.1" and stats["device_how"] == "pci_bus_id"
    assert stats["n_samples"] == len(sampler.samples())


def test_remote_nvml_sampler_without_a_driver_says_why(sshd):
    """The real pynvml on a host with no NVIDIA driver: a reason, not an exception."""
    from flashtui.client.remote import RemoteNvmlSampler, SshTarget
    from flashtui.monitor.nvml import probe_nvml

    if probe_nvml().available:
        pytest.skip("an NVIDIA driver is present; the no-driver state cannot be observed")
    ssh_cmd = sshd.ssh_cmd
    target = SshTarget.from_options("127.0.0.1", sys.executable, environ=_remote_env(ssh_cmd))
    sampler = RemoteNvmlSampler(target, rate_hz=10)
    status = sampler.start()
    sampler.stop()
    assert status.available is False
    assert status.reason == probe_nvml().reason


def test_profile_records_on_the_host_and_comes_back(sshd, tmp_path):
    """--profile --host: py-spy record runs on the host around the worker; the file is copied here."""
    from flashtui.monitor.pyspy import find_pyspy

    if find_pyspy() is None:
        pytest.skip("py-spy is not installed (pip install py-spy)")
    ssh_cmd = sshd.ssh_cmd
    profile = tmp_path / "prof.json"
    before = set(Path("/tmp").glob("flashtui-profile-*.json"))
    run = _bench(["--host", "127.0.0.1", "--remote-python", sys.executable, "--profile", str(profile),
                  "--json"], tmp_path / "data", _remote_env(ssh_cmd), timeout=200)
    if "ptrace" in run.stderr.lower() or "permission" in run.stderr.lower():
        pytest.skip(f"py-spy cannot trace here: {run.stderr[-300:]}")
    assert run.returncode == 0, run.stderr[-3000:]
    attachment = json.loads(run.stdout)["attachments"]["profile"]
    assert attachment.get("error") is None, (attachment, run.stderr[-2000:])
    assert attachment["path"] == str(profile) and attachment["n_samples"] > 0
    data = json.loads(profile.read_text())
    assert data["$schema"].startswith("https://www.speedscope.app")
    assert "flashtui/engine" in json.dumps(data["shared"]["frames"])  # the host's worker was recorded
    # The host's temp copy is gone (the remote /tmp is this /tmp here).
    assert set(Path("/tmp").glob("flashtui-profile-*.json")) <= before


async def test_tui_runs_a_sweep_on_the_host(sshd):
    """The real app, its worker and NVML sampler over ssh: cells, provenance, py-spy says why not."""
    from flashtui.client.remote import SshTarget, tui_factories
    from flashtui.testing import wait_for
    from flashtui.tui import messages as m
    from flashtui.tui.app import FlashTuiApp

    ssh_cmd = sshd.ssh_cmd
    target = SshTarget.from_options("127.0.0.1", sys.executable, environ=_remote_env(ssh_cmd))
    worker_factory, sampler_factory = tui_factories(target)
    spec = dict(device="cpu", backends=("standard", "sdpa-math"), seqs=(64,), dtypes=("fp32",), reps=3,
                warmup_ms=5.0, heads=2, head_dim=32)
    app = FlashTuiApp(default_spec_overrides=spec, worker_factory=worker_factory,
                      sampler_factory=sampler_factory)
    seen = []
    async with app.run_test(size=(160, 50), message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.sweep.ready, 90, "WorkerReady over ssh")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any(isinstance(x, m.SweepFinished) for x in seen), 90, "SweepFinished")
        await pilot.pause(0.2)
        session = app.sweep.session
        assert [(c.backend, c.status) for c in session.cells] == [("standard", "ok"), ("sdpa-math", "ok")]
        assert session.provenance["remote_host"] == "127.0.0.1"
        # The host's NVML answered (no driver on this box): its reason, not this machine's guess.
        status = [x for x in seen if isinstance(x, m.MonitorStatus)]
        assert status and status[-1].available is False and "NVML" in status[-1].reason
        assert app._pyspy_unavailable().startswith("py-spy of the worker on 127.0.0.1")
        worker_pid = app.bridge.worker_pid
        assert worker_pid == app.sweep.ready.pid  # the host's pid, not the local ssh's
        assert worker_pid != app.bridge.client.local_pid
    assert app.sweep.recorder.journal.saved_path.is_file()  # stored on this machine


def test_tui_with_an_unknown_host_fails_before_taking_the_screen(monkeypatch):
    """The pre-flight runs before the app starts: one WorkerError line, no half-drawn TUI."""
    import argparse

    from flashtui.errors import WorkerError
    from flashtui.tui import app as tui_app

    if shutil.which("ssh") is None:
        pytest.skip("no ssh client here")
    monkeypatch.setenv("FLASHTUI_SSH", "ssh -o BatchMode=yes")
    monkeypatch.setattr(tui_app.FlashTuiApp, "run", lambda self: pytest.fail("the app started"))
    with pytest.raises(WorkerError, match="^ssh: could not resolve host no-such-host.invalid$"):
        tui_app.run_app(argparse.Namespace(host="no-such-host.invalid", remote_python=None))


def test_no_such_interpreter_on_host_is_one_line(sshd, tmp_path):
    run = _bench(["--host", "127.0.0.1", "--remote-python", "/nonexistent/python3"], tmp_path / "data",
                 _remote_env(sshd.ssh_cmd), timeout=60)
    assert_one_line_error(run, "/nonexistent/python3 was not found on 127.0.0.1: env: ", code=3)
