"""Python 3.10 has no tomllib: the TUI's TOML readers fall back to tomli (checked here on any Python)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter where `import tomllib` fails as on Python 3.10.
HIDE_TOMLLIB = r"""
import sys
class NoTomllib:
    def find_spec(self, name, path=None, target=None):
        if name == "tomllib":
            raise ModuleNotFoundError("No module named 'tomllib'", name="tomllib")
        return None
sys.meta_path.insert(0, NoTomllib())
sys.modules.pop("tomllib", None)

from pathlib import Path
from flashtui.tui import config, themes
from flashtui.tui.toml_reader import tomllib
assert tomllib.__name__ == "tomli", tomllib.__name__
folder = Path(sys.argv[1])
(folder / "config.toml").write_text('theme = "flashtui-light"\nnvml_rate_hz = 4\n')
loaded, error = config.load_config(folder / "config.toml")
assert error is None and loaded.theme == "flashtui-light" and loaded.nvml_rate_hz == 4.0, (loaded, error)
(folder / "bad.toml").write_text("[[[")
_, error = config.load_config(folder / "bad.toml")
assert "not valid TOML" in error, error
shipped, errors = themes.load_themes(user_dirs=[])
assert errors == [] and "flashtui-dark" in [t.name for t in shipped], errors
print("tomli ok", ",".join(sorted(t.name for t in shipped)))
"""


def test_without_tomllib_config_and_themes_parse_with_tomli(tmp_path):
    pytest.importorskip("tomli")  # the test extra installs it on every Python
    done = subprocess.run([sys.executable, "-c", HIDE_TOMLLIB, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    names = done.stdout.split("tomli ok ", 1)[1].strip().split(",")
    assert len(names) == len(list((REPO / "themes").glob("*.toml")))


def test_with_tomllib_the_standard_module_is_used():
    if sys.version_info < (3, 11):
        pytest.skip("no tomllib before Python 3.11")
    from flashtui.tui.toml_reader import tomllib

    assert tomllib.__name__ == "tomllib"
