"""Known noise in the worker's stderr, grouped instead of shown line by line.

Two kinds: the torch profiler's USDT trace lines (``USDT: ... SyncActivityProfilerHandler.cpp
... profiler_start`` / ``profiler_stop``, one pair per profiled cell) and Python library
warnings (``/.../torch/x.py:12: UserWarning: ...`` plus the indented source line that
``warnings`` prints after it, and transformers' well-known chatter). The full log is kept
elsewhere (the session's worker-log attachment); this only decides what the panel shows.
"""

from __future__ import annotations

import re
from typing import Iterable

PROFILER = "profiler"
WARNING = "warning"

_PROFILER_RE = re.compile(r"^\s*(\[stderr\]\s*)?USDT\b|SyncActivityProfilerHandler|profiler_(start|stop)\b")
_WARNING_RE = re.compile(r"^\s*(\[stderr\]\s*)?\S+\.py:\d+: \w*(Warning|Deprecation\w*): ")
_LIBRARY_CHATTER_RE = re.compile(
    r"^\s*(Some weights of|You should probably TRAIN this model|`torch_dtype` is deprecated|"
    r"Setting `pad_token_id`|The attention mask and the pad token id were not set)")

# What the panel calls each kind in its "N ... hidden" line.
KIND_WORDS = {PROFILER: "profiler lines", WARNING: "library warning lines"}


def classify(line: str) -> str | None:
    """PROFILER, WARNING, or None for a line worth showing."""
    if _PROFILER_RE.search(line):
        return PROFILER
    if _WARNING_RE.match(line) or _LIBRARY_CHATTER_RE.match(line):
        return WARNING
    return None


def split_noise(lines: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    """(lines to show, {kind: hidden count}); a warning's indented continuation goes with it."""
    kept: list[str] = []
    hidden: dict[str, int] = {}
    in_warning = False
    for line in lines:
        kind = classify(line)
        if kind is None and in_warning and line[:1].isspace():
            kind = WARNING  # `warnings.warn(...)`: the source line printed under a warning
        in_warning = kind == WARNING
        if kind is None:
            kept.append(line)
        else:
            hidden[kind] = hidden.get(kind, 0) + 1
    return kept, hidden


def hidden_summary(hidden: dict[str, int]) -> str | None:
    """'12 profiler lines hidden, 2 library warning lines hidden', None when nothing was."""
    parts = [f"{hidden[kind]} {KIND_WORDS[kind]} hidden" for kind in (PROFILER, WARNING) if hidden.get(kind)]
    return ", ".join(parts) or None
