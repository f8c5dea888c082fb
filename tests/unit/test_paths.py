"""flashtui.paths: each on-disk location, its platform default and its env override."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import platformdirs
import pytest

from flashtui import paths

REPO = Path(__file__).resolve().parents[2]


def test_env_overrides_place_every_location(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("FLASHTUI_CACHE_DIR", str(tmp_path / "k"))
    monkeypatch.setenv("FLASHTUI_SCREENSHOT_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "t"))
    (tmp_path / "t").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches; read TMPDIR again
    assert paths.data_dir() == tmp_path / "d"
    assert paths.sessions_dir() == tmp_path / "d" / "sessions"
    assert paths.profiles_dir() == paths.sessions_dir()
    assert paths.config_dir() == tmp_path / "c"
    assert paths.config_file() == tmp_path / "c" / "config.toml"
    assert paths.user_themes_dir() == tmp_path / "c" / "themes"
    assert paths.cache_dir() == tmp_path / "k"
    assert paths.screenshots_dir() == tmp_path / "s"
    assert paths.worker_log_dir() == tmp_path / "t"
    monkeypatch.setenv("FLASHTUI_FALLBACK_DIRS", os.pathsep.join([str(tmp_path / "f1"), str(tmp_path / "f2")]))
    assert paths.fallback_sessions_dirs() == [tmp_path / "f1", tmp_path / "f2"] and paths.fallback_dirs_chosen()


def test_default_fallback_places_are_per_user_in_tmp_then_shm(tmp_path, monkeypatch):
    monkeypatch.delenv("FLASHTUI_FALLBACK_DIRS", raising=False)
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    user = f"flashtui-{os.getuid()}"
    assert paths.fallback_sessions_dirs() == [tmp_path / user / "sessions", Path("/dev/shm") / user / "sessions"]
    assert not paths.fallback_dirs_chosen()


def test_override_expands_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FLASHTUI_DATA_DIR", "~/flash-data")
    assert paths.data_dir() == tmp_path / "flash-data"


@pytest.mark.parametrize("env, func, default", [
    ("FLASHTUI_DATA_DIR", paths.data_dir, platformdirs.user_data_dir),
    ("FLASHTUI_CONFIG_DIR", paths.config_dir, platformdirs.user_config_dir),
    ("FLASHTUI_CACHE_DIR", paths.cache_dir, platformdirs.user_cache_dir),
])
def test_defaults_are_the_platform_dirs(env, func, default, monkeypatch):
    monkeypatch.delenv(env, raising=False)
    assert func() == Path(default("flashtui", appauthor=False))


def test_an_empty_override_means_the_default(monkeypatch):
    monkeypatch.setenv("FLASHTUI_SCREENSHOT_DIR", "")
    assert paths.screenshots_dir() == Path.cwd()


def test_no_other_module_asks_platformdirs_or_reads_a_dir_env_itself():
    """paths.py is the one place: no other module imports platformdirs or reads a *_DIR env."""
    offenders = []
    for file in sorted((REPO / "flashtui").rglob("*.py")):
        if file.name == "paths.py" and file.parent.name == "flashtui":
            continue
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n.split(".")[0] == "platformdirs" for n in names):
                    offenders.append(f"{file.relative_to(REPO)}:{node.lineno} imports platformdirs")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.startswith("FLASHTUI_") and node.value.endswith(("_DIR", "_DIRS")):
                offenders.append(f"{file.relative_to(REPO)}:{node.lineno} names {node.value}")
    assert offenders == []
