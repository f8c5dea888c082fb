"""The user's config.toml is never destroyed.

Real files, the real loader and writer, and the real app through Pilot: an unparsable
file is kept beside itself with the time (and the user told); a save keeps comments and
keys it does not own; a symlinked config stays a link; two processes saving at once
share no temp file and always leave a file that parses; a refused write leaves the old
file as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from flashtui.tui import config as cfg
from flashtui.tui.toml_reader import tomllib

from .conftest import REPO

USER_FILE = b"""# my flashtui settings -- hand-written, keep this comment
theme = "flashtui-light"   # the one I like
nvml_rate_hz = 5.0
my_note = "flashtui does not know this key"
"""


def _kept(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith("config.toml" + cfg.UNPARSABLE_SUFFIX))


async def test_unparsable_config_survives_a_theme_change_in_the_app(tmp_path, monkeypatch):
    from flashtui.tui.app import FlashTuiApp

    config_dir = tmp_path / "config"
    config_dir.mkdir()
    broken = b'# my carefully written config\ntheme = "flashtui-light"\n[[[ oops\n'
    (config_dir / "config.toml").write_bytes(broken)
    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(tmp_path / "data"))
    app = FlashTuiApp(worker_factory=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        kept = _kept(config_dir)
        assert len(kept) == 1 and kept[0].read_bytes() == broken
        notes = [n.message for n in app._notifications]
        assert any("not valid TOML" in n and f"kept it as {kept[0]}" in n for n in notes), notes
        await pilot.press("ctrl+t")  # change the theme: the app saves its config
        deadline = time.monotonic() + 5
        while not (config_dir / "config.toml").exists() and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert tomllib.loads((config_dir / "config.toml").read_text())["theme"] == app.theme
    assert kept[0].read_bytes() == broken  # the user's file, comments and all, still there


def test_a_save_keeps_comments_and_unknown_keys(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(USER_FILE)
    config, error = cfg.load_config(path)
    assert config.theme == "flashtui-light" and "unknown key 'my_note'" in error
    config.theme = "flashtui-dark"
    cfg.save_config(config, path)
    text = path.read_text()
    assert "# my flashtui settings -- hand-written, keep this comment" in text
    assert 'my_note = "flashtui does not know this key"' in text
    assert tomllib.loads(text)["theme"] == "flashtui-dark" and tomllib.loads(text)["nvml_rate_hz"] == 5.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temp left


def test_a_file_broken_while_the_app_ran_is_kept_before_saving(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(USER_FILE)
    config, _ = cfg.load_config(path)
    path.write_bytes(USER_FILE + b"[[[ half-edited in another window\n")
    cfg.save_config(config, path)
    kept = _kept(tmp_path)
    assert len(kept) == 1 and kept[0].read_bytes().endswith(b"half-edited in another window\n")
    assert tomllib.loads(path.read_text())["theme"] == "flashtui-light"


def test_a_symlinked_config_is_written_through_and_stays_a_link(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "flashtui.toml"
    real.write_bytes(USER_FILE)
    path = tmp_path / "config.toml"
    path.symlink_to(real)
    config, _ = cfg.load_config(path)
    config.theme = "flashtui-high-contrast"
    cfg.save_config(config, path)
    assert os.path.islink(path) and os.readlink(path) == str(real)
    assert tomllib.loads(real.read_text())["theme"] == "flashtui-high-contrast"
    assert "hand-written, keep this comment" in real.read_text()


def test_a_refused_write_leaves_the_old_file(mount_tmpfs):
    import pytest

    folder = mount_tmpfs("cfg", size="64k")
    path = folder / "config.toml"
    path.write_bytes(USER_FILE)
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    with pytest.raises(OSError, match="read-only file system") as info:
        cfg.save_config(cfg.TuiConfig(theme="flashtui-dark"), path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == USER_FILE


SAVER = """
import sys
from pathlib import Path
from flashtui.tui.config import TuiConfig, save_config
path, theme = Path(sys.argv[1]), sys.argv[2]
for i in range(60):
    save_config(TuiConfig(theme=theme, nvml_rate_hz=float(i + 1)), path)
"""


def test_two_processes_saving_at_once_share_no_temp_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(USER_FILE)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", SAVER, str(path), theme], env=env,
                              stderr=subprocess.PIPE, text=True)
             for theme in ("flashtui-dark", "flashtui-light")]
    seen = set()
    while any(p.poll() is None for p in procs):
        try:
            seen.add(tomllib.loads(path.read_text())["theme"])  # always a whole, valid file
        except FileNotFoundError:
            raise AssertionError("the config vanished during a save")
    errors = [p.stderr.read() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    final = tomllib.loads(path.read_text())
    assert final["theme"] in ("flashtui-dark", "flashtui-light") and final["nvml_rate_hz"] == 60.0
    assert "hand-written, keep this comment" in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temp file left
