"""Environment: NVML missing, NVML refusing some fields, py-spy missing, ptrace refused,
no GPU at all. Each is NA and a hint, never a crash.

"Missing" is made real, not mocked, where a process can show it: a ``pynvml`` that
fails to import sits first on PYTHONPATH, and the interpreter is a fresh venv's
(``flashtui.testing.venvs.bare_venv``: this environment's packages, none of its
scripts), alone on PATH, so nothing named py-spy is beside it or on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from flashtui.testing.venvs import bare_venv

from .conftest import REPO, TINY, assert_one_line_error, flashtui, kill_quietly


@pytest.fixture
def bare_env(tmp_path):
    """(python, extra env) with no pynvml importable and no py-spy to be found."""
    # Not a symlink to sys.executable: a symlinked venv python loses its venv.
    python = bare_venv(tmp_path / "venv")
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pynvml.py").write_text('raise ImportError("No module named \'pynvml\' (hidden by the test)")\n')
    return str(python), {"PATH": str(python.parent), "PYTHONPATH": os.pathsep.join([str(shadow), str(REPO)])}


def test_doctor_without_nvml_py_spy_or_gpu_reports_each_and_exits_0(data_dir, bare_env):
    """This machine has no GPU: that, missing NVML and missing py-spy are all normal."""
    python, env = bare_env
    run = flashtui(["doctor", "--json"], data_dir, python=python, timeout=180, **env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    import json

    report = json.loads(run.stdout)
    assert report["nvml"]["available"] is False
    assert report["nvml"]["reason"] == "nvidia-ml-py not installed: pip install nvidia-ml-py"
    assert report["pyspy"] == {"available": False, "path": None,
                               "reason": "py-spy not installed: pip install py-spy"}
    assert any("py-spy is absent" in line for line in report["advice"])
    prov = report["provenance"]
    assert prov["device_kind"] == "cpu" and prov["cuda_unavailable_reason"]
    # The CPU backends really ran; the GPU-only ones say why not.
    matrix_text = json.dumps(report["matrix"])
    assert "CUDA" in matrix_text


def test_real_pynvml_without_a_driver_is_a_status_not_an_exception():
    from flashtui.monitor.nvml import NvmlSampler, probe_nvml

    status = probe_nvml()
    if status.available:
        pytest.skip("NVML works on this machine")
    assert status.reason and "\n" not in status.reason
    sampler = NvmlSampler(rate_hz=10)
    assert sampler.start().available is False
    time.sleep(0.05)
    sampler.stop()
    assert sampler.samples() == [] and sampler.stats()["sample_errors"] == 0


def test_sampler_with_pynvml_missing(monkeypatch):
    import builtins

    from flashtui.monitor import nvml as nvml_mod

    real_import = builtins.__import__

    def no_pynvml(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError("No module named 'pynvml'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    assert nvml_mod.probe_nvml().reason == nvml_mod.INSTALL_HINT
    sampler = nvml_mod.NvmlSampler(rate_hz=10, pid=os.getpid())
    status = sampler.start()
    sampler.stop()
    assert status.available is False and status.reason == nvml_mod.INSTALL_HINT


class _NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


class _PartlyUnsupportedNvml:
    """A GPU whose driver refuses some fields (as a consumer card or a MIG slice does)."""

    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_FUNCTION_NOT_FOUND = 13
    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0

    class _Mem:
        used, total = 3 << 30, 80 << 30

    def nvmlInit(self): pass
    def nvmlShutdown(self): pass
    def nvmlDeviceGetCount(self): return 1
    def nvmlSystemGetDriverVersion(self): return "560.35"
    def nvmlDeviceGetHandleByIndex(self, i): return ("h", i)
    def nvmlDeviceGetName(self, h): return "Fake H100"
    def nvmlDeviceGetPciInfo(self, h): raise _NVMLError(3)
    def nvmlDeviceGetUUID(self, h): return "GPU-0000"
    def nvmlDeviceGetMemoryInfo(self, h): return self._Mem()
    def nvmlDeviceGetUtilizationRates(self, h): raise _NVMLError(3)
    def nvmlDeviceGetClockInfo(self, h, clock): raise _NVMLError(4)
    def nvmlDeviceGetPowerUsage(self, h): raise _NVMLError(3)
    def nvmlDeviceGetTemperature(self, h, sensor): raise _NVMLError(13)
    def nvmlDeviceGetComputeRunningProcesses(self, h): raise _NVMLError(3)


def test_nvml_fields_not_supported_are_none_with_reasons_and_render_na():
    from flashtui.monitor.format import fmt_sample
    from flashtui.monitor.nvml import NvmlSampler

    sampler = NvmlSampler(rate_hz=20, nvml=_PartlyUnsupportedNvml(), index=0, pid=os.getpid())
    status = sampler.start()
    assert status.available, status
    time.sleep(0.2)
    sampler.stop()
    samples = sampler.samples()
    assert samples, sampler.stats()
    last = samples[-1]
    assert last.mem_used_bytes == 3 << 30  # the field that works, works
    for name in ("util_gpu_pct", "util_mem_pct", "sm_clock_mhz", "power_w", "temp_c", "proc_mem_bytes"):
        assert getattr(last, name) is None, name  # NA, never 0
    errors = sampler.stats()["field_errors"]
    assert errors["util_gpu_pct"] == "not supported on this GPU"
    assert errors["sm_clock_mhz"] == "no permission"
    assert errors["temp_c"] == "not provided by this driver"
    assert sampler.stats()["sample_errors"] == 0
    line = fmt_sample(last)
    assert "util NA" in line and "SM NA" in line and "proc NA" in line and "3.00 GiB" in line, line


def test_bench_profile_without_py_spy_is_a_one_line_hint(data_dir, bare_env):
    python, env = bare_env
    run = flashtui(["bench", *TINY, "--seq", "32", "--profile", str(data_dir.parent / "p.json")], data_dir,
                   python=python, **env)
    assert_one_line_error(run, "--profile needs py-spy: pip install py-spy")
    assert not (data_dir / "sessions").exists()  # refused before anything started


def test_ptrace_refused_gives_the_hint_against_a_real_worker(data_dir):
    """py-spy as an unprivileged user (setpriv) against the root-owned worker process."""
    from flashtui.monitor import pyspy

    setpriv = shutil.which("setpriv")
    exe = pyspy.find_pyspy()
    if os.geteuid() != 0 or setpriv is None or exe is None:
        pytest.skip("needs root, setpriv and py-spy to run py-spy as an unprivileged user")
    shared = Path(tempfile.mkdtemp(prefix="flashtui-ptrace-"))
    target = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.1)"])
    try:
        shared.chmod(0o755)
        binary = shared / "py-spy"
        shutil.copy(exe, binary)
        wrapper = shared / "py-spy-as-nobody"
        wrapper.write_text(f"#!/bin/sh\nexec {setpriv} --reuid=65534 --regid=65534 --clear-groups "
                           f"{binary} \"$@\"\n")
        binary.chmod(0o755)
        wrapper.chmod(0o755)
        with pytest.raises(pyspy.PySpyUnavailable) as info:
            pyspy.dump(target.pid, exe=str(wrapper))
        assert str(info.value) == pyspy.PTRACE_HINT and "\n" not in str(info.value)
        assert "ptrace_scope" in pyspy.PTRACE_HINT
        assert target.poll() is None  # the refused attach did not disturb the process
    finally:
        kill_quietly([target.pid])
        target.wait(timeout=10)
        shutil.rmtree(shared, ignore_errors=True)


def test_bench_on_a_machine_without_gpu_runs_on_cpu_by_default(data_dir):
    """No --device: no GPU here means a CPU sweep, not an error."""
    run = flashtui(["bench", "--heads", "2", "--head-dim", "32", "--reps", "3", "--warmup-ms", "0",
                    "--seq", "32", "--backends", "standard", "--quiet", "--json"], data_dir, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    import json

    data = json.loads(run.stdout)
    assert data["spec"]["device"] == "cpu" and data["cells"][0]["status"] == "ok"
    assert data["provenance"]["device_kind"] == "cpu"
