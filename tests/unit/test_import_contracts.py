"""The layer rule as tools check it: import-linter's contracts, no import cycle, core on stdlib only.

Every import statement counts, at module level or inside a function: a cycle that only
works because one import is deferred is still a cycle (it breaks as soon as someone
hoists that import, and it hides which layer depends on which).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "flashtui"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module as written, resolved to absolute; line) for every import in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # "from pkg import name": the submodule pkg.name when it is one, else pkg itself.
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
            found.append((module, node.lineno))
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """flashtui module -> {flashtui module it imports: line}; imports inside functions included.

    A package's own ``__init__`` running first (``import a.b`` runs ``a``) is not an edge:
    Python handles that order itself, so only the modules named in import statements count.
    """
    modules = _modules()
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, path in modules.items():
        for target, line in _imports(name, path):
            while target and target not in modules:
                target = target.rpartition(".")[0]  # pkg.func -> pkg
            if target and target != name:
                graph[name].setdefault(target, line)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One concrete cycle (a -> b -> ... -> a) per strongly connected component of 2+ modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for component in components:
        start = min(component)
        # Shortest way back to start inside the component (breadth-first).
        paths = {start: [start]}
        todo = [start]
        while todo:
            node = todo.pop(0)
            for nxt in sorted(graph[node]):
                if nxt == start:
                    todo = []
                    cycles.append(paths[node] + [start])
                    break
                if nxt in component and nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    todo.append(nxt)
    return cycles


def test_no_import_cycle_among_flashtui_modules_counting_imports_inside_functions():
    graph = import_graph()
    assert len(graph) > 50 and graph["flashtui.cli"], "the graph builder found no imports"
    cycles = find_cycles(graph)
    # "a:12 -> b:40 -> a": a imports b at its line 12, b imports a at its line 40.
    described = [" -> ".join(f"{a}:{graph[a][b]}" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"
                 for cycle in cycles]
    assert described == [], "import cycles:\n" + "\n".join(described)


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    """The finder itself, on a planted two-module cycle (one side imports inside a function)."""
    graph = {"a": {"b": 1}, "b": {"c": 3}, "c": {"a": 7}, "d": {"a": 2}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    source = "def later():\n    from flashtui.store import index\n"
    planted = tmp_path / "m.py"
    planted.write_text(source)
    assert ("flashtui.store.index", 2) in _imports("flashtui.core.m", planted)


def test_core_imports_only_the_standard_library():
    allowed_flashtui = re.compile(r"^flashtui(\.errors|\.core(\..*)?)?$")  # root: __version__
    offenders = []
    for name, path in _modules().items():
        if not name.startswith("flashtui.core"):
            continue
        for target, line in _imports(name, path):
            top = target.split(".")[0]
            if top == "flashtui":
                ok = allowed_flashtui.match(target) or allowed_flashtui.match(target.rpartition(".")[0])
            else:
                ok = top in sys.stdlib_module_names or top == "__future__"
            if not ok:
                offenders.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert offenders == []


def _lint_imports() -> str:
    found = shutil.which("lint-imports", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                               os.environ.get("PATH", "")]))
    assert found, "lint-imports not found: pip install -e '.[test]' (import-linter is in the test extra)"
    return found


CONTRACTS = ("engine imports only core and errors from flashtui, and no UI library",
             "core imports only the standard library (and flashtui.errors)",
             "the UI side never imports torch, transformers or the engine",
             "layers point one way")


def _run_lint(cwd: Path) -> tuple[subprocess.CompletedProcess[str], int, int]:
    done = subprocess.run([_lint_imports(), "--no-cache"], capture_output=True, text=True, cwd=cwd, timeout=120)
    summary = re.search(r"Contracts: (\d+) kept, (\d+) broken", done.stdout)
    assert summary, done.stdout[-4000:] + done.stderr[-2000:]
    kept, broken = map(int, summary.groups())
    return done, kept, broken


def test_lint_imports_keeps_every_contract():
    done, kept, broken = _run_lint(REPO)
    assert done.returncode == 0 and broken == 0, done.stdout[-4000:]
    for name in CONTRACTS:
        assert f"{name} KEPT" in done.stdout, (name, done.stdout[-4000:])
    assert kept == len(CONTRACTS)


def test_lint_imports_catches_a_ui_import_inside_an_engine_function(tmp_path):
    """The same contracts on a copy with one deferred ``import textual`` planted in the engine."""
    shutil.copytree(PACKAGE, tmp_path / "flashtui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with (tmp_path / "flashtui" / "engine" / "timing.py").open("a") as f:
        f.write("\n\ndef _planted():\n    import textual  # noqa: F401\n")
    done, kept, broken = _run_lint(tmp_path)
    assert done.returncode != 0 and broken == 1 and kept == len(CONTRACTS) - 1, done.stdout[-4000:]
    assert "flashtui.engine.timing -> textual" in done.stdout, done.stdout[-4000:]
