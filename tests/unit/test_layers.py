"""The layer rule, checked in fresh interpreters: tui -> client -> protocol <- engine.

The same rule, statically: import-linter contracts in pyproject (test_import_contracts.py).
"""

import subprocess
import sys

import pytest

UI_SIDE = [
    "flashtui.cli", "flashtui.client.worker_client", "flashtui.core.protocol", "flashtui.core.spec", "flashtui.core.session",
    "flashtui.core.results", "flashtui.reports.table", "flashtui.commands.bench", "flashtui.monitor.nvml",
    "flashtui.store.journal", "flashtui.store.index", "flashtui.reports", "flashtui.reports.diff", "flashtui.client.recorder",
    "flashtui.commands.doctor", "flashtui.reports.doctor", "flashtui.commands.sessions",
    "flashtui.core.model_catalog", "flashtui.monitor.pyspy", "flashtui.tui.app",
    "flashtui.paths", "flashtui.testing", "flashtui.tui.themes",
]


def _loaded_after_import(module: str) -> set[str]:
    code = f"import importlib, sys; importlib.import_module({module!r}); print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", UI_SIDE)
def test_ui_side_never_loads_torch(module):
    try:
        loaded = _loaded_after_import(module)
    except subprocess.CalledProcessError as exc:
        if "ModuleNotFoundError" in exc.stderr and module.split(".")[-1] in exc.stderr:
            pytest.skip(f"{module} not in this build")
        raise
    assert "torch" not in loaded
    assert "transformers" not in loaded


def test_cli_parser_with_all_subcommands_never_loads_torch():
    code = "import sys; from flashtui.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_engine_never_loads_textual_or_rich():
    loaded = _loaded_after_import("flashtui.engine.kernel")
    assert not {m for m in loaded if m.split(".")[0] in ("textual", "rich")}
    assert "transformers" not in loaded  # only model mode may pay for it
