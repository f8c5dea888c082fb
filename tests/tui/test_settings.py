"""Themes as data files, the config file, and their failure modes (notification + defaults)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flashtui.testing import wait_for
from flashtui.tui import config as cfg
from flashtui.tui import themes
from flashtui.tui.app import FlashTuiApp
from flashtui.tui.toml_reader import tomllib

REPO = Path(__file__).resolve().parents[2]


def test_shipped_themes_load():
    loaded, errors = themes.load_theme_dir(REPO / "themes")
    names = {t.name for t in loaded}
    assert errors == []
    assert {"flashtui-dark", "flashtui-light", "flashtui-high-contrast"} <= names
    assert any(not t.dark for t in loaded)


@pytest.mark.parametrize("text, why", [
    ('name = "x"\nprimary = "not-a-colour"\n', "is not a colour"),
    ('primary = "#fff"\n', "needs a name"),
    ('name = "x"\n', "needs a primary"),
    ('name = "x"\nprimary = "#fff"\nsparkle = 1\n', "unknown key"),
    ('name = = "x"', "not valid TOML"),
])
def test_broken_theme_is_one_readable_line(text, why):
    with pytest.raises(ValueError, match=why):
        themes.parse_theme(text, "bad.toml")


def test_config_roundtrip_and_corrupt(tmp_path):
    path = tmp_path / "config.toml"
    assert cfg.load_config(path) == (cfg.TuiConfig(), None)
    cfg.save_config(cfg.TuiConfig(theme="flashtui-light", nvml_rate_hz=20.0), path)
    assert tomllib.loads(path.read_text())["theme"] == "flashtui-light"
    assert cfg.load_config(path) == (cfg.TuiConfig(theme="flashtui-light", nvml_rate_hz=20.0), None)
    path.write_text("theme = [1, 2\n")
    config, error = cfg.load_config(path)
    assert config == cfg.TuiConfig() and "not valid TOML" in error
    path.write_text('theme = 3\nwhat = "x"\n')
    config, error = cfg.load_config(path)
    assert config.theme == cfg.DEFAULT_THEME and "theme must be a str" in error and "unknown key" in error


def test_config_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(tmp_path / "c"))
    assert cfg.config_file() == tmp_path / "c" / "config.toml"


async def test_switch_theme_binding_and_palette_persist_to_config(isolated_dirs):
    app = FlashTuiApp(worker_factory=None)
    path = isolated_dirs / "config" / "config.toml"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "flashtui-dark"
        await pilot.press("ctrl+t")
        await pilot.pause(0.1)
        assert app.theme != "flashtui-dark"
        await wait_for(pilot, lambda: path.exists(), 5, "config written")
        assert tomllib.loads(path.read_text())["theme"] == app.theme
        # Any theme set from the command palette goes the same way (theme_changed_signal).
        app.theme = "flashtui-high-contrast"
        await pilot.pause(0.1)
        assert tomllib.loads(path.read_text())["theme"] == "flashtui-high-contrast"
    # Next start: remembered.
    app2 = FlashTuiApp(worker_factory=None)
    async with app2.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app2.theme == "flashtui-high-contrast"


async def test_corrupt_config_and_broken_user_theme_notify_and_fall_back(isolated_dirs):
    config_dir = isolated_dirs / "config"
    (config_dir / "themes").mkdir(parents=True)
    (config_dir / "config.toml").write_text('theme = "mine"\n[[[broken')
    (config_dir / "themes" / "mine.toml").write_text('name = "mine"\nprimary = "bluish"\n')
    app = FlashTuiApp(worker_factory=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        notes = [n.message for n in app._notifications]
        assert any("not valid TOML" in n and "using defaults" in n for n in notes)
        assert any("mine.toml" in n and "not a colour" in n for n in notes)
        assert app.theme == "flashtui-dark"
        assert app.screen.id == "setup"  # the UI is up, not a traceback


async def test_missing_theme_in_config_falls_back(isolated_dirs):
    config_dir = isolated_dirs / "config"
    config_dir.mkdir()
    (config_dir / "config.toml").write_text('theme = "gone"\n')
    app = FlashTuiApp(worker_factory=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "flashtui-dark"
        assert any("'gone' is not available" in n.message for n in app._notifications)


async def test_invalid_seq_shows_spec_error_inline_and_refuses_to_run(isolated_dirs):
    app = FlashTuiApp(worker_factory=None, default_spec_overrides={"device": "cpu"})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        seqs = app.screen.query_one("#seqs")
        seqs.focus()
        seqs.value = ""
        await pilot.press(*"64,abc")
        await pilot.pause()
        error = str(app.screen.query_one("#spec-error").render())
        assert error == "✗ seq must be a positive integer, got 'abc'"
        assert seqs.has_class("-invalid-spec")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.id == "setup"
        assert any("seq must be a positive integer" in n.message for n in app._notifications)
        # Prefill without a model: the spec's own line.
        app.screen.query_one("#seqs").value = "64"
        app.screen.query_one("#mode").value = "prefill"
        await pilot.pause()
        assert "needs a model" in str(app.screen.query_one("#spec-error").render())


async def test_no_color_is_honoured(isolated_dirs, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = FlashTuiApp(worker_factory=None)
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        svg = app.export_screenshot()
        assert "Run" in svg


def test_ui_process_never_imports_torch():
    """The layer rule: building the app (and its screens) must not import torch."""
    code = (
        "import sys\n"
        "from flashtui.tui.app import FlashTuiApp\n"
        "from flashtui.tui.screens import run, setup, export\n"
        "from flashtui.tui.widgets import charts, memory_panel\n"
        "FlashTuiApp(worker_factory=None)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_tui_imports_textual():
    """No module outside flashtui/tui mentions textual in an import."""
    offenders = []
    for path in (REPO / "flashtui").rglob("*.py"):
        if "tui" in path.relative_to(REPO / "flashtui").parts[:1]:
            continue
        for line in path.read_text().splitlines():
            if line.strip().startswith(("import textual", "from textual")):
                offenders.append(str(path))
    assert offenders == []
