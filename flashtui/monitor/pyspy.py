"""py-spy driver: the worker's Python stacks on demand, and recorded profiles.

Where host time goes between kernels (Python overhead, launch cost, a stray
``.item()``) is invisible to CUDA events; py-spy shows it without touching the worker's
code. Two ways in:

* **attach** (``dump``, ``hottest_frames``, ``record_pid``): py-spy reads the running
  worker's memory, which needs ptrace rights (root, ``kernel.yama.ptrace_scope=0``, or
  CAP_SYS_PTRACE). Refusals become :class:`PySpyUnavailable` with the fix.
* **launch** (``record_command``): the worker is started *under* py-spy
  (``WorkerClient(launcher=record_command(path))``), which needs no privileges,
  because a parent may always trace its own child.

What py-spy 0.4.3 prints, checked by running it: ``py-spy dump --pid PID --json`` is a
JSON list with one object per thread: ``pid, thread_id, thread_name, os_thread_id,
active, owns_gil, process_info, frames``; each frame has ``name, filename, module,
short_filename, line, locals, is_entry, is_shim_entry``, innermost frame first.
Failures go to stderr as ``Error: ...`` with exit code 1 ("Permission Denied: ..."
when ptrace is refused). ``record -f speedscope`` writes speedscope's file format
(``$schema``, ``shared.frames``, one "sampled" profile per thread whose ``samples`` are
frame-index stacks outermost first, and ``weights`` in seconds).

No torch, textual or rich here.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = "py-spy not installed: pip install py-spy"
PTRACE_HINT = (
    "py-spy cannot attach (ptrace refused): run as root, set kernel.yama.ptrace_scope=0, "
    "or let py-spy launch the worker: flashtui bench --profile out.speedscope.json"
)
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
RECORD_FORMATS = ("speedscope", "flamegraph", "raw", "chrometrace")
# py-spy's own status lines on stdout start with this (see is_pyspy_output).
PYSPY_LINE_PREFIX = "py-spy> "

_PTRACE_MARKERS = ("permission denied", "operation not permitted", "ptrace")
_NO_PROCESS_MARKERS = (
    "failed to get process executable name", "no such process", "check that the process is running",
)


class PySpyError(RuntimeError):
    """py-spy ran but could not do what was asked. The message is one readable line."""


class PySpyUnavailable(PySpyError):
    """py-spy cannot be used here at all (not installed, or not allowed to attach)."""


class SpeedscopeError(ValueError):
    """A file that is not a usable speedscope profile. One line saying what is wrong."""


# ------------------------------------------------------------------------- data
@dataclass(frozen=True)
class StackFrame:
    """One Python frame as py-spy reports it."""

    name: str
    filename: str
    short_filename: str
    line: int | None
    module: str | None = None

    @property
    def location(self) -> str:
        """'kernel.py:42', what a narrow panel shows."""
        return f"{self.short_filename}:{self.line}" if self.line is not None else self.short_filename


@dataclass(frozen=True)
class ThreadStack:
    """One thread's stack at one instant; ``frames[0]`` is the innermost (running) frame."""

    thread_id: int
    os_thread_id: int | None
    thread_name: str | None
    active: bool  # False when py-spy sees the thread idle in a blocking call
    owns_gil: bool
    frames: tuple[StackFrame, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FrameCount:
    """How often a frame was on the sampled stacks.

    ``self_count``: the innermost (running) frame; ``total_count``: anywhere on the
    stack (counted once per stack, so recursion does not inflate it).
    """

    name: str
    filename: str
    short_filename: str
    line: int | None
    self_count: int
    total_count: int

    @property
    def location(self) -> str:
        return f"{self.short_filename}:{self.line}" if self.line is not None else self.short_filename


@dataclass(frozen=True)
class HotFrames:
    """Aggregated dumps: what a "hottest frames" panel shows."""

    pid: int
    n_dumps: int  # dumps that succeeded
    n_stacks: int  # thread stacks counted (active threads only, unless asked otherwise)
    frames: list[FrameCount] = field(default_factory=list)  # hottest (self) first
    # Why sampling stopped early (e.g. the worker exited), or None.
    stopped_early: str | None = None

    def share(self, frame: FrameCount) -> float:
        """Fraction of sampled stacks in which ``frame`` was running."""
        return frame.self_count / self.n_stacks if self.n_stacks else 0.0


# ---------------------------------------------------------------------- finding
def find_pyspy() -> str | None:
    """The py-spy executable: next to this interpreter first (the one pip installed
    for it, also inside a venv that is not activated), then on PATH. None if absent."""
    name = "py-spy.exe" if os.name == "nt" else "py-spy"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def pyspy_state() -> dict[str, Any]:
    """Whether py-spy is here, as the doctor report wants it: available, path, reason."""
    path = find_pyspy()
    return {"available": path is not None, "path": path, "reason": None if path else INSTALL_HINT}


def _require_pyspy(exe: str | None) -> str:
    path = exe or find_pyspy()
    if path is None or not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise PySpyUnavailable(INSTALL_HINT)
    return path


def _pyspy_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RUST_BACKTRACE"] = "0"  # error messages as one line, not a backtrace
    return env


def _process_gone(pid: int) -> bool:
    """True when ``pid`` has exited: no such process, or a zombie its parent has not
    reaped yet (ptrace on a zombie fails with EPERM, which reads like a refusal)."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return True
    except OSError:
        return False  # no /proc here: say nothing
    state = stat.rsplit(b")", 1)[-1].split()[:1]  # the field after "(comm)"
    return state in ([b"Z"], [b"X"])


def _failure(pid: int, returncode: int | None, output: str) -> PySpyError:
    """Turn py-spy's exit status and output into one actionable line."""
    lowered = output.lower()
    if _process_gone(pid):
        return PySpyError(f"py-spy: no running process with pid {pid}")
    if any(marker in lowered for marker in _PTRACE_MARKERS):
        return PySpyUnavailable(PTRACE_HINT)
    if any(marker in lowered for marker in _NO_PROCESS_MARKERS):
        return PySpyError(f"py-spy: no running process with pid {pid}")
    if "failed to find python version" in lowered:
        return PySpyError(f"py-spy: pid {pid} does not look like a Python process")
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    detail = (errors or lines or ["no output"])[0]
    return PySpyError(f"py-spy failed on pid {pid} (exit {returncode}): {detail}")


def is_pyspy_output(line: str | bytes) -> bool:
    """True for py-spy's own stdout lines ('py-spy> ...' and the blank lines around them).

    Under ``record_command`` py-spy shares the worker's stdout: a reader of the JSON-lines
    protocol should skip these lines rather than report them as unparsed output.
    """
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    stripped = text.strip()
    return stripped == "" or stripped.startswith(PYSPY_LINE_PREFIX.strip())


# ------------------------------------------------------------------------- dump
def _parse_frame(raw: dict[str, Any]) -> StackFrame:
    filename = str(raw.get("filename") or "?")
    return StackFrame(
        name=str(raw.get("name") or "?"),
        filename=filename,
        short_filename=str(raw.get("short_filename") or os.path.basename(filename)),
        line=raw.get("line") if isinstance(raw.get("line"), int) else None,
        module=raw.get("module"),
    )


def parse_dump_json(text: str) -> list[ThreadStack]:
    """Parse ``py-spy dump --json`` output (a list of thread objects)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PySpyError(f"py-spy dump gave no JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise PySpyError("py-spy dump JSON is not a list of threads")
    threads = []
    for item in data:
        if not isinstance(item, dict):
            continue
        threads.append(ThreadStack(
            thread_id=int(item.get("thread_id") or 0),
            os_thread_id=item.get("os_thread_id"),
            thread_name=item.get("thread_name"),
            active=bool(item.get("active")),
            owns_gil=bool(item.get("owns_gil")),
            frames=tuple(_parse_frame(f) for f in item.get("frames") or [] if isinstance(f, dict)),
        ))
    return threads


def dump(pid: int, *, native: bool = False, nonblocking: bool = False,
         subprocesses: bool = False, timeout_s: float = 10.0,
         exe: str | None = None) -> list[ThreadStack]:
    """Every Python thread's stack in process ``pid`` right now (``py-spy dump --json``).

    By default py-spy pauses the process for the few milliseconds it reads; pass
    ``nonblocking=True`` to never pause it (stacks may then be torn). Raises
    :class:`PySpyUnavailable` (not installed / ptrace refused) or :class:`PySpyError`.
    """
    path = _require_pyspy(exe)
    cmd = [path, "dump", "--pid", str(int(pid)), "--json"]
    if native:
        cmd.append("--native")
    if nonblocking:
        cmd.append("--nonblocking")
    if subprocesses:
        cmd.append("--subprocesses")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env=_pyspy_env(), check=False)
    except subprocess.TimeoutExpired:
        raise PySpyError(f"py-spy dump of pid {pid} took longer than {timeout_s:g} s") from None
    except OSError as exc:
        raise PySpyUnavailable(f"{INSTALL_HINT} (cannot run {path}: {exc.strerror or exc})") from None
    if done.returncode != 0:
        raise _failure(pid, done.returncode, done.stderr + "\n" + done.stdout)
    return parse_dump_json(done.stdout)


AGGREGATE_BY = ("function", "line")


def aggregate_stacks(stacks: list[ThreadStack], top_n: int | None = None,
                     by: str = "function") -> list[FrameCount]:
    """Count frames over many stacks; hottest (self) first.

    ``by="function"`` merges all lines of a function (file + name; ``line`` is None),
    which is what a summary panel wants: a loop spread over three lines is one hot
    spot. ``by="line"`` keeps file:line apart, for drilling into one function.
    """
    if by not in AGGREGATE_BY:
        raise ValueError(f"by must be one of {', '.join(AGGREGATE_BY)}, got {by!r}")

    def key_of(frame: StackFrame) -> tuple[str, str, int | None]:
        return (frame.name, frame.filename, frame.line if by == "line" else None)

    self_counts: collections.Counter[tuple[str, str, int | None]] = collections.Counter()
    total_counts: collections.Counter[tuple[str, str, int | None]] = collections.Counter()
    shorts: dict[tuple[str, str, int | None], str] = {}
    for stack in stacks:
        if not stack.frames:
            continue
        self_counts[key_of(stack.frames[0])] += 1
        seen = set()
        for frame in stack.frames:
            key = key_of(frame)
            shorts.setdefault(key, frame.short_filename)
            if key not in seen:
                seen.add(key)
                total_counts[key] += 1
    ranked = sorted(total_counts, key=lambda k: (-self_counts[k], -total_counts[k], k[0], k[1]))
    frames = [
        FrameCount(name, filename, shorts[(name, filename, line)], line,
                   self_counts[(name, filename, line)], total_counts[(name, filename, line)])
        for name, filename, line in ranked
    ]
    return frames[:top_n] if top_n is not None else frames


def hottest_frames(pid: int, *, samples: int = 20, interval_s: float = 0.05,
                   active_only: bool = True, top_n: int | None = 20, by: str = "function",
                   native: bool = False, nonblocking: bool = False,
                   exe: str | None = None) -> HotFrames:
    """Take ``samples`` dumps ``interval_s`` apart and rank the frames the process ran.

    Dumps (~20 ms each) rather than ``py-spy top`` (a curses screen meant for humans).
    ``by`` groups per function (default) or per file:line, see :func:`aggregate_stacks`.
    ``active_only`` skips threads py-spy sees idle (the worker's stdin reader, sleeping
    pools), so the panel shows where the worker is busy. If the process exits midway,
    the dumps taken so far are returned with ``stopped_early`` set; if the very first
    dump fails, its error is raised. ``nonblocking`` reads the stacks without pausing
    the process (see :func:`dump`).
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if by not in AGGREGATE_BY:
        raise ValueError(f"by must be one of {', '.join(AGGREGATE_BY)}, got {by!r}")
    if interval_s < 0:
        raise ValueError(f"interval_s must not be negative, got {interval_s}")
    stacks: list[ThreadStack] = []
    n_dumps = 0
    stopped_early = None
    for i in range(samples):
        started = time.monotonic()
        try:
            threads = dump(pid, native=native, nonblocking=nonblocking, exe=exe)
        except PySpyError as exc:
            if n_dumps == 0:
                raise
            stopped_early = str(exc)
            break
        n_dumps += 1
        stacks.extend(t for t in threads if t.active or not active_only)
        if i + 1 < samples:
            time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    return HotFrames(pid=pid, n_dumps=n_dumps, n_stacks=sum(1 for s in stacks if s.frames),
                     frames=aggregate_stacks(stacks, top_n, by), stopped_early=stopped_early)


# ----------------------------------------------------------------------- record
def _record_options(out_path: str | os.PathLike[str], rate_hz: int, fmt: str,
                    native: bool, idle: bool, nonblocking: bool) -> list[str]:
    if fmt not in RECORD_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(RECORD_FORMATS)}, got {fmt!r}")
    if isinstance(rate_hz, bool) or int(rate_hz) != rate_hz or not 1 <= int(rate_hz) <= 1000:
        raise ValueError(f"rate_hz must be a whole number of samples per second in 1..1000, got {rate_hz!r}")
    options = ["-o", os.fspath(out_path), "-f", fmt, "-r", str(int(rate_hz))]
    if native:
        options.append("--native")
    if idle:
        options.append("--idle")
    if nonblocking:
        options.append("--nonblocking")
    return options


def record_command(out_path: str | os.PathLike[str], *, rate_hz: int = 100,
                   fmt: str = "speedscope", subprocesses: bool = False, native: bool = False,
                   idle: bool = False, nonblocking: bool = False,
                   exe: str | None = None, check_exe: bool = True) -> list[str]:
    """The launcher prefix that runs a command under ``py-spy record`` (no root needed).

    ``WorkerClient(launcher=record_command("prof.json"))`` starts
    ``py-spy record -o prof.json -f speedscope -r 100 -- python -m flashtui.worker``.
    py-spy writes the file when the worker exits, so close the client with Shutdown
    (``WorkerClient.close``): a SIGKILL of the launcher loses the profile. py-spy's own
    status lines share the worker's stdout; see :func:`is_pyspy_output`. The client's
    ``pid`` is then py-spy's: the worker is its child (``--subprocesses`` is not needed
    for that; it follows processes the worker itself starts). ``check_exe=False``: ``exe``
    is a path on another host (the prefix runs there, inside ssh) and is not checked here.
    """
    path = exe if exe and not check_exe else _require_pyspy(exe)
    cmd = [path, "record", *_record_options(out_path, rate_hz, fmt, native, idle, nonblocking)]
    if subprocesses:
        cmd.append("--subprocesses")
    cmd.append("--")
    return cmd


class Recording:
    """A ``py-spy record --pid`` in progress; ``stop()`` makes py-spy write the file."""

    def __init__(self, proc: subprocess.Popen[str], pid: int, out_path: Path) -> None:
        self.proc = proc
        self.pid = pid
        self.out_path = out_path
        self._lines: list[str] = []
        self._sampling = threading.Event()
        self._reader = threading.Thread(target=self._read, name="flashtui-pyspy-record",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line.rstrip("\n"))
            if "Sampling process" in line:
                self._sampling.set()

    @property
    def output(self) -> str:
        """Everything py-spy printed so far (stdout and stderr)."""
        return "\n".join(self._lines)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def _wait_started(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._sampling.is_set():
                return
            if self.proc.poll() is not None:
                self._reader.join(timeout=1.0)
                if self._sampling.is_set():  # ran to completion already (short duration)
                    return
                raise _failure(self.pid, self.proc.returncode, self.output)
            time.sleep(0.01)
        self.stop(check=False)
        raise PySpyError(f"py-spy did not start sampling pid {self.pid} within {timeout_s:g} s")

    def stop(self, timeout_s: float = 10.0, check: bool = True) -> Path:
        """SIGINT py-spy (as Ctrl-C would), wait for it to write the file, return its path."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
        return self.wait(timeout_s, check=check)

    def wait(self, timeout_s: float | None = None, check: bool = True) -> Path:
        """Wait for py-spy to finish on its own (duration elapsed or target exited)."""
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise PySpyError(
                f"py-spy did not finish within {timeout_s:g} s; killed, no profile written"
            ) from None
        self._reader.join(timeout=2.0)
        if check:
            if self.proc.returncode != 0:
                raise _failure(self.pid, self.proc.returncode, self.output)
            if not self.out_path.is_file() or self.out_path.stat().st_size == 0:
                raise PySpyError(f"py-spy wrote no profile to {self.out_path}: "
                                 f"{(self._lines or ['no output'])[-1]}")
        return self.out_path

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.stop(check=False)


def record_pid(pid: int, out_path: str | os.PathLike[str], *, duration_s: float | None = None,
               rate_hz: int = 100, fmt: str = "speedscope", native: bool = False,
               idle: bool = False, nonblocking: bool = False, subprocesses: bool = False,
               startup_timeout_s: float = 5.0, exe: str | None = None) -> Recording:
    """Attach to a running process and record until ``stop()`` or ``duration_s``.

    Needs ptrace rights (see :data:`PTRACE_HINT`); returns once py-spy has actually
    started sampling, so a refusal raises here rather than at ``stop()``.
    """
    path = _require_pyspy(exe)
    cmd = [path, "record", "--pid", str(int(pid)),
           *_record_options(out_path, rate_hz, fmt, native, idle, nonblocking)]
    if duration_s is not None:
        if duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {duration_s}")
        cmd += ["-d", str(max(1, round(duration_s)))]  # py-spy takes whole seconds
    if subprocesses:
        cmd.append("--subprocesses")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=_pyspy_env())
    except OSError as exc:
        raise PySpyUnavailable(f"{INSTALL_HINT} (cannot run {path}: {exc.strerror or exc})") from None
    recording = Recording(proc, int(pid), Path(out_path))
    recording._wait_started(startup_timeout_s)
    return recording


# ------------------------------------------------------------------- speedscope
def validate_speedscope(path: str | os.PathLike[str], top_n: int = 10) -> dict[str, Any]:
    """Check a speedscope file (as py-spy writes it) and summarize it.

    Returns ``n_samples``, ``n_profiles``, ``n_frames``, ``duration_s`` (sum of weights,
    sampled-time seconds), ``exporter`` and ``top_frames`` (self and total sample counts
    per frame, hottest first). Raises :class:`SpeedscopeError` with one line otherwise.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except OSError as exc:
        raise SpeedscopeError(f"cannot read {file}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpeedscopeError(f"{file} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SpeedscopeError(f"{file}: top level is not an object")
    if data.get("$schema") != SPEEDSCOPE_SCHEMA:
        raise SpeedscopeError(f"{file}: $schema is {data.get('$schema')!r}, not {SPEEDSCOPE_SCHEMA}")
    shared = data.get("shared")
    frames = shared.get("frames") if isinstance(shared, dict) else None
    if not isinstance(frames, list) or not all(isinstance(f, dict) and "name" in f for f in frames):
        raise SpeedscopeError(f"{file}: shared.frames is missing or not a list of named frames")
    profiles = data.get("profiles")
    if not isinstance(profiles, list) or not profiles:
        raise SpeedscopeError(f"{file}: no profiles")
    self_counts: collections.Counter[int] = collections.Counter()
    total_counts: collections.Counter[int] = collections.Counter()
    n_samples = 0
    duration_s = 0.0
    for number, profile in enumerate(profiles):
        if not isinstance(profile, dict):
            raise SpeedscopeError(f"{file}: profile {number} is not an object")
        if profile.get("type") != "sampled":
            raise SpeedscopeError(
                f"{file}: profile {number} is {profile.get('type')!r}; only 'sampled' "
                "profiles (what py-spy writes) are supported"
            )
        stacks, weights = profile.get("samples"), profile.get("weights")
        if not isinstance(stacks, list) or not isinstance(weights, list):
            raise SpeedscopeError(f"{file}: profile {number} lacks samples/weights lists")
        if len(stacks) != len(weights):
            raise SpeedscopeError(
                f"{file}: profile {number} has {len(stacks)} samples but {len(weights)} weights"
            )
        for stack in stacks:
            if not isinstance(stack, list) or not all(
                isinstance(i, int) and 0 <= i < len(frames) for i in stack
            ):
                raise SpeedscopeError(f"{file}: profile {number} has a stack with an unknown frame index")
            if stack:
                self_counts[stack[-1]] += 1  # speedscope stacks run outermost -> innermost
                for index in set(stack):
                    total_counts[index] += 1
        n_samples += len(stacks)
        duration_s += sum(float(w) for w in weights)
    ranked = sorted(total_counts, key=lambda i: (-self_counts[i], -total_counts[i], i))[:top_n]
    top_frames = [
        {"name": frames[i].get("name"), "file": frames[i].get("file"), "line": frames[i].get("line"),
         "self_samples": self_counts[i], "total_samples": total_counts[i]}
        for i in ranked
    ]
    return {
        "path": str(file), "exporter": data.get("exporter"), "n_profiles": len(profiles),
        "n_frames": len(frames), "n_samples": n_samples, "duration_s": duration_s,
        "top_frames": top_frames,
    }


__all__ = [
    "FrameCount", "HotFrames", "INSTALL_HINT", "PTRACE_HINT", "PySpyError", "PySpyUnavailable",
    "RECORD_FORMATS", "Recording", "SPEEDSCOPE_SCHEMA", "SpeedscopeError", "StackFrame",
    "AGGREGATE_BY", "ThreadStack", "aggregate_stacks", "dump", "find_pyspy", "hottest_frames",
    "is_pyspy_output", "parse_dump_json", "pyspy_state", "record_command", "record_pid", "validate_speedscope",
]
