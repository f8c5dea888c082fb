"""Shared fixtures: isolated data/config dirs so tests never touch the user's files."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir(tmp_path_factory):
    """Module-scoped fixtures run before the per-test dirs exist: they get this cache dir."""
    patch = pytest.MonkeyPatch()
    patch.setenv("FLASHTUI_CACHE_DIR", str(tmp_path_factory.mktemp("flashtui-cache")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.mktemp("flashtui-home")
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("FLASHTUI_CACHE_DIR", str(base / "cache"))
    monkeypatch.delenv("FLASHTUI_INJECT_FAULT", raising=False)
    yield
