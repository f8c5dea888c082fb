"""The worker on another host, over ``ssh -T``: the transport, its checks, its one-line errors.

``flashtui --host HOST`` and ``flashtui bench --host HOST`` run the worker as
``ssh -T HOST env VAR=... python3 -m flashtui.worker``: the same JSON lines over the
same stdio, so :class:`RemoteWorkerClient` is a :class:`WorkerClient` whose spawn
command goes through ssh. The session, the journal and the UI stay on this machine.

* ``FLASHTUI_SSH`` replaces the ssh command (as ``GIT_SSH_COMMAND`` does for git), split
  with shlex: ``ssh -p 2222 -i KEY -o UserKnownHostsFile=...``. flashtui appends
  ``-T``, ``BatchMode=yes`` (a password prompt would corrupt the TUI), a 20 s connect timeout
  and server keep-alives (a silently dropped link is noticed in ~45 s); ssh takes the first value given for an
  option, so the user's own ``-o`` settings win.
* ssh does not forward the environment: the variables the remote worker needs are put on
  its command line (``env VAR=...``): ``PYTHONUNBUFFERED``, the engine's own knobs when set
  here (:data:`ENGINE_ENV`), and ``FLASHTUI_REMOTE_ENV`` (``"PYTHONPATH=/src CUDA_VISIBLE_DEVICES=1"``).
* Before the first worker, one short ssh call runs a pre-flight (:data:`HELLO`): it imports
  flashtui there (no torch) and reports its version, hostname and py-spy. Its failures
  become one line each (:func:`ssh_failure`): unknown host, refused connection, host key,
  authentication, no such interpreter, flashtui missing, another flashtui version.
* A dropped connection is a dead worker: ssh exits, the client sees EOF, and
  ``WorkerClient.run_sweep`` marks the cell failed and starts a fresh worker (over ssh).
* NVML on the remote GPU: a second ssh process runs ``python3 -m flashtui.monitor.nvml_stream``
  (a sampler process beside the worker, not a thread inside it, so it never shares the
  measured code's GIL); :class:`RemoteNvmlSampler` reads its samples into the local
  :class:`NvmlSampler` bookkeeping, so the recorder and the TUI see the same interface.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashtui import __version__
from flashtui.client.worker_client import WorkerClient
from flashtui.errors import UsageError, WorkerError
from flashtui.core.protocol import WorkerReady
from flashtui.monitor.nvml import NvmlSampler, NvmlStatus, Sample, device_hint_from_provenance

SSH_ENV = "FLASHTUI_SSH"
REMOTE_ENV = "FLASHTUI_REMOTE_ENV"
# Variables the engine reads, forwarded when set here (fault injection in tests, full probe).
ENGINE_ENV = ("FLASHTUI_INJECT_FAULT", "FLASHTUI_PROBE_FULL")
DEFAULT_REMOTE_PYTHON = "python3"
PREFLIGHT_TIMEOUT_S = 60.0
_HELLO_MARK = "FLASHTUI-HELLO "
# Runs on the remote host with its python: stdlib + flashtui's __init__ only (any version).
# py-spy as monitor.pyspy.find_pyspy looks for it: beside the interpreter, then on PATH.
HELLO = (
    "import json, os, shutil, socket, sys, flashtui; "
    "b = os.path.join(os.path.dirname(sys.executable), 'py-spy'); "
    f"print({_HELLO_MARK!r} + json.dumps({{'flashtui': getattr(flashtui, '__version__', None), "
    "'hostname': socket.gethostname(), 'python': sys.version.split()[0], "
    "'executable': sys.executable, "
    "'py_spy': b if os.access(b, os.X_OK) else shutil.which('py-spy')}), flush=True)"
)


@dataclass(frozen=True)
class SshTarget:
    """Where the remote worker runs and how to reach it."""

    host: str
    ssh: tuple[str, ...] = ("ssh",)
    python: tuple[str, ...] = (DEFAULT_REMOTE_PYTHON,)
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, host: str, remote_python: str | None = None,
                     environ: dict[str, str] | None = None) -> "SshTarget":
        """From ``--host``/``--remote-python`` and the environment; bad values are UsageError."""
        environ = dict(os.environ if environ is None else environ)
        host = (host or "").strip()
        if not host or host.startswith("-") or any(c.isspace() for c in host):
            raise UsageError(f"--host must be a host name (or user@host), got {host!r}")
        try:
            ssh = tuple(shlex.split(environ.get(SSH_ENV) or "ssh"))
            python = tuple(shlex.split(remote_python or DEFAULT_REMOTE_PYTHON))
            extra = shlex.split(environ.get(REMOTE_ENV) or "")
        except ValueError as exc:
            raise UsageError(f"{SSH_ENV}/{REMOTE_ENV}/--remote-python: {exc}") from None
        if not ssh:
            raise UsageError(f"{SSH_ENV} is empty; unset it or give an ssh command")
        if not python:
            raise UsageError("--remote-python is empty")
        env = {"PYTHONUNBUFFERED": "1"}
        env.update({name: environ[name] for name in ENGINE_ENV if environ.get(name)})
        for item in extra:
            name, sep, value = item.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise UsageError(f"{REMOTE_ENV} takes NAME=VALUE words, got {item!r}")
            env[name] = value
        return cls(host=host, ssh=ssh, python=python, env=env)

    @property
    def python_name(self) -> str:
        return " ".join(self.python)

    def ssh_argv(self, remote_words: list[str]) -> list[str]:
        """The local argv: ssh, its options, the host, and the remote command as one quoted string."""
        options = ["-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=15",
                   "-o", "ServerAliveCountMax=3"]
        return [*self.ssh, *options, self.host, shlex.join(remote_words)]

    def python_argv(self, args: list[str], prefix: list[str] | None = None) -> list[str]:
        """``env VAR=... [prefix...] python args`` on the remote side, as ssh argv."""
        env_words = [f"{k}={v}" for k, v in self.env.items()]
        return self.ssh_argv(["env", *env_words, *(prefix or []), *self.python, *args])


def ssh_failure(target: SshTarget, returncode: int | None, stderr: str) -> str | None:
    """One line for a failed ssh or remote interpreter, or None when nothing is recognised."""
    host = target.host
    text = stderr or ""
    lowered = text.lower()
    if "could not resolve hostname" in lowered:
        return f"ssh: could not resolve host {host}"
    if "host key verification failed" in lowered or "remote host identification has changed" in lowered:
        return f"host key verification failed for {host}"
    match = re.search(r"permission denied \(([^)]*)\)", lowered)
    if match:
        return f"permission denied ({match.group(1)}) for {host}"
    match = re.search(r"connect to host \S+ port (\d+): ([^\r\n]+)", text)
    if match:
        return f"ssh: cannot connect to {host} (port {match.group(1)}): {match.group(2).strip().lower()}"
    # The package itself, not one of its modules (that is a broken install, said as is).
    if re.search(r"no module named '?flashtui'?(?![.\w])", lowered):
        return f"flashtui is not installed for {target.python_name} on {host}"
    if returncode == 127:  # env / the shell: no such interpreter
        return f"{target.python_name} was not found on {host}: {_last_line(text) or 'exit 127'}"
    if returncode == 255:
        return f"ssh to {host} failed: {_last_line(text) or 'exit 255, no message'}"
    return None


def version_mismatch(target: SshTarget, remote_version: str | None) -> str | None:
    if remote_version == __version__:
        return None
    return f"{target.host} runs flashtui {remote_version or 'unknown'}, this is {__version__}"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def preflight(target: SshTarget, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> dict[str, Any]:
    """Reach the host, import flashtui there, compare versions; WorkerError with one line."""
    argv = target.python_argv(["-c", HELLO])
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout_s)
    except FileNotFoundError:
        raise WorkerError(f"cannot run ssh ({argv[0]}): not found; set {SSH_ENV} or install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise WorkerError(f"ssh to {target.host} did not answer within {timeout_s:.0f} s") from None
    hello = None
    for line in done.stdout.splitlines():
        if line.startswith(_HELLO_MARK):
            try:
                hello = json.loads(line[len(_HELLO_MARK):])
            except json.JSONDecodeError:
                pass
    if done.returncode != 0 or not isinstance(hello, dict):
        reason = ssh_failure(target, done.returncode, done.stderr)
        raise WorkerError(reason or f"the pre-flight on {target.host} exited {done.returncode}: "
                                    f"{_last_line(done.stderr) or 'no output'}")
    mismatch = version_mismatch(target, hello.get("flashtui"))
    if mismatch:
        raise WorkerError(mismatch)
    return hello


# The commands that can use a remote worker (cli refuses --host before any other).
HOST_COMMANDS = (None, "tui", "bench", "serve")  # serve: each connection's TUI runs with --host


def add_host_arguments(parser: Any, *, sub: bool = False) -> None:
    """``--host`` and ``--remote-python``, shared by the TUI and ``flashtui bench``.

    ``sub``: on a subcommand, an absent flag leaves the top-level value alone
    (``flashtui --host box bench`` runs on box; argparse would otherwise reset it to None)."""
    import argparse

    default = {"default": argparse.SUPPRESS} if sub else {}
    parser.add_argument("--host", metavar="HOST", **default,
                        help=f"run the worker on HOST over ssh -T ({SSH_ENV} replaces the ssh command; "
                             f"{REMOTE_ENV}='NAME=VALUE ...' sets its environment there)")
    parser.add_argument("--remote-python", metavar="PYTHON", **default,
                        help=f"the interpreter on --host that has flashtui (default {DEFAULT_REMOTE_PYTHON})")


def remote_profile_launcher(hello: dict[str, Any], host: str, remote_path: str) -> list[str]:
    """The py-spy record prefix for the worker on ``host`` (py-spy found there by the pre-flight)."""
    from flashtui.monitor.pyspy import record_command

    if not hello.get("py_spy"):
        raise UsageError(f"--profile needs py-spy on {host}: pip install py-spy there")
    return record_command(remote_path, exe=str(hello["py_spy"]), check_exe=False)


def pyspy_hint(host: str) -> str:
    """Why the TUI's py-spy panel and record key are off for a worker on ``host``."""
    return (f"py-spy of the worker on {host} is not shown in the TUI; record one with "
            f"flashtui bench --host {host} --profile PATH")


def tui_factories(target: SshTarget) -> tuple[Any, Any]:
    """The TUI's worker and sampler factories for ``target``, after a pre-flight (WorkerError:
    one line, before the screen is taken over)."""
    hello = preflight(target)

    def worker_factory() -> RemoteWorkerClient:
        client = RemoteWorkerClient(target)
        client.hello = hello
        return client

    def sampler_factory(ready: WorkerReady, rate_hz: float | None = None) -> RemoteNvmlSampler:
        hint = device_hint_from_provenance(ready.provenance)
        kwargs: dict[str, Any] = {} if rate_hz is None else {"rate_hz": rate_hz}
        return RemoteNvmlSampler(target, pid=ready.pid, **kwargs, **hint)

    sampler_factory.takes_rate_hz = True  # type: ignore[attr-defined] - the app passes its setting
    return worker_factory, sampler_factory


class RemoteWorkerClient(WorkerClient):
    """A WorkerClient whose worker runs on ``target.host`` behind ``ssh -T``.

    ``launcher`` here is a *remote* prefix (``py-spy record -o /tmp/x --``): it runs on the
    host, inside the ssh command. ``pid`` is the worker's pid on the host (what NVML and
    py-spy there see); ``local_pid`` is the ssh process here.
    """

    def __init__(self, target: SshTarget, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.remote_host = target.host
        self.hello: dict[str, Any] | None = None

    @property
    def pid(self) -> int | None:
        return self.ready.pid if self.ready is not None and self.alive else None

    @property
    def local_pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        return self.target.python_argv(["-m", "flashtui.worker"], prefix=self.launcher)

    def start(self) -> WorkerReady:
        if self.alive and self.ready is not None:
            return self.ready
        if self.hello is None:
            self.hello = preflight(self.target)
        ready = super().start()
        # Provenance names the host as ssh reached it, beside the worker's own hostname.
        self.ready = ready.replace(provenance={**ready.provenance, "remote_host": self.target.host})
        return self.ready

    def not_ready_reason(self) -> str:
        proc = self.proc
        tail = self.stderr_tail(max_lines=5)
        mapped = ssh_failure(self.target, proc.returncode if proc else None, tail)
        return mapped or super().not_ready_reason()

    def death_reason(self) -> str:
        """ssh's exit 255 mid-sweep is the link, not the worker: say so."""
        proc = self.proc
        if proc is not None and proc.returncode == 255:
            tail = self.stderr_tail()
            return f"the ssh connection to {self.target.host} dropped" + (f": {tail}" if tail else "")
        return super().death_reason()

    def check_ready(self, ready: WorkerReady) -> None:
        """The worker's own word on its version (the pre-flight may have met another python)."""
        mismatch = version_mismatch(self.target, ready.flashtui_version)
        if mismatch:
            self.kill()
            raise WorkerError(mismatch)

    def fetch_file(self, remote_path: str, local_path: Path, *, remove: bool = True,
                   timeout_s: float = 120.0) -> None:
        """Copy one file from the host (``cat`` over ssh), then delete it there."""
        words = ["cat", remote_path]
        if remove:
            words = ["sh", "-c", f"cat {shlex.quote(remote_path)} && rm -f {shlex.quote(remote_path)}"]
        with open(local_path, "wb") as out:
            done = subprocess.run(self.target.ssh_argv(words), stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.PIPE, timeout=timeout_s)
        if done.returncode != 0:
            raise OSError(ssh_failure(self.target, done.returncode, done.stderr.decode(errors="replace"))
                          or f"cannot copy {remote_path} from {self.target.host}: "
                             f"{_last_line(done.stderr.decode(errors='replace'))}")

    def nvml_sampler(self, ready: WorkerReady, rate_hz: float | None = None) -> "RemoteNvmlSampler":
        """An NVML sampler on the host's GPU (the worker's, found by its PCI bus id)."""
        hint = device_hint_from_provenance(ready.provenance)
        kwargs: dict[str, Any] = {} if rate_hz is None else {"rate_hz": rate_hz}
        return RemoteNvmlSampler(self.target, pid=ready.pid, **kwargs, **hint)


class RemoteNvmlSampler(NvmlSampler):
    """NvmlSampler's interface over ``ssh HOST python3 -m flashtui.monitor.nvml_stream``.

    Samples keep the host's ``wall_time`` (the worker's cell timestamps are host clock
    too, so ``window(..., clock="wall")`` lines them up); ``t_s`` is rewritten to this
    process's monotonic clock on arrival, for the TUI's "since" filters.
    """

    STATUS_WAIT_S = 30.0

    def __init__(self, target: SshTarget, *, pid: int | None = None, **kwargs: Any) -> None:
        super().__init__(pid=None, **kwargs)
        self.target = target
        self._remote_pid = pid
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._got_status = threading.Event()
        self._remote_stats: dict[str, Any] | None = None
        self._stderr_lines: list[str] = []

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def watch_pid(self, pid: int | None) -> None:
        self._remote_pid = pid
        self._send(f"pid {pid if pid is not None else 'none'}")

    def _send(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        except OSError:
            pass

    def start(self) -> NvmlStatus:
        if self.running:
            return self._status
        args = ["-m", "flashtui.monitor.nvml_stream", "--rate-hz", f"{self.rate_hz:g}"]
        for flag, key in (("--pci-bus-id", "pci_bus_id"), ("--uuid", "uuid"), ("--index", "index")):
            if self._device_hint.get(key) is not None:
                args += [flag, str(self._device_hint[key])]
        if self._remote_pid is not None:
            args += ["--pid", str(self._remote_pid)]
        try:
            self._proc = subprocess.Popen(self.target.python_argv(args), stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            self._status = NvmlStatus(False, f"cannot start the NVML sampler on {self.target.host}: {exc}")
            return self._status
        self._status = NvmlStatus(False, f"waiting for the NVML sampler on {self.target.host}")
        threading.Thread(target=self._read_stderr, daemon=True, name="flashtui-nvml-ssh-err").start()
        self._reader = threading.Thread(target=self._read, daemon=True, name="flashtui-nvml-ssh")
        self._reader.start()
        self._got_status.wait(self.STATUS_WAIT_S)
        return self._status

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr_lines = (self._stderr_lines + [line])[-20:]

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        known = set(Sample.__dataclass_fields__)
        for line in proc.stdout:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(item, dict):
                continue
            if "status" in item:
                data = dict(item["status"])
                data["device_names"] = tuple(data.get("device_names") or ())
                self._status = NvmlStatus(**{k: v for k, v in data.items()
                                             if k in NvmlStatus.__dataclass_fields__})
                self._got_status.set()
            elif "sample" in item:
                values = {k: v for k, v in item["sample"].items() if k in known}
                values["t_s"] = time.monotonic()
                sample = Sample(**values)
                self._n_samples += 1
                cost = sample.sample_cost_s or 0.0
                self._total_cost_s += cost
                self._max_cost_s = max(self._max_cost_s, cost)
                self._publish(sample)
            elif "stats" in item:
                self._remote_stats = item["stats"]
        proc.wait()
        if not self._got_status.is_set():
            stderr = "".join(self._stderr_lines)
            why = ssh_failure(self.target, proc.returncode, stderr) or _last_line(stderr) or \
                f"exited {proc.returncode}"
            self._status = NvmlStatus(False, f"the NVML sampler on {self.target.host} did not start: {why}")
            self._got_status.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        self._send("stop")
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=timeout_s)
        self._proc = None

    def stats(self) -> dict[str, Any]:
        data = super().stats()
        if self._remote_stats:
            for key in ("field_errors", "device_how", "device_note", "sample_errors", "last_sample_error"):
                if key in self._remote_stats:
                    data[key] = self._remote_stats[key]
        data["host"] = self.target.host
        return data


__all__ = ["HOST_COMMANDS", "add_host_arguments", "pyspy_hint", "remote_profile_launcher", "tui_factories", "ENGINE_ENV", "HELLO", "REMOTE_ENV", "SSH_ENV", "RemoteNvmlSampler", "RemoteWorkerClient",
           "SshTarget", "preflight", "ssh_failure", "version_mismatch"]
