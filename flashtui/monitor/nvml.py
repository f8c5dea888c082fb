"""NVML sampler: the GPU as the driver sees it, sampled in a thread of the client.

Why in the client and not the worker: the sampler must never compete with the code
being measured (a thread in the worker would share its GIL and CPU time with the timed
calls). Why NVML and not torch: the UI process never
imports torch, and NVML also sees what torch's allocator cannot (the CUDA context,
other processes, clocks, power, temperature).

Honesty rules:

* A field NVML cannot give (NotSupported, NoPermission, a missing symbol in an old
  driver, ...) is ``None`` -- rendered "NA" -- never 0. Each field fails on its own.
* No pynvml, no driver, no GPU are normal states: :func:`probe_nvml` and
  :class:`NvmlSampler` report them as an :class:`NvmlStatus` with a reason a user can
  act on; no exception escapes.
* CUDA device indices are not NVML indices (``CUDA_VISIBLE_DEVICES`` renumbers CUDA
  devices, NVML does not), so the device is found by PCI bus id or UUID, which the
  worker reports in its provenance; the index is only a fallback, and says so.

No torch, textual or rich here (enforced by import-linter contracts in pyproject and tests/unit/test_layers.py).
"""

from __future__ import annotations

import collections
import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

# Validated range of the sampling rate. Below 0.5 Hz the live trace is useless; above
# 50 Hz the sampler costs more than it tells (NVML's own counters update at ~10-100 ms).
MIN_RATE_HZ = 0.5
MAX_RATE_HZ = 50.0
DEFAULT_RATE_HZ = 10.0
# 10 minutes of history at the default rate.
DEFAULT_CAPACITY = 6000
# How often the set of the watched pid's descendants is refreshed from /proc.
_DESCENDANTS_REFRESH_S = 1.0

INSTALL_HINT = "nvidia-ml-py not installed: pip install nvidia-ml-py"

# Fields of a Sample that NVML may be unable to give (None = NA).
SAMPLE_FIELDS = (
    "mem_used_bytes", "mem_total_bytes", "proc_mem_bytes", "util_gpu_pct",
    "util_mem_pct", "sm_clock_mhz", "power_w", "temp_c", "clock_event_reasons",
)

# nvmlClocksEventReasons bits (formerly "throttle reasons") that mean the clocks were held
# back while a cell ran, and how to say so. GPU idle (0x1), application clocks (0x2), sync
# boost (0x10) and display clocks (0x100) are left out: they are settings, not slowdowns.
CLOCK_EVENT_REASONS = {
    0x4: "SW power cap",
    0x8: "HW slowdown",
    0x20: "SW thermal slowdown",
    0x40: "HW thermal slowdown",
    0x80: "HW power brake",
}
# Reasons that make a timing untrustworthy on their own. The power cap is the normal state
# of a GPU at full load (large kernels run at TDP, reproducibly): it is recorded, and judged
# only through the clock spread it causes.
CLOCK_EVENT_NOISY = {"HW slowdown", "SW thermal slowdown", "HW thermal slowdown", "HW power brake"}
# SM clock min/max below this ratio inside one timed region: the clock moved under the cell.
CLOCK_SPREAD_NOISY = 0.90


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Sample:
    """One reading of one GPU. ``None`` in any field means NVML could not give it."""

    t_s: float  # time.monotonic() when the reading started (system-wide on Linux)
    wall_time: float  # time.time(), for exports and humans
    gpu_index: int | None  # NVML's index of the device (not necessarily CUDA's)
    mem_used_bytes: int | None = None
    mem_total_bytes: int | None = None
    # The watched pid's own GPU memory (summed over its descendants, e.g. a worker
    # launched under py-spy). None when no pid is watched or NVML does not list it
    # (containers: NVML reports host pids, the worker has a namespaced one).
    proc_mem_bytes: int | None = None
    util_gpu_pct: float | None = None
    util_mem_pct: float | None = None
    sm_clock_mhz: float | None = None
    power_w: float | None = None
    temp_c: float | None = None
    # nvmlDeviceGetCurrentClocksEventReasons' bitmask (see CLOCK_EVENT_REASONS).
    clock_event_reasons: int | None = None
    # Host time this reading took (all NVML calls), so its cost is always visible.
    sample_cost_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NvmlStatus:
    """Whether NVML can be used here and, if not, why (one sentence a user can act on)."""

    available: bool
    reason: str | None = None
    driver_version: str | None = None
    device_count: int = 0
    device_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["device_names"] = list(self.device_names)
        return data


@dataclass(frozen=True)
class DeviceRef:
    """An NVML device handle and how it was found (``how``: pci_bus_id, uuid, index)."""

    handle: Any
    nvml_index: int | None
    how: str
    name: str | None = None
    # Set when the match is not exact (fell back to an index), so the UI can say so.
    note: str | None = None


# --------------------------------------------------------------------- NVML helpers
def _import_pynvml() -> Any:
    """The pynvml module of nvidia-ml-py, or None when it is not installed."""
    try:
        import pynvml  # noqa: PLC0415 - optional dependency, imported lazily
    except ImportError:
        return None
    return pynvml


def _error_code(nvml: Any, name: str, default: int) -> int:
    return int(getattr(nvml, name, default))


def _error_value(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return int(value) if isinstance(value, int) else None


def describe_nvml_error(nvml: Any, exc: BaseException) -> str:
    """A short, user-facing phrase for an NVML error code ('not supported', ...)."""
    value = _error_value(exc)
    names = {
        _error_code(nvml, "NVML_ERROR_NOT_SUPPORTED", 3): "not supported on this GPU",
        _error_code(nvml, "NVML_ERROR_NO_PERMISSION", 4): "no permission",
        _error_code(nvml, "NVML_ERROR_FUNCTION_NOT_FOUND", 13): "not provided by this driver",
        _error_code(nvml, "NVML_ERROR_GPU_IS_LOST", 15): "GPU is lost (fell off the bus)",
        _error_code(nvml, "NVML_ERROR_NOT_FOUND", 6): "not found",
    }
    fallback = str(exc) or type(exc).__name__
    return names.get(value, fallback) if value is not None else fallback


def _init_failure_reason(nvml: Any, exc: BaseException) -> str:
    """Why nvmlInit failed, as a sentence with the next step."""
    value = _error_value(exc)
    if value == _error_code(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", 12):
        return "NVML library not found (no NVIDIA driver on this machine)"
    if value == _error_code(nvml, "NVML_ERROR_DRIVER_NOT_LOADED", 9):
        return "NVIDIA driver not loaded (check that nvidia-smi works)"
    if value == _error_code(nvml, "NVML_ERROR_NO_PERMISSION", 4):
        return "no permission to use NVML (check access to /dev/nvidia*)"
    if value == _error_code(nvml, "NVML_ERROR_LIB_RM_VERSION_MISMATCH", 18):
        return "NVML and the kernel driver differ in version (reboot after a driver update)"
    return f"NVML could not start: {exc}"


def _as_text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _open_nvml(nvml: Any | None) -> tuple[Any | None, NvmlStatus]:
    """nvmlInit and a status. On success the caller owns one nvmlShutdown."""
    if nvml is None:
        nvml = _import_pynvml()
        if nvml is None:
            return None, NvmlStatus(False, INSTALL_HINT)
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError or a broken install: both are "unavailable"
        return None, NvmlStatus(False, _init_failure_reason(nvml, exc))
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except Exception as exc:
        _shutdown(nvml)
        return None, NvmlStatus(False, f"NVML cannot count GPUs: {describe_nvml_error(nvml, exc)}")
    if count == 0:
        _shutdown(nvml)
        return None, NvmlStatus(False, "no NVIDIA GPU visible")
    try:
        driver = _as_text(nvml.nvmlSystemGetDriverVersion())
    except Exception:
        driver = None
    names: list[str] = []
    for index in range(count):
        try:
            names.append(_as_text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(index))))
        except Exception as exc:
            names.append(f"GPU {index} ({describe_nvml_error(nvml, exc)})")
    return nvml, NvmlStatus(True, None, driver, count, tuple(names))


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass


def probe_nvml(nvml: Any | None = None) -> NvmlStatus:
    """Can NVML be used here? Never raises; the reason says what to do if not.

    ``nvml`` replaces the pynvml module (tests inject a fake one).
    """
    lib, status = _open_nvml(nvml)
    if lib is not None:
        _shutdown(lib)
    return status


def gpu_identities(nvml: Any | None = None) -> tuple[NvmlStatus, list[dict[str, str | None]]]:
    """NVML's status and each GPU's name and UUID (the doctor cache's fingerprint). Never raises."""
    lib, status = _open_nvml(nvml)
    gpus: list[dict[str, str | None]] = []
    if lib is None:
        return status, gpus
    try:
        for index in range(status.device_count):
            try:
                uuid: str | None = _as_text(lib.nvmlDeviceGetUUID(lib.nvmlDeviceGetHandleByIndex(index)))
            except Exception:  # noqa: BLE001 - a GPU without a readable UUID still counts
                uuid = None
            gpus.append({"name": status.device_names[index], "uuid": uuid})
    finally:
        _shutdown(lib)
    return status, gpus


def normalize_uuid(uuid: str) -> str:
    """NVML wants 'GPU-xxxxxxxx-...'; torch reports the bare UUID."""
    uuid = uuid.strip()
    if uuid.upper().startswith(("GPU-", "MIG-")):
        return uuid
    return f"GPU-{uuid}"


def pci_bus_id_string(domain: int, bus: int, device: int, function: int = 0) -> str:
    """'00000000:17:00.0', NVML's PCI bus id form, from torch's integer properties."""
    return f"{domain:08X}:{bus:02X}:{device:02X}.{function:X}"


def resolve_device(
    nvml: Any,
    *,
    pci_bus_id: str | None = None,
    uuid: str | None = None,
    index: int | None = None,
) -> DeviceRef:
    """Find the NVML device behind a CUDA device: by PCI bus id, then UUID, then index.

    The index fallback is exact only without CUDA_VISIBLE_DEVICES reordering; the
    returned ``note`` says so. Raises LookupError with a one-line reason when nothing
    matches. NVML must be initialized.
    """
    tried: list[str] = []
    if pci_bus_id:
        try:
            handle = nvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id)
            return _device_ref(nvml, handle, "pci_bus_id")
        except Exception as exc:
            tried.append(f"PCI bus id {pci_bus_id}: {describe_nvml_error(nvml, exc)}")
    if uuid:
        try:
            handle = nvml.nvmlDeviceGetHandleByUUID(normalize_uuid(uuid))
            return _device_ref(nvml, handle, "uuid")
        except Exception as exc:
            tried.append(f"UUID {uuid}: {describe_nvml_error(nvml, exc)}")
    fallback_index = 0 if index is None else int(index)
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(fallback_index)
    except Exception as exc:
        tried.append(f"index {fallback_index}: {describe_nvml_error(nvml, exc)}")
        raise LookupError("NVML has no matching GPU (" + "; ".join(tried) + ")") from None
    if tried:
        why = "; ".join(tried)
        note = f"matched by NVML index {fallback_index} ({why})"
    elif pci_bus_id is None and uuid is None:
        note = (
            f"matched by NVML index {fallback_index}: no PCI bus id or UUID given, "
            "may differ from the CUDA device under CUDA_VISIBLE_DEVICES"
        )
    else:  # pragma: no cover - unreachable: a given id either matched or was tried
        note = None
    return _device_ref(nvml, handle, "index", note=note, fallback_index=fallback_index)


def _device_ref(nvml: Any, handle: Any, how: str, note: str | None = None,
                fallback_index: int | None = None) -> DeviceRef:
    try:
        nvml_index: int | None = int(nvml.nvmlDeviceGetIndex(handle))
    except Exception:
        nvml_index = fallback_index
    try:
        name: str | None = _as_text(nvml.nvmlDeviceGetName(handle))
    except Exception:
        name = None
    return DeviceRef(handle, nvml_index, how, name, note)


def device_hint_from_provenance(provenance: dict[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments of :func:`resolve_device` found in a worker provenance.

    Looks for ``pci_bus_id``, ``uuid`` and ``device_index`` / ``cuda_index`` at the top
    level and under ``device`` (whichever the worker reports); absent keys are skipped.
    """
    hint: dict[str, Any] = {}
    if not provenance:
        return hint
    scopes = [provenance]
    if isinstance(provenance.get("device"), dict):
        scopes.insert(0, provenance["device"])
    for scope in scopes:
        for key, target in (("pci_bus_id", "pci_bus_id"), ("uuid", "uuid"),
                            ("device_index", "index"), ("cuda_index", "index"), ("index", "index")):
            value = scope.get(key)
            if value is not None and target not in hint:
                hint[target] = value
    return hint


def descendant_pids(pid: int, proc_root: str = "/proc") -> set[int]:
    """``pid`` and all its descendants (Linux /proc); just ``{pid}`` where /proc is absent.

    The worker may run under a launcher (py-spy record, ssh): the client knows the
    launcher's pid, the GPU memory belongs to a child.
    """
    found = {pid}
    frontier = [pid]
    root = Path(proc_root)
    while frontier:
        current = frontier.pop()
        task_dir = root / str(current) / "task"
        try:
            tasks = list(task_dir.iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in children:
                child_pid = int(child)
                if child_pid not in found:
                    found.add(child_pid)
                    frontier.append(child_pid)
    return found


def _process_name(pid: int, proc_root: str = "/proc") -> str | None:
    try:
        raw = (Path(proc_root) / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    return " ".join(words)[:120] or None


@dataclass(frozen=True)
class GpuNeighbours:
    """Other compute processes on one GPU: their work disturbs every timing taken there."""

    processes: tuple[dict[str, Any], ...] = ()
    # False when NVML lists host pids this process cannot map (a container): one of
    # ``processes`` is then the sweep's own worker.
    own_identified: bool = True
    reason: str | None = None  # why NVML could not answer (None: it did)

    @property
    def count(self) -> int:
        return max(len(self.processes) - (0 if self.own_identified else 1), 0)

    def to_dict(self) -> dict[str, Any]:
        return {"processes": list(self.processes), "own_identified": self.own_identified,
                "reason": self.reason, "count": self.count}


def other_compute_processes(provenance: dict[str, Any] | None, own_pid: int | None,
                            nvml: Any | None = None) -> GpuNeighbours:
    """Compute processes on the worker's GPU other than ``own_pid`` (and its children).

    Each as ``{"pid", "used_bytes", "name"}`` (the name from /proc where visible).
    Never raises: without NVML the answer is empty with the reason.
    """
    lib, status = _open_nvml(nvml)
    if lib is None:
        return GpuNeighbours(reason=status.reason)
    try:
        try:
            ref = resolve_device(lib, **device_hint_from_provenance(provenance))
            listed = list(lib.nvmlDeviceGetComputeRunningProcesses(ref.handle) or [])
        except Exception as exc:
            return GpuNeighbours(reason=f"NVML cannot list the GPU's processes: {describe_nvml_error(lib, exc)}")
        own = descendant_pids(own_pid) if own_pid else set()
        own.add(os.getpid())
        pids = [int(getattr(p, "pid", 0) or 0) for p in listed]
        identified = not own_pid or any(pid in own for pid in pids) or not pids
        out = []
        for proc, pid in zip(listed, pids):
            if pid in own:
                continue
            used = getattr(proc, "usedGpuMemory", None)
            out.append({"pid": pid, "used_bytes": int(used) if isinstance(used, int) else None,
                        "name": _process_name(pid)})
        return GpuNeighbours(tuple(out), own_identified=identified)
    finally:
        _shutdown(lib)


def summarize_window(samples: Iterable[Sample], t0_s: float, t1_s: float,
                     period_s: float | None = None, clock: str = "monotonic") -> dict[str, Any]:
    """Min/median/max of SM clock, power and temperature over samples in [t0_s, t1_s].

    What a measured cell records as ``Cell.telemetry``: were clocks throttled, was the
    power at its cap, while this cell was timed. ``clock`` says which time the bounds
    are in: "monotonic" (``Sample.t_s``; system-wide on Linux, so comparable across
    processes) or "wall" (``Sample.wall_time``, epoch seconds, as the engine's
    ``t_start_wall_s``/``t_end_wall_s``). When no sample fell inside a window shorter
    than one period, the nearest sample within ``period_s`` of it is used and
    ``nearest`` is True, so short timed regions still say something honest.
    """
    if clock not in ("monotonic", "wall"):
        raise ValueError(f"clock must be 'monotonic' or 'wall', got {clock!r}")
    if t1_s < t0_s:
        raise ValueError(f"window ends before it starts ({t0_s} > {t1_s})")
    attr = "t_s" if clock == "monotonic" else "wall_time"
    all_samples = list(samples)
    inside = [s for s in all_samples if t0_s <= getattr(s, attr) <= t1_s]
    nearest = False
    if not inside and period_s is not None and all_samples:
        def distance(s: Sample) -> float:
            t = getattr(s, attr)
            return min(abs(t - t0_s), abs(t - t1_s))
        closest = min(all_samples, key=distance)
        if distance(closest) <= period_s:
            inside = [closest]
            nearest = True
    summary: dict[str, Any] = {
        "clock": clock, "t0_s": t0_s, "t1_s": t1_s, "count": len(inside), "nearest": nearest,
    }
    for name in ("sm_clock_mhz", "power_w", "temp_c"):
        values = [getattr(s, name) for s in inside if getattr(s, name) is not None]
        summary[name] = (
            {"min": min(values), "median": statistics.median(values), "max": max(values)}
            if values else None
        )
    masks = [s.clock_event_reasons for s in inside if s.clock_event_reasons is not None]
    union = 0
    for mask in masks:
        union |= int(mask)
    # The reasons any reading inside the window gave (None: NVML could not say).
    summary["clock_event_reasons"] = (
        [name for bit, name in CLOCK_EVENT_REASONS.items() if union & bit] if masks else None
    )
    return summary


def telemetry_noise_reason(summary: dict[str, Any] | None) -> str | None:
    """One sentence when the GPU's clocks were held back or moved while a cell was timed.

    Thermal or hardware slowdown and the power brake are enough by themselves; otherwise
    an SM clock that moved more than 10% inside the window (a power cap, a boost change).
    None when the window looks steady or NVML gave nothing to judge by.
    """
    if not summary or not summary.get("count"):
        return None
    why = []
    reasons = summary.get("clock_event_reasons") or []
    slowdowns = [r for r in reasons if r in CLOCK_EVENT_NOISY]
    if slowdowns:
        why.append(f"GPU clocks held back by {', '.join(slowdowns)} during timing (NVML)")
    clock = summary.get("sm_clock_mhz")
    if clock and clock["max"] and clock["min"] / clock["max"] < CLOCK_SPREAD_NOISY:
        cause = " (SW power cap)" if "SW power cap" in reasons else ""
        why.append(f"SM clock moved {clock['min']:.0f}-{clock['max']:.0f} MHz during timing{cause}")
    return "; ".join(why) or None


# -------------------------------------------------------------------------- sampler
class NvmlSampler:
    """Samples one GPU at ``rate_hz`` in a daemon thread; keeps a bounded history.

    ``start()`` never raises for a missing package, driver or GPU: the sampler runs
    without samples and ``status`` says why. Subscribers (``on_sample``) are called in
    the sampler thread; the TUI posts a coalescing message from there.
    """

    def __init__(
        self,
        *,
        rate_hz: float = DEFAULT_RATE_HZ,
        capacity: int = DEFAULT_CAPACITY,
        pci_bus_id: str | None = None,
        uuid: str | None = None,
        index: int | None = None,
        pid: int | None = None,
        include_children: bool = True,
        nvml: Any | None = None,
    ) -> None:
        self._rate_hz = self._validate_rate(rate_hz)
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 sample, got {capacity}")
        self._device_hint = {"pci_bus_id": pci_bus_id, "uuid": uuid, "index": index}
        self._nvml_override = nvml
        self._nvml: Any | None = None
        self._device: DeviceRef | None = None
        self._status = NvmlStatus(False, "not started")
        self._samples: collections.deque[Sample] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Sample], None]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pid = pid
        self._include_children = include_children
        self._pids: set[int] = set()
        self._pids_refreshed_s = float("-inf")
        # Stats: how many readings, what they cost, which fields NVML refused and why.
        self._n_samples = 0
        self._total_cost_s = 0.0
        self._max_cost_s = 0.0
        self._field_errors: dict[str, str] = {}
        self._callback_errors = 0
        self._last_callback_error: str | None = None
        self._sample_errors = 0
        self._last_sample_error: str | None = None

    # ---------------------------------------------------------------- settings
    @staticmethod
    def _validate_rate(rate_hz: float) -> float:
        try:
            value = float(rate_hz)
        except (TypeError, ValueError):
            raise ValueError(f"rate_hz must be a number of samples per second, got {rate_hz!r}") from None
        if not (MIN_RATE_HZ <= value <= MAX_RATE_HZ):
            raise ValueError(
                f"rate_hz must be between {MIN_RATE_HZ:g} and {MAX_RATE_HZ:g} Hz, got {rate_hz!r}"
            )
        return value

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    @rate_hz.setter
    def rate_hz(self, rate_hz: float) -> None:
        self._rate_hz = self._validate_rate(rate_hz)
        self._wake.set()

    @property
    def period_s(self) -> float:
        return 1.0 / self._rate_hz

    @property
    def status(self) -> NvmlStatus:
        return self._status

    @property
    def device(self) -> DeviceRef | None:
        """The NVML device being sampled (``note`` says if matched by index only)."""
        return self._device

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def watch_pid(self, pid: int | None) -> None:
        """Set or replace the process whose own GPU memory fills ``proc_mem_bytes``.

        Call again after a worker restart; None stops per-process accounting.
        """
        with self._lock:
            self._pid = pid
            self._pids = set()
            self._pids_refreshed_s = float("-inf")

    def on_sample(self, callback: Callable[[Sample], None]) -> Callable[[], None]:
        """Call ``callback(sample)`` (in the sampler thread) for each new sample.

        Returns a function that unsubscribes. A callback that raises is counted in
        ``stats()`` and does not stop the sampler.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # --------------------------------------------------------------- lifecycle
    def start(self) -> NvmlStatus:
        """Open NVML, find the device and start sampling. Returns the status."""
        if self.running:
            return self._status
        lib, status = _open_nvml(self._nvml_override)
        if lib is not None:
            try:
                self._device = resolve_device(lib, **self._device_hint)
            except LookupError as exc:
                _shutdown(lib)
                lib = None
                status = NvmlStatus(False, str(exc), status.driver_version,
                                    status.device_count, status.device_names)
        self._nvml = lib
        self._status = status
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="flashtui-nvml", daemon=True)
        self._thread.start()
        return status

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and release NVML. Samples stay readable."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout_s)
        self._thread = None
        if self._nvml is not None:
            _shutdown(self._nvml)
            self._nvml = None

    def __enter__(self) -> "NvmlSampler":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        if self._nvml is None or self._device is None:
            self._stop.wait()  # nothing to sample; stay "running" until stopped
            return
        next_s = time.monotonic()
        while not self._stop.is_set():
            try:
                sample = self.sample_once()
            except Exception as exc:  # a bug or a broken binding must not kill the monitor
                self._sample_errors += 1
                self._last_sample_error = f"{type(exc).__name__}: {exc}"
            else:
                self._publish(sample)
            next_s += self.period_s
            now = time.monotonic()
            if next_s < now:  # fell behind (slow NVML call): skip, don't burst
                next_s = now + self.period_s
            self._wake.clear()
            self._wake.wait(max(0.0, next_s - now))

    def _publish(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(sample)
            except Exception as exc:
                self._callback_errors += 1
                self._last_callback_error = f"{type(exc).__name__}: {exc}"

    # ---------------------------------------------------------------- sampling
    def sample_once(self) -> Sample:
        """Take one reading now (the thread calls this; tests may too)."""
        if self._nvml is None or self._device is None:
            raise RuntimeError(f"NVML is not available: {self._status.reason}")
        nvml, handle = self._nvml, self._device.handle
        t_s = time.monotonic()
        wall = time.time()
        start = time.perf_counter()
        values: dict[str, Any] = {}

        memory = self._field(("mem_used_bytes", "mem_total_bytes"), nvml.nvmlDeviceGetMemoryInfo, handle)
        if memory is not None:
            values["mem_used_bytes"] = int(memory.used)
            values["mem_total_bytes"] = int(memory.total)
        util = self._field(("util_gpu_pct", "util_mem_pct"), nvml.nvmlDeviceGetUtilizationRates, handle)
        if util is not None:
            values["util_gpu_pct"] = float(util.gpu)
            values["util_mem_pct"] = float(util.memory)
        clock = self._field(("sm_clock_mhz",), nvml.nvmlDeviceGetClockInfo, handle,
                            getattr(nvml, "NVML_CLOCK_SM", 1))
        if clock is not None:
            values["sm_clock_mhz"] = float(clock)
        power_mw = self._field(("power_w",), nvml.nvmlDeviceGetPowerUsage, handle)
        if power_mw is not None:
            values["power_w"] = float(power_mw) / 1000.0
        temp = self._field(("temp_c",), self._temperature, nvml, handle)
        if temp is not None:
            values["temp_c"] = float(temp)
        # The throttle-reasons call was renamed to clocks-event reasons (driver 535+).
        reasons_fn = (getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
                      or getattr(nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None))
        if reasons_fn is not None:
            reasons = self._field(("clock_event_reasons",), reasons_fn, handle)
            if reasons is not None:
                values["clock_event_reasons"] = int(reasons)
        values["proc_mem_bytes"] = self._proc_mem_bytes(nvml, handle)

        cost_s = time.perf_counter() - start
        self._n_samples += 1
        self._total_cost_s += cost_s
        self._max_cost_s = max(self._max_cost_s, cost_s)
        return Sample(t_s=t_s, wall_time=wall, gpu_index=self._device.nvml_index,
                      sample_cost_s=cost_s, **values)

    @staticmethod
    def _temperature(nvml: Any, handle: Any) -> Any:
        """GPU temperature; nvmlDeviceGetTemperature is deprecated (gone after CUDA 13),
        so fall back to nvmlDeviceGetTemperatureV where the legacy call is missing."""
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        try:
            return nvml.nvmlDeviceGetTemperature(handle, sensor)
        except Exception as exc:
            missing = _error_value(exc) == _error_code(nvml, "NVML_ERROR_FUNCTION_NOT_FOUND", 13)
            if missing and hasattr(nvml, "nvmlDeviceGetTemperatureV"):
                return nvml.nvmlDeviceGetTemperatureV(handle, sensor)
            raise

    def _field(self, names: tuple[str, ...], fn: Callable[..., Any], *args: Any) -> Any:
        """Call one NVML query; on an NVML error remember why and give None (NA)."""
        try:
            return fn(*args)
        except Exception as exc:
            reason = describe_nvml_error(self._nvml, exc)
            for name in names:
                self._field_errors.setdefault(name, reason)
            return None

    def _proc_mem_bytes(self, nvml: Any, handle: Any) -> int | None:
        with self._lock:
            pid = self._pid
        if pid is None:
            return None
        now = time.monotonic()
        if self._include_children and now - self._pids_refreshed_s > _DESCENDANTS_REFRESH_S:
            pids = descendant_pids(pid)
            with self._lock:
                if self._pid == pid:
                    self._pids, self._pids_refreshed_s = pids, now
        with self._lock:
            watched = self._pids or {pid}
        processes = self._field(("proc_mem_bytes",), nvml.nvmlDeviceGetComputeRunningProcesses, handle)
        if processes is None:
            return None
        used = [p.usedGpuMemory for p in processes if int(p.pid) in watched]
        if not used or any(u is None for u in used):
            # Not listed: no CUDA context yet, or a pid namespace hides it. NA, not 0.
            return None
        return int(sum(used))

    # ----------------------------------------------------------------- reading
    def latest(self) -> Sample | None:
        with self._lock:
            return self._samples[-1] if self._samples else None

    def samples(self, since_s: float | None = None) -> list[Sample]:
        """A copy of the history (oldest first), optionally only samples after ``since_s``."""
        with self._lock:
            items = list(self._samples)
        if since_s is not None:
            items = [s for s in items if s.t_s > since_s]
        return items

    def window(self, t0_s: float, t1_s: float, clock: str = "monotonic") -> dict[str, Any]:
        """Telemetry summary of [t0_s, t1_s], see :func:`summarize_window`.

        For a cell from the engine: ``window(cell.extra["t_start_wall_s"],
        cell.extra["t_end_wall_s"], clock="wall")`` into ``cell.telemetry``.
        """
        return summarize_window(self.samples(), t0_s, t1_s, period_s=self.period_s, clock=clock)

    def stats(self) -> dict[str, Any]:
        """What sampling costs and which fields are NA and why."""
        n = self._n_samples
        return {
            "n_samples": n,
            "rate_hz": self._rate_hz,
            "mean_cost_ms": (self._total_cost_s / n * 1e3) if n else None,
            "max_cost_ms": self._max_cost_s * 1e3 if n else None,
            "field_errors": dict(self._field_errors),
            "callback_errors": self._callback_errors,
            "last_callback_error": self._last_callback_error,
            "sample_errors": self._sample_errors,
            "last_sample_error": self._last_sample_error,
            "device_how": self._device.how if self._device else None,
            "device_note": self._device.note if self._device else None,
            "status": self._status.to_dict(),
        }


__all__ = [
    "DEFAULT_RATE_HZ", "DeviceRef", "INSTALL_HINT", "MAX_RATE_HZ", "MIN_RATE_HZ",
    "GpuNeighbours", "NvmlSampler", "NvmlStatus", "SAMPLE_FIELDS", "Sample", "descendant_pids",
    "describe_nvml_error", "device_hint_from_provenance", "gpu_identities", "normalize_uuid",
    "other_compute_processes", "pci_bus_id_string", "probe_nvml", "resolve_device", "summarize_window",
]
