"""Shared fixtures: isolated data/config dirs so tests never touch the user's files."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.mktemp("flashtui-home")
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(base / "config"))
    monkeypatch.delenv("FLASHTUI_INJECT_FAULT", raising=False)
    yield
