"""Shared fixtures: an isolated config/data dir and the tiny CPU sweep settings.

Fakes (scripted client, samplers, stored sessions, wait_for, screen_text) live in
``flashtui.testing``, importable by benchmarks too.
"""

from __future__ import annotations

import pytest

# A sweep that finishes in a few seconds on a 2-core CPU.
TINY_CPU = dict(device="cpu", backends=("standard", "sdpa-math", "sdpa-flash"),
                seqs=(64, 128), dtypes=("fp32",), reps=3, warmup_ms=5.0, heads=2, head_dim=32)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Config, data, cache and screenshots under tmp_path; never the user's real dirs."""
    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("FLASHTUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path
