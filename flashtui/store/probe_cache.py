"""The doctor's cached answer: one JSON file per set of options, under the cache dir.

A file holds what the worker answered (its WorkerReady data and the Probe result), when
(``probed_at_unix``), and the environment fingerprint it was measured under
(flashtui.client.environment.fingerprint). :func:`load` gives it back only while the
fingerprint is unchanged; otherwise it says what changed, so the doctor can say why it
probes again. Written atomically: a reader sees the old answer or the new one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashtui.errors import StorageError
from flashtui.store.atomic import atomic_write_bytes

FORMAT = {"name": "flashtui.doctor.cache", "version": 1}


@dataclass
class Lookup:
    """``entry`` when the cache answers; else ``changes`` says why not (empty: no file)."""

    path: Path
    entry: dict[str, Any] | None = None
    changes: list[str] = field(default_factory=list)

    def age_s(self, now_unix: float | None = None) -> float | None:
        if self.entry is None:
            return None
        return max(0.0, (now_unix or time.time()) - float(self.entry["probed_at_unix"]))


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs, as short phrases: 'flash_attn_4 4.0.0b35 -> 4.0.0b36'."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            changes.extend(f"{k} {a.get(k) or 'absent'} -> {b.get(k) or 'absent'}"
                           for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
        else:
            changes.append(f"{key} changed" if key in ("gpus", "probe_code") else f"{key} {a} -> {b}")
    return changes


def cache_file(root: Path, options: dict[str, Any]) -> Path:
    """``<root>/doctor/probe-<device>-<quick|full>-<fastest|nofastest>.json``."""
    name = (f"probe-{options.get('device') or 'auto'}-{'full' if options.get('full') else 'quick'}-"
            f"{'fastest' if options.get('fastest', True) else 'nofastest'}.json")
    return root / "doctor" / name


def load(path: Path, fingerprint: dict[str, Any]) -> Lookup:
    """The cached entry when its fingerprint equals ``fingerprint``. Never raises."""
    try:
        entry = json.loads(path.read_text())
    except FileNotFoundError:
        return Lookup(path)
    except (OSError, ValueError) as exc:
        return Lookup(path, changes=[f"unreadable cache file ({type(exc).__name__})"])
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        return Lookup(path, changes=["cache file of another format"])
    if entry.get("fingerprint") != fingerprint:
        return Lookup(path, changes=fingerprint_changes(entry.get("fingerprint") or {}, fingerprint)
                      or ["fingerprint changed"])
    if not isinstance(entry.get("ready"), dict) or not isinstance(entry.get("probe"), dict):
        return Lookup(path, changes=["incomplete cache file"])
    return Lookup(path, entry)


def save(path: Path, fingerprint: dict[str, Any], ready: dict[str, Any], probe: dict[str, Any],
         probed_at_unix: float) -> str | None:
    """Write the entry atomically; a refusal is returned as one line (the answer stands)."""
    entry = {"format": dict(FORMAT), "probed_at_unix": probed_at_unix, "fingerprint": fingerprint,
             "ready": ready, "probe": probe}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(entry, indent=1) + "\n").encode())
    except OSError as exc:
        return f"cannot write the doctor cache {path}: {exc.strerror or exc}"
    except StorageError as exc:
        return str(exc)
    return None


__all__ = ["FORMAT", "Lookup", "fingerprint_changes", "cache_file", "load", "save"]
