"""A worker whose Python would recompile torch from source keeps its bytecode under
flashtui's cache dir (client.environment.bytecode_cache_env); real subprocesses, no mocks of Python."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flashtui.client import environment
from flashtui.client.worker_client import WorkerClient

REPO = Path(__file__).resolve().parents[2]


def _fake_torch(root: Path, with_bytecode: bool) -> Path:
    """A 'torch' package tree with the sample module, its bytecode cached or not."""
    source = root / "torch" / "_dynamo" / "convert_frame.py"
    source.parent.mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text("raise SystemExit('must not be imported')\n")
    source.write_text("x = 1\n")
    if with_bytecode:
        cache = source.parent / "__pycache__"
        cache.mkdir()
        (cache / f"convert_frame.{sys.implementation.cache_tag}.pyc").write_bytes(b"")
    return root


def _env_for(fake: Path, tmp_path: Path, **extra: str) -> dict:
    """bytecode_cache_env as a process whose torch is ``fake`` computes it."""
    code = ("import json, sys; from flashtui.client.environment import bytecode_cache_env; "
            "print(json.dumps(bytecode_cache_env(dict(__import__('os').environ))))")
    env = {**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{REPO}", "FLASHTUI_CACHE_DIR": str(tmp_path / "cache"),
           **extra}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    import json

    return json.loads(run.stdout)


def test_a_torch_without_bytecode_gets_a_prefix_under_the_cache_dir(tmp_path):
    fake = _fake_torch(tmp_path / "site", with_bytecode=False)
    assert _env_for(fake, tmp_path) == {"PYTHONPYCACHEPREFIX": str(tmp_path / "cache" / "compile" / "pycache")}


def test_nothing_changes_where_torch_has_bytecode_or_the_user_chose(tmp_path):
    assert _env_for(_fake_torch(tmp_path / "a", with_bytecode=True), tmp_path) == {}
    assert _env_for(_fake_torch(tmp_path / "b", with_bytecode=False), tmp_path, PYTHONPYCACHEPREFIX="/mine") == {}
    # This test's own Python: pip compiled torch's bytecode at install.
    assert environment.bytecode_cache_env({}) == {}


def test_the_worker_env_makes_python_cache_bytecode_there(tmp_path, monkeypatch):
    """With the prefix, a Python told not to write bytecode writes it under the cache dir."""
    monkeypatch.setattr(environment, "_torch_bytecode_cached", lambda: False)
    client = WorkerClient(env={**os.environ, "FLASHTUI_CACHE_DIR": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"})
    prefix = Path(client.env["PYTHONPYCACHEPREFIX"])
    assert prefix == tmp_path / "compile" / "pycache" and "PYTHONDONTWRITEBYTECODE" not in client.env
    module = tmp_path / "src" / "some_module.py"
    module.parent.mkdir()
    module.write_text("VALUE = 42\n")
    run = subprocess.run([sys.executable, "-c", "import some_module; print(some_module.VALUE)"],
                         capture_output=True, text=True, timeout=60,
                         env={**client.env, "PYTHONPATH": str(module.parent)})
    assert run.stdout.strip() == "42", run.stderr
    assert list(prefix.rglob("some_module.*.pyc")), list(prefix.rglob("*"))
    assert not (module.parent / "__pycache__").exists()  # nothing next to the user's sources


def test_inductor_compiles_in_the_worker_unless_the_user_chose():
    assert WorkerClient(env=dict(os.environ)).env["TORCHINDUCTOR_COMPILE_THREADS"] == "1"
    mine = {**os.environ, "TORCHINDUCTOR_COMPILE_THREADS": "8"}
    assert WorkerClient(env=mine).env["TORCHINDUCTOR_COMPILE_THREADS"] == "8"
