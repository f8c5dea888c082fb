"""NVML sampler: real-library failure states, per-field NA, device mapping, windows.

This machine has pynvml but no NVIDIA driver, so the real library is exercised in its
"no driver" state; the sampling logic is exercised against a small fake NVML module
injected through the ``nvml=`` parameter (the same surface pynvml exposes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from flashtui.monitor import format as mfmt
from flashtui.monitor import nvml as mnvml
from flashtui.monitor.nvml import NvmlSampler, Sample, probe_nvml, summarize_window

# ------------------------------------------------------------------ a fake NVML
NOT_SUPPORTED, NO_PERMISSION, NOT_FOUND = 3, 4, 6
LIBRARY_NOT_FOUND, DRIVER_NOT_LOADED = 12, 9


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"fake NVML error {value}")
        self.value = value


class FakeNvml:
    """The pynvml calls the sampler uses, backed by plain attributes."""

    NVMLError = FakeNVMLError
    NVML_ERROR_NOT_SUPPORTED = NOT_SUPPORTED
    NVML_ERROR_NO_PERMISSION = NO_PERMISSION
    NVML_ERROR_NOT_FOUND = NOT_FOUND
    NVML_ERROR_LIBRARY_NOT_FOUND = LIBRARY_NOT_FOUND
    NVML_ERROR_DRIVER_NOT_LOADED = DRIVER_NOT_LOADED
    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, n_devices: int = 2, fail: dict[str, int] | None = None,
                 init_error: int | None = None) -> None:
        self.devices = [
            {"index": i, "name": f"Fake GPU {i}", "pci": f"00000000:{0x17 + i:02x}:00.0",
             "uuid": f"GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd"}
            for i in range(n_devices)
        ]
        self.fail = dict(fail or {})
        self.init_error = init_error
        self.init_calls = 0
        self.shutdown_calls = 0
        self.processes: list[SimpleNamespace] = []
        self.clock_mhz = 1980
        self.power_mw = 650_000
        self.calls: list[str] = []

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise FakeNVMLError(self.fail[name])

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlSystemGetDriverVersion(self) -> str:
        return "999.1"

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict:
        if not 0 <= index < len(self.devices):
            raise FakeNVMLError(NOT_FOUND)
        return self.devices[index]

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str) -> dict:
        for dev in self.devices:
            if dev["pci"] == bus_id:
                return dev
        raise FakeNVMLError(NOT_FOUND)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> dict:
        for dev in self.devices:
            if dev["uuid"] == uuid:
                return dev
        raise FakeNVMLError(NOT_FOUND)

    def nvmlDeviceGetIndex(self, handle: dict) -> int:
        return handle["index"]

    def nvmlDeviceGetName(self, handle: dict) -> str:
        return handle["name"]

    def nvmlDeviceGetMemoryInfo(self, handle: dict) -> SimpleNamespace:
        self._maybe_fail("memory")
        return SimpleNamespace(used=3 << 30, total=80 << 30, free=77 << 30)

    def nvmlDeviceGetUtilizationRates(self, handle: dict) -> SimpleNamespace:
        self._maybe_fail("util")
        return SimpleNamespace(gpu=97, memory=41)

    def nvmlDeviceGetClockInfo(self, handle: dict, clock_type: int) -> int:
        assert clock_type == self.NVML_CLOCK_SM
        self._maybe_fail("clock")
        return self.clock_mhz

    def nvmlDeviceGetPowerUsage(self, handle: dict) -> int:
        self._maybe_fail("power")
        return self.power_mw

    def nvmlDeviceGetTemperature(self, handle: dict, sensor: int) -> int:
        self._maybe_fail("temp")
        return 61

    def nvmlDeviceGetComputeRunningProcesses(self, handle: dict) -> list[SimpleNamespace]:
        self._maybe_fail("procs")
        return list(self.processes)


def _real_driver_present() -> bool:
    return probe_nvml().available


# --------------------------------------------------------- real pynvml, no driver
def test_real_pynvml_without_driver_reports_reason_not_exception():
    import pynvml  # installed here: this test goes through the real library

    if _real_driver_present():
        pytest.skip("an NVIDIA driver is present; the no-driver state cannot be observed")
    with pytest.raises(pynvml.NVMLError):  # the raw library does raise ...
        pynvml.nvmlInit()
    status = probe_nvml()  # ... probe_nvml turns it into a reason
    assert status.available is False
    assert status.reason == "NVML library not found (no NVIDIA driver on this machine)"
    assert status.device_count == 0
    assert status.to_dict()["reason"] == status.reason


def test_real_pynvml_sampler_starts_and_stops_cleanly_without_driver():
    if _real_driver_present():
        pytest.skip("an NVIDIA driver is present")
    sampler = NvmlSampler(rate_hz=50)
    status = sampler.start()
    assert status.available is False and "no NVIDIA driver" in status.reason
    assert sampler.running
    time.sleep(0.1)
    assert sampler.samples() == [] and sampler.latest() is None
    with pytest.raises(RuntimeError, match="NVML is not available"):
        sampler.sample_once()
    sampler.stop()
    assert not sampler.running
    assert sampler.stats()["n_samples"] == 0
    assert not any(t.name == "flashtui-nvml" for t in threading.enumerate())


def test_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` now fails
    status = probe_nvml()
    assert status.available is False
    assert status.reason == "nvidia-ml-py not installed: pip install nvidia-ml-py"
    with NvmlSampler() as sampler:
        assert sampler.status.reason == mnvml.INSTALL_HINT
        assert sampler.samples() == []


def test_import_stays_light_in_fresh_interpreter():
    code = (
        "import sys, flashtui.monitor.nvml, flashtui.monitor.format;"
        "bad = [m for m in ('torch', 'textual', 'rich', 'pynvml') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == ""


# ------------------------------------------------------------ init failure states
@pytest.mark.parametrize(
    ("fake", "reason"),
    [
        (FakeNvml(init_error=DRIVER_NOT_LOADED), "NVIDIA driver not loaded"),
        (FakeNvml(init_error=LIBRARY_NOT_FOUND), "NVML library not found (no NVIDIA driver"),
        (FakeNvml(init_error=NO_PERMISSION), "no permission to use NVML"),
        (FakeNvml(n_devices=0), "no NVIDIA GPU visible"),
    ],
)
def test_unusable_states_are_statuses(fake, reason):
    status = probe_nvml(fake)
    assert status.available is False
    assert status.reason.startswith(reason)
    # A successful init is always paired with a shutdown.
    assert fake.shutdown_calls == (1 if fake.init_error is None else 0)


def test_probe_reports_devices_and_driver():
    fake = FakeNvml(n_devices=2)
    status = probe_nvml(fake)
    assert status.available and status.reason is None
    assert status.device_count == 2
    assert status.device_names == ("Fake GPU 0", "Fake GPU 1")
    assert status.driver_version == "999.1"
    assert fake.init_calls == fake.shutdown_calls == 1


# ------------------------------------------------------------------ device mapping
def test_resolve_by_pci_bus_id_then_uuid_then_index():
    fake = FakeNvml(n_devices=3)
    ref = mnvml.resolve_device(fake, pci_bus_id="00000000:19:00.0", uuid=fake.devices[0]["uuid"])
    assert (ref.how, ref.nvml_index, ref.note) == ("pci_bus_id", 2, None)

    # Unknown bus id: the UUID decides; torch's bare UUID gets NVML's "GPU-" prefix.
    bare = fake.devices[1]["uuid"].removeprefix("GPU-")
    ref = mnvml.resolve_device(fake, pci_bus_id="00000000:99:00.0", uuid=bare)
    assert (ref.how, ref.nvml_index, ref.name) == ("uuid", 1, "Fake GPU 1")

    # Nothing matches: fall back to the index, and say so.
    ref = mnvml.resolve_device(fake, pci_bus_id="00000000:99:00.0", index=2)
    assert (ref.how, ref.nvml_index) == ("index", 2)
    assert "00000000:99:00.0" in ref.note and "index 2" in ref.note

    ref = mnvml.resolve_device(fake)
    assert ref.how == "index" and "CUDA_VISIBLE_DEVICES" in ref.note

    with pytest.raises(LookupError, match="index 7"):
        mnvml.resolve_device(fake, index=7)


def test_sampler_with_unresolvable_device_is_unavailable_with_reason():
    fake = FakeNvml(n_devices=1)
    sampler = NvmlSampler(nvml=fake, uuid="GPU-nope", index=5)
    status = sampler.start()
    try:
        assert status.available is False
        assert "GPU-nope" in status.reason and "index 5" in status.reason
        assert fake.shutdown_calls == 1  # NVML released when there is nothing to sample
    finally:
        sampler.stop()
    assert sampler.samples() == []


def test_pci_bus_id_string_and_provenance_hint():
    assert mnvml.pci_bus_id_string(0, 0x3B, 0) == "00000000:3B:00.0"
    assert mnvml.normalize_uuid("abc") == "GPU-abc"
    assert mnvml.normalize_uuid("MIG-abc") == "MIG-abc"
    hint = mnvml.device_hint_from_provenance(
        {"device": {"pci_bus_id": "00000000:17:00.0", "uuid": "u", "index": 0}, "torch": "2.5"}
    )
    assert hint == {"pci_bus_id": "00000000:17:00.0", "uuid": "u", "index": 0}
    assert mnvml.device_hint_from_provenance(None) == {}


# ---------------------------------------------------------------- field-level NA
def test_not_supported_fields_are_none_not_zero():
    fake = FakeNvml(fail={"power": NOT_SUPPORTED, "temp": NO_PERMISSION, "util": NOT_SUPPORTED})
    sampler = NvmlSampler(nvml=fake, index=0)
    assert sampler.start().available
    try:
        sample = sampler.sample_once()
    finally:
        sampler.stop()
    assert sample.power_w is None and sample.temp_c is None
    assert sample.util_gpu_pct is None and sample.util_mem_pct is None
    # The fields NVML did give are intact.
    assert sample.mem_used_bytes == 3 << 30 and sample.mem_total_bytes == 80 << 30
    assert sample.sm_clock_mhz == 1980.0
    assert sample.gpu_index == 0
    assert sample.sample_cost_s is not None and sample.sample_cost_s >= 0
    errors = sampler.stats()["field_errors"]
    assert errors["power_w"] == "not supported on this GPU"
    assert errors["temp_c"] == "no permission"
    assert "mem_used_bytes" not in errors
    line = mfmt.fmt_sample(sample)
    assert "NA W" not in line and "util NA" in line and " NA" in line
    assert "3.00 GiB / 80.0 GiB" in line and "1980 MHz" in line


def test_temperature_falls_back_when_legacy_call_is_gone():
    fake = FakeNvml(fail={"temp": 13})  # NVML_ERROR_FUNCTION_NOT_FOUND: removed API
    fake.NVML_ERROR_FUNCTION_NOT_FOUND = 13
    with NvmlSampler(nvml=fake) as sampler:
        assert sampler.sample_once().temp_c is None  # no replacement offered: NA
        fake.nvmlDeviceGetTemperatureV = lambda handle, sensor: 64
        assert sampler.sample_once().temp_c == 64.0
    assert sampler.stats()["field_errors"]["temp_c"] == "not provided by this driver"


def test_a_broken_reading_does_not_kill_the_thread():
    fake = FakeNvml()
    calls = {"n": 0}
    real = fake.nvmlDeviceGetMemoryInfo

    def flaky(handle):
        calls["n"] += 1
        return SimpleNamespace() if calls["n"] == 2 else real(handle)  # no .used: a bug

    fake.nvmlDeviceGetMemoryInfo = flaky
    with NvmlSampler(nvml=fake, rate_hz=50) as sampler:
        time.sleep(0.3)
    stats = sampler.stats()
    assert stats["sample_errors"] == 1 and "AttributeError" in stats["last_sample_error"]
    assert len(sampler.samples()) >= 5


def test_power_is_converted_from_milliwatts():
    fake = FakeNvml()
    fake.power_mw = 123_456
    with NvmlSampler(nvml=fake) as sampler:
        sample = sampler.sample_once()
    assert sample.power_w == pytest.approx(123.456)
    assert sample.to_dict()["power_w"] == pytest.approx(123.456)


# ------------------------------------------------------------ per-process memory
def test_proc_mem_for_watched_pid_and_none_when_not_listed():
    fake = FakeNvml()
    me = os.getpid()
    fake.processes = [SimpleNamespace(pid=me, usedGpuMemory=512 << 20),
                      SimpleNamespace(pid=1, usedGpuMemory=7 << 30)]
    with NvmlSampler(nvml=fake) as sampler:
        assert sampler.sample_once().proc_mem_bytes is None  # no pid watched
        assert "procs" not in fake.calls  # and no per-process query paid for
        sampler.watch_pid(me)
        assert sampler.sample_once().proc_mem_bytes == 512 << 20
        sampler.watch_pid(424242)  # a restarted worker NVML does not list (container)
        assert sampler.sample_once().proc_mem_bytes is None
        fake.processes = [SimpleNamespace(pid=me, usedGpuMemory=None)]  # NVML: value N/A
        sampler.watch_pid(me)
        assert sampler.sample_once().proc_mem_bytes is None
        fake.fail["procs"] = NOT_SUPPORTED
        assert sampler.sample_once().proc_mem_bytes is None
        assert sampler.stats()["field_errors"]["proc_mem_bytes"] == "not supported on this GPU"


def test_proc_mem_counts_descendants_of_a_launcher():
    """Under `py-spy record -- python -m flashtui.worker` the client knows py-spy's pid."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in mnvml.descendant_pids(os.getpid())
        fake = FakeNvml()
        fake.processes = [SimpleNamespace(pid=child.pid, usedGpuMemory=1 << 30)]
        with NvmlSampler(nvml=fake, pid=os.getpid()) as sampler:
            assert sampler.sample_once().proc_mem_bytes == 1 << 30
        with NvmlSampler(nvml=fake, pid=os.getpid(), include_children=False) as sampler:
            assert sampler.sample_once().proc_mem_bytes is None
    finally:
        child.kill()
        child.wait()


# ------------------------------------------------------------- thread behaviour
def test_sampler_thread_rate_ring_buffer_and_subscribers():
    fake = FakeNvml()
    seen: list[Sample] = []
    sampler = NvmlSampler(nvml=fake, rate_hz=50, capacity=8)
    unsubscribe = sampler.on_sample(seen.append)

    def broken(sample: Sample) -> None:
        raise ValueError("subscriber bug")

    sampler.on_sample(broken)
    sampler.start()
    time.sleep(0.5)
    unsubscribe()
    n_seen = len(seen)
    time.sleep(0.1)
    sampler.stop()
    stats = sampler.stats()
    # ~25 readings in 0.5 s at 50 Hz; allow a slow CI box but not a stalled thread.
    assert 10 <= stats["n_samples"] <= 35
    assert n_seen >= 10 and len(seen) == n_seen  # unsubscribed: no more deliveries
    history = sampler.samples()
    assert len(history) == 8  # bounded ring
    assert [s.t_s for s in history] == sorted(s.t_s for s in history)
    assert sampler.latest() == history[-1]
    gaps = [b.t_s - a.t_s for a, b in zip(history, history[1:])]
    assert all(0.005 < g < 0.2 for g in gaps), gaps
    assert stats["callback_errors"] == stats["n_samples"]  # broken one never stopped it
    assert "subscriber bug" in stats["last_callback_error"]
    assert stats["mean_cost_ms"] is not None and stats["max_cost_ms"] >= stats["mean_cost_ms"]
    assert sampler.samples(since_s=history[-2].t_s) == [history[-1]]
    assert not sampler.running


@pytest.mark.parametrize("bad", [0.4, 0, -1, 50.5, 1000, "fast", None])
def test_rate_validation(bad):
    with pytest.raises(ValueError) as info:
        NvmlSampler(rate_hz=bad)
    message = str(info.value)
    assert "\n" not in message and "rate_hz" in message


def test_rate_bounds_accepted_and_setter_validates():
    assert NvmlSampler(rate_hz=0.5).period_s == 2.0
    sampler = NvmlSampler(rate_hz=50)
    assert sampler.rate_hz == 50.0
    sampler.rate_hz = 20
    assert sampler.period_s == pytest.approx(0.05)
    with pytest.raises(ValueError, match="between 0.5 and 50 Hz"):
        sampler.rate_hz = 60
    assert sampler.rate_hz == 20.0
    with pytest.raises(ValueError, match="capacity"):
        NvmlSampler(capacity=0)


# ------------------------------------------------------------------ window summary
def _sample(t_s: float, clock: float | None, power: float | None, temp: float | None = 50.0) -> Sample:
    return Sample(t_s=t_s, wall_time=1e9 + t_s, gpu_index=0, sm_clock_mhz=clock,
                  power_w=power, temp_c=temp)


def test_window_summary_min_median_max():
    samples = [
        _sample(0.0, 1000, 100), _sample(1.0, 1980, 600), _sample(1.1, 1755, 700),
        _sample(1.2, 1980, None), _sample(1.3, 1900, 650), _sample(5.0, 900, 90),
    ]
    summary = summarize_window(samples, 1.0, 1.3)
    assert summary["count"] == 4 and summary["nearest"] is False
    assert summary["sm_clock_mhz"] == {"min": 1755, "median": 1940.0, "max": 1980}
    # The None power reading is NA, not a zero that would drag the minimum down.
    assert summary["power_w"] == {"min": 600, "median": 650, "max": 700}
    assert summary["temp_c"]["max"] == 50.0
    assert mfmt.fmt_window(summary) == "SM 1755-1980 MHz (med 1940), 600-700 W (med 650), n=4"


def test_window_with_unsupported_fields_and_nearest_fallback():
    samples = [_sample(1.0, None, None, None), _sample(1.1, None, None, None)]
    summary = summarize_window(samples, 0.9, 1.2)
    assert summary["count"] == 2
    assert summary["sm_clock_mhz"] is None and summary["power_w"] is None
    assert mfmt.fmt_window(summary).startswith("SM NA, power NA")

    # A 20 ms timed region between two 100 ms samples: nearest reading, flagged.
    samples = [_sample(1.0, 1500, 300), _sample(1.1, 1980, 650)]
    summary = summarize_window(samples, 1.04, 1.06, period_s=0.1)
    assert summary["count"] == 1 and summary["nearest"] is True
    assert summary["sm_clock_mhz"]["median"] == 1500
    assert summarize_window(samples, 1.04, 1.06)["count"] == 0  # no fallback without a period
    assert summarize_window(samples, 3.0, 4.0, period_s=0.1)["count"] == 0  # too far away
    with pytest.raises(ValueError, match="ends before"):
        summarize_window(samples, 2.0, 1.0)


def test_window_in_wall_clock_matches_engine_epoch_bounds():
    # _sample() puts wall_time = 1e9 + t_s: the same window, in epoch seconds.
    samples = [_sample(1.0, 1500, 300), _sample(1.1, 1980, 650), _sample(1.2, 1800, 640)]
    summary = summarize_window(samples, 1e9 + 1.05, 1e9 + 1.25, clock="wall")
    assert summary["clock"] == "wall" and summary["count"] == 2
    assert summary["sm_clock_mhz"] == {"min": 1800, "median": 1890.0, "max": 1980}
    with pytest.raises(ValueError, match="clock"):
        summarize_window(samples, 0, 1, clock="gpu")


def test_sampler_window_uses_its_history():
    fake = FakeNvml()
    with NvmlSampler(nvml=fake, rate_hz=50) as sampler:
        time.sleep(0.1)
        t0 = time.monotonic()
        wall_t0 = time.time()
        fake.clock_mhz = 1200  # throttled during the "timed region"
        time.sleep(0.3)
        t1 = time.monotonic()
        wall_t1 = time.time()
        fake.clock_mhz = 1980
        time.sleep(0.1)
    summary = sampler.window(t0, t1)
    assert summary["count"] >= 5
    # The only readings inside the window are the throttled ones (one at the edge may
    # have started before the change took effect).
    assert summary["sm_clock_mhz"]["median"] == 1200
    assert summary["power_w"]["median"] == pytest.approx(650.0)
    wall_summary = sampler.window(wall_t0, wall_t1, clock="wall")
    assert abs(wall_summary["count"] - summary["count"]) <= 1
    assert wall_summary["sm_clock_mhz"]["median"] == 1200


# ------------------------------------------------------------------------ format
def test_sample_line_renders_none_as_na_and_a_real_zero_as_zero():
    empty = Sample(t_s=0.0, wall_time=1e9, gpu_index=0)
    assert mfmt.fmt_sample(empty) == "mem NA / NA (proc NA) util NA SM NA NA NA"
    full = Sample(t_s=0.0, wall_time=1e9, gpu_index=0, mem_used_bytes=1536, mem_total_bytes=80 << 30,
                  proc_mem_bytes=512, util_gpu_pct=0, sm_clock_mhz=1979.6, power_w=0.0, temp_c=65)
    assert mfmt.fmt_sample(full) == "mem 1.50 KiB / 80.0 GiB (proc 512 B) util 0.0% SM 1980 MHz 0 W 65 C"


# ------------------------------------------------------------------ throttling judged
def _reasons_sample(t_s: float, clock: float, reasons: int | None) -> Sample:
    return Sample(t_s=t_s, wall_time=1e9 + t_s, gpu_index=0, sm_clock_mhz=clock, power_w=650.0,
                  temp_c=60.0, clock_event_reasons=reasons)


def test_window_names_the_clock_event_reasons_any_reading_gave():
    samples = [_reasons_sample(1.0, 1980, 0x1), _reasons_sample(1.1, 1980, 0x4),
               _reasons_sample(1.2, 1980, 0x40 | 0x4), _reasons_sample(9.0, 1980, 0x8)]
    summary = summarize_window(samples, 1.0, 1.2)
    assert summary["clock_event_reasons"] == ["SW power cap", "HW thermal slowdown"]  # idle (0x1) is no slowdown
    assert mnvml.telemetry_noise_reason(summary) == (
        "GPU clocks held back by HW thermal slowdown during timing (NVML)")
    unknown = summarize_window([_reasons_sample(1.0, 1980, None)], 0.9, 1.1)
    assert unknown["clock_event_reasons"] is None and mnvml.telemetry_noise_reason(unknown) is None


def test_a_power_cap_alone_is_recorded_but_only_a_moving_clock_makes_a_cell_noisy():
    steady = summarize_window([_reasons_sample(1.0, 1980, 0x4), _reasons_sample(1.1, 1965, 0x4)], 0.9, 1.2)
    assert steady["clock_event_reasons"] == ["SW power cap"]
    assert mnvml.telemetry_noise_reason(steady) is None
    moving = summarize_window([_reasons_sample(1.0, 1980, 0x4), _reasons_sample(1.1, 1410, 0x4)], 0.9, 1.2)
    assert mnvml.telemetry_noise_reason(moving) == "SM clock moved 1410-1980 MHz during timing (SW power cap)"
    assert mnvml.telemetry_noise_reason({"count": 0}) is None


def test_the_sampler_reads_clock_event_reasons_and_falls_back_to_the_old_name():
    class ReasonsNvml(FakeNvml):
        def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
            return 0x20

    class OldNameNvml(FakeNvml):
        def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
            return 0x8

    for fake, expected in ((ReasonsNvml(), 0x20), (OldNameNvml(), 0x8), (FakeNvml(), None)):
        with NvmlSampler(nvml=fake, rate_hz=50) as sampler:
            sample = sampler.sample_once()
        assert sample.clock_event_reasons == expected


def test_the_recorder_marks_a_throttled_cell_noisy_and_findings_leave_it_out():
    from flashtui.client.recorder import SweepRecorder
    from flashtui.core.protocol import CellFinished
    from flashtui.core.results import Cell
    from flashtui.core.session import Session
    from flashtui.reports.findings import findings

    class Throttled:
        """A sampler whose readings show thermal slowdown while sdpa-flash was timed."""

        def window(self, t0, t1, clock="monotonic"):
            hot = t0 >= 100.0
            samples = [_reasons_sample(t0 - 1e9, 1500 if hot else 1980, 0x20 if hot else 0x0)]
            return summarize_window(samples, t0, t1, clock="wall")

    session = Session(spec={"device": "cuda", "seqs": [1024], "dtypes": ["bf16"]})
    recorder = SweepRecorder(session, sampler=Throttled(), owns_sampler=False)

    def finished(backend, median_ms, t0):
        cell = Cell(backend, 1024, "bf16", status="ok", median_ms=median_ms, iqr_ms=median_ms * 0.01)
        cell.extra.update(t_start_wall_s=t0, t_end_wall_s=t0 + 0.5)
        return CellFinished(index=0, cell=cell.to_dict())

    standard = recorder.handle(finished("standard", 2.0, 10.0))
    hot = recorder.handle(finished("sdpa-flash", 0.2, 200.0))
    assert not standard.noisy and standard.telemetry["clock_event_reasons"] == []
    assert hot.noisy and hot.noise_reason == "GPU clocks held back by SW thermal slowdown during timing (NVML)"
    lines = findings(session)
    assert lines[0].startswith("use standard at seq 1024")  # the hot cell's 10x is not cited
    left_out = [line for line in lines if "sdpa-flash" in line]
    assert len(left_out) == 1 and "noisy, left out of these findings" in left_out[0]


def test_the_window_text_names_the_reasons():
    summary = summarize_window([_reasons_sample(1.0, 1500, 0x40)], 0.9, 1.1)
    assert mfmt.fmt_window(summary).endswith("n=1, clocks: HW thermal slowdown")
