"""Which sweeps are running right now: one small marker file per open journal.

``<sessions dir>/.live/<session id>.json`` holds the writer's pid, host and device. It
is written (atomically) when a sweep's journal opens and removed when it closes; a
marker whose process is gone (SIGKILL, power loss) is ignored and cleared by the next
reader. Two uses: ``flashtui bench`` warns when another sweep measures on the same
device (their timings disturb each other), and ``flashtui sessions`` shows a journal
without footer as ``running`` rather than ``incomplete`` while its writer lives.

Best effort by design: a data directory that cannot take the marker (read-only, full)
costs only this warning, never the sweep.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

from flashtui.core.session import Session

LIVE_DIR = ".live"


def device_key(spec: dict[str, Any], provenance: dict[str, Any]) -> str:
    """Names one device across processes: the GPU's UUID/PCI id, or this host's CPU
    (a worker reached over ssh: prefixed by its host, ``gpu-box/cpu``)."""
    host = provenance.get("remote_host")
    prefix = f"{host}/" if host else ""
    if spec.get("device") == "cpu" or provenance.get("device_kind") != "cuda":
        return prefix + "cpu"
    for key in ("uuid", "pci_bus_id"):
        if provenance.get(key):
            return f"{prefix}cuda:{provenance[key]}"
    return f"{prefix}cuda:{provenance.get('device_name')}:{provenance.get('device_index', 0)}"


def describe(marker: dict[str, Any]) -> str:
    """``session X (pid N, bench)`` for a warning."""
    return f"session {marker.get('session_id')} (pid {marker.get('pid')}, {marker.get('command', 'flashtui')})"


def mark(sessions_dir: Path, session: Session, command: str | None = None) -> Callable[[], None]:
    """Write the marker of ``session``; return the function that removes it."""
    from flashtui.store.atomic import atomic_write_text

    folder = sessions_dir / LIVE_DIR
    path = folder / f"{session.id}.json"
    marker = {
        "session_id": session.id, "pid": os.getpid(), "host": socket.gethostname(),
        "device": device_key(session.spec, session.provenance),
        "device_name": session.provenance.get("device_name"),
        "started_at": time.time(), "start_ticks": _start_ticks(os.getpid()),
        "command": command or _command_name(),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(marker) + "\n")
    except Exception:  # noqa: BLE001 - best effort: see the module docstring
        return lambda: None

    def remove() -> None:
        try:
            path.unlink()
        except OSError:
            pass
    return remove


def running(sessions_dir: Path) -> list[dict[str, Any]]:
    """Markers of sweeps whose process is alive on this host (stale ones are removed)."""
    folder = sessions_dir / LIVE_DIR
    try:
        entries = sorted(folder.glob("*.json"))
    except OSError:
        return []
    host = socket.gethostname()
    out = []
    for path in entries:
        try:
            marker = json.loads(path.read_text(encoding="utf-8"))
            pid = int(marker["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: skip, never fail a listing
        if marker.get("host") != host:
            continue  # a shared data dir: another host's sweep does not disturb ours
        if not _alive(pid, marker.get("start_ticks")):
            try:
                path.unlink()
            except OSError:
                pass
            continue
        out.append(marker)
    return out


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (None where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): tells a reused pid from the writer."""
    fields = _proc_stat(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def _alive(pid: int, start_ticks: Any = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc: trust kill(0)
    if fields[0] == "Z":
        return False  # a zombie holds nothing and will never finish its journal
    return start_ticks is None or _start_ticks(pid) == start_ticks


def _command_name() -> str:
    import sys

    word = sys.argv[1] if len(sys.argv) > 1 else ""
    return f"flashtui {word}" if word and not word.startswith("-") else "flashtui"


__all__ = ["LIVE_DIR", "describe", "device_key", "mark", "running"]
