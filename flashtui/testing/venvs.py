"""A throw-away virtual environment that sees this interpreter's packages, none of its scripts.

For tests that need a real second Python: one where a command-line tool (py-spy) is
really absent, or where a wheel is installed as a user would (without ``-e``). A
symlink to ``sys.executable`` is not enough: a symlinked venv python finds no
``pyvenv.cfg`` beside it and runs as the base interpreter, without the venv's packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

OUTER_PTH = "_flashtui_outer_site.pth"


def outer_site_dirs() -> list[str]:
    """The site-packages folders the running interpreter imports from, in its order."""
    return [p for p in sys.path if p and Path(p).name in ("site-packages", "dist-packages")]


def bare_venv(folder: Path) -> Path:
    """Create a venv (no pip) in ``folder``; return its python.

    Its own site-packages comes first (install into it with ``pip --python``); then this
    interpreter's site-packages folders as plain path lines of a ``.pth`` file, so their
    packages import but their own ``.pth`` hooks (an editable install's finder) do not run,
    and its ``bin/`` holds nothing but python.
    """
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(folder)
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    (site_packages(python) / OUTER_PTH).write_text("".join(f"{p}\n" for p in outer_site_dirs()))
    return python


def site_packages(python: Path) -> Path:
    """``python``'s own site-packages folder."""
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    return Path(out)
