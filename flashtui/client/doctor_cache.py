"""The doctor's cached answer, as both front ends use it (``flashtui doctor`` and the TUI).

One place ties the environment fingerprint (client.environment) to the cache file
(store.probe_cache), so the CLI and the TUI's Doctor screen read and write the same
file for the same options: a ``flashtui doctor`` run answers the TUI's first visit and
the other way round. UI side: no torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashtui.client import environment
from flashtui.store import probe_cache


def probe_options(device: str | None = None, full: bool = False, fastest: bool = True) -> dict[str, Any]:
    """The options that pick the cache file and enter the fingerprint."""
    return {"device": device, "full": bool(full), "fastest": bool(fastest)}


@dataclass
class DoctorCache:
    """The cache for one set of options; :meth:`lookup` reads it, :meth:`save` writes it."""

    options: dict[str, Any] = field(default_factory=probe_options)
    path: Path | None = None
    fingerprint: dict[str, Any] | None = None
    env_preview: dict[str, Any] | None = None

    def lookup(self, fresh: bool = False) -> probe_cache.Lookup:
        """The cached entry while the fingerprint is unchanged (``fresh``: never). Computes
        the fingerprint (installed packages, NVML's GPUs: milliseconds, no torch)."""
        self.env_preview = environment.preview()
        self.fingerprint = environment.fingerprint(self.env_preview, self.options)
        self.path = probe_cache.cache_file(environment.cache_root(), self.options)
        if fresh:
            return probe_cache.Lookup(self.path)
        return probe_cache.load(self.path, self.fingerprint)

    def save(self, ready: dict[str, Any], result: dict[str, Any],
             probed_at_unix: float | None = None) -> str | None:
        """Store a finished probe (a poisoned CUDA context is that run's, not the box's:
        not stored). Returns a one-line refusal, or None when stored or skipped."""
        if (result.get("matrix") or {}).get("poisoned") or not result.get("matrix"):
            return None
        if self.fingerprint is None or self.path is None:
            self.lookup(fresh=True)
        assert self.path is not None and self.fingerprint is not None
        return probe_cache.save(self.path, self.fingerprint, ready, result,
                                time.time() if probed_at_unix is None else probed_at_unix)


def cached_provenance(lookup: probe_cache.Lookup) -> dict[str, Any]:
    """build_report's ``cache`` argument for an answer read from the cache."""
    assert lookup.entry is not None
    return {"cached": True, "cached_age_s": round(lookup.age_s() or 0.0, 1),
            "probed_at_unix": lookup.entry["probed_at_unix"], "path": str(lookup.path)}


__all__ = ["DoctorCache", "probe_options", "cached_provenance"]
