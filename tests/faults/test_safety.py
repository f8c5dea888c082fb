"""Safety: no file is unpickled or evaluated; a model's own code runs only when the user
says ``--trust-remote-code``; a web-served TUI (if ever offered) binds localhost.

The source checks read the syntax tree, so comments and docstrings that *talk* about
pickle or eval are fine, and ``model.eval()`` (a method) is not ``eval(...)``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "flashtui"
SOURCES = sorted(PACKAGE.rglob("*.py"))

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "jsonpickle"}
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    where = path.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                found.append(f"{where}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            keywords = {k.arg: k.value for k in node.keywords}
            if isinstance(func, ast.Name) and func.id in UNSAFE_BUILTINS:
                found.append(f"{where}:{node.lineno}: {func.id}(...)")
            elif isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else None
                if owner == "yaml" and func.attr in ("load", "load_all", "unsafe_load", "full_load"):
                    found.append(f"{where}:{node.lineno}: yaml.{func.attr}(...)")
                if owner == "torch" and func.attr == "load":
                    weights_only = keywords.get("weights_only")
                    if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                        found.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
                if owner in ("np", "numpy") and func.attr == "load":
                    allow = keywords.get("allow_pickle")
                    if not (allow is None or (isinstance(allow, ast.Constant) and allow.value is False)):
                        found.append(f"{where}:{node.lineno}: numpy.load(allow_pickle=...)")
                if owner == "pd" and func.attr == "read_pickle":
                    found.append(f"{where}:{node.lineno}: pandas.read_pickle")
            trust = keywords.get("trust_remote_code")
            if isinstance(trust, ast.Constant) and trust.value is True:
                found.append(f"{where}:{node.lineno}: trust_remote_code=True hard-coded")
    return found


def test_the_checker_catches_what_it_looks_for(tmp_path):
    """Guard against a checker that finds nothing because it looks wrong."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""pickle and eval( in a docstring are fine."""\n'
        "# eval( in a comment is fine\n"
        "import pickle\nfrom marshal import loads\nimport yaml, torch\n"
        "x = eval('1')\nexec('y = 2')\nyaml.load(open('f'))\ntorch.load('w.pt')\n"
        "model.eval()\nAuto.from_pretrained('m', trust_remote_code=True)\n"
    )
    found = _findings(bad)
    assert sorted(int(f.split(":")[1]) for f in found) == [3, 4, 6, 7, 8, 9, 11], found


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_no_pickle_eval_exec_or_unsafe_load_in_the_package(path):
    assert _findings(path) == []


def test_the_package_has_sources_to_check():
    assert len(SOURCES) > 20 and PACKAGE / "cli.py" in SOURCES


def _spec(argv: list[str]):
    from flashtui.cli import build_parser
    from flashtui.commands.bench import spec_from_args

    args = build_parser().parse_args(["bench", *argv])
    return spec_from_args(args, cuda_present=False)


@pytest.mark.parametrize("argv", [
    [],
    ["--mode", "prefill", "--model", "gpt2"],
    ["--mode", "decode", "--model", "org/some-model"],
])
def test_trust_remote_code_is_off_unless_asked(argv):
    assert _spec(argv).trust_remote_code is False


def test_trust_remote_code_only_with_the_flag():
    assert _spec(["--mode", "prefill", "--model", "org/some-model", "--trust-remote-code"]).trust_remote_code is True
    from flashtui.core.spec import SweepSpec

    assert SweepSpec().trust_remote_code is False
    assert SweepSpec.from_dict({"mode": "prefill", "model": "gpt2"}).trust_remote_code is False


def test_the_model_loader_passes_the_specs_choice_not_a_constant():
    """Every trust_remote_code= in the engine is the spec's value (or a name bound to it)."""
    tree = ast.parse((PACKAGE / "engine" / "models.py").read_text())
    values = [k.value for node in ast.walk(tree) if isinstance(node, ast.Call)
              for k in node.keywords if k.arg == "trust_remote_code"]
    assert values, "models.py no longer passes trust_remote_code at all"
    for value in values:
        assert not isinstance(value, ast.Constant), ast.dump(value)


def test_textual_serve_binds_localhost_and_nothing_wider():
    """`flashtui serve` hands textual-serve 127.0.0.1, takes no option to widen it, and no
    source file that mentions textual-serve binds every interface."""
    import inspect

    from flashtui.cli import build_parser
    from flashtui.tui import serve

    args = build_parser().parse_args(["serve"])
    assert not any(name in vars(args) for name in ("bind", "address", "listen"))
    assert serve.HOST == "127.0.0.1"
    assert "host=HOST" in inspect.getsource(serve.serve)  # the Server gets the constant
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        if "textual_serve" in text or "textual-serve" in text or "textual serve" in text:
            assert "localhost" in text or "127.0.0.1" in text, f"{path} serves the TUI beyond localhost"
            assert "0.0.0.0" not in text, f"{path} binds every interface"