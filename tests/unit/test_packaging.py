"""What a normal install carries: every package, the stylesheet and the shipped themes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flashtui.testing.venvs import bare_venv, site_packages
from flashtui.tui.toml_reader import tomllib

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (REPO / "themes").glob("*.toml"))


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_pyproject_lists_every_package_on_disk():
    """packages is a list (for the themes mapping), so a new package must be added by hand."""
    setuptools = _pyproject()["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "flashtui").rglob("__init__.py")
               if "__pycache__" not in p.parts}
    assert set(setuptools["packages"]) == on_disk | {"flashtui.themes"}
    assert setuptools["package-dir"] == {"flashtui.themes": "themes"}
    assert setuptools["package-data"]["flashtui.themes"] == ["*.toml"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_wheel_installed_without_e_lists_the_shipped_themes(tmp_path):
    """pip wheel . then pip install the wheel into a fresh venv: the app offers the themes."""
    assert SHIPPED, "no themes/*.toml in the checkout"
    src = tmp_path / "src"  # build from a copy: pip writes build/ and *.egg-info beside the sources
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                                           ".venv", ".grimp_cache", "v", "venv"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "-q", "-w", str(wheels)], check=True, capture_output=True, text=True, timeout=180)
    (wheel,) = wheels.glob("flashtui-*.whl")

    # A fresh venv; its dependencies (textual, ...) come from the environment running this test.
    python = bare_venv(tmp_path / "venv")
    site = site_packages(python)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "-q", str(wheel)], check=True, capture_output=True, text=True, timeout=120)

    probe = textwrap.dedent("""
        import asyncio, flashtui
        from flashtui.tui.app import FlashTuiApp
        from flashtui.tui.themes import shipped_themes_root
        async def main():
            app = FlashTuiApp(worker_factory=None)
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause()
                print("file", flashtui.__file__)
                print("root", shipped_themes_root())
                print("theme", app.theme)
                print("shipped", ",".join(sorted(app.shipped_theme_names)))
                print("notes", [n.message for n in app._notifications])
        asyncio.run(main())
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert lines["file"].startswith(str(site)), lines  # the installed copy, not the checkout
    assert lines["root"].startswith(str(site / "flashtui" / "themes")), lines
    parsed = sorted(tomllib.loads((REPO / "themes" / f"{stem}.toml").read_text())["name"] for stem in SHIPPED)
    assert lines["shipped"].split(",") == parsed
    assert lines["theme"] == "flashtui-dark"
    assert lines["notes"] == "[]", lines["notes"]
