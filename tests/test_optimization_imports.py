"""The optimization package's modules import one another without a cycle, even counting imports made inside
functions: a cycle there works only as long as nobody moves an import to the top of a module."""

from __future__ import annotations

import ast
from pathlib import Path

import dspy_trainkit.optimization as package

FOLDER = Path(package.__file__).parent


def _imports(path: Path) -> set[str]:
    """The sibling modules `path` imports anywhere in it (relative `.x` / `from . import x`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_no_import_cycle_between_optimization_modules() -> None:
    graph = {p.stem: _imports(p) & {q.stem for q in FOLDER.glob("*.py")} for p in FOLDER.glob("*.py")}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append(" -> ".join([*path[path.index(target):], target]))
            elif len(path) < len(graph):
                visit(target, [*path, target])

    for module in sorted(graph):
        visit(module, [module])
    assert not cycles, f"import cycles: {sorted(set(cycles))}"
