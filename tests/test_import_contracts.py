"""Import contracts: the core never imports a plugin, only the CLI imports the CLI, plugins use the public API.

These are the rules that keep the public plugin API honest (DESIGN.md, "The public plugin API"). They read every
import statement, including those inside functions and relative ones, so a lazy import cannot slip past. An
allow-list is what the rules need ("plugins may import only these modules"), which import-linter's forbidden
contracts cannot say without listing every other module, so the check is written here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "dspy_trainkit"
PLUGINS = ROOT / "plugins"
#: What a plugin may import of this project (besides its own package).
PUBLIC_API = ("dspy_trainkit", "dspy_trainkit.pluginkit", "dspy_trainkit.testing")
#: Core modules that may import the CLI: the public surfaces that re-export its command-plugin helpers, and
#: `python -m dspy_trainkit`.
CLI_REEXPORTERS = ("dspy_trainkit.pluginkit", "dspy_trainkit.testing", "dspy_trainkit.__main__")
#: Old module paths kept as deprecated aliases; nothing of ours may use them.
DEPRECATED = ("changes", "exporting", "formats", "importing", "imports", "intake_stats", "mapping", "plugins",
              "quality_report", "registry", "where")


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, base: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; `from x import y` yields x and x.y."""
    name = module_name(path, base)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                target = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(files: Iterator[Path], base: Path, rule) -> list[str]:
    found = []
    for path in files:
        for line, target in imports_of(path, base):
            problem = rule(module_name(path, base), target)
            if problem:
                found.append(f"{path.relative_to(ROOT)}:{line}: {problem}")
    return found


def test_core_never_imports_a_plugin():
    def rule(source: str, target: str) -> str | None:
        if target.startswith("dspy_trainkit_") or target.startswith("trainkit_"):
            return f"imports plugin module {target}"
        return None

    assert violations(CORE.rglob("*.py"), ROOT, rule) == []


def test_only_the_cli_imports_the_cli():
    def rule(source: str, target: str) -> str | None:
        if is_within(target, "dspy_trainkit.cli") and not is_within(source, "dspy_trainkit.cli") \
                and not any(is_within(source, allowed) for allowed in CLI_REEXPORTERS):
            return f"{source} imports {target}"
        return None

    assert violations(CORE.rglob("*.py"), ROOT, rule) == []


def test_plugins_import_only_the_public_api():
    sample = ROOT / "tests" / "sample_plugin"

    def rule(source: str, target: str) -> str | None:
        own = source.split(".")[0]
        if is_within(target, own) or not target.startswith("dspy_trainkit"):
            return None
        if target.startswith("dspy_trainkit_"):
            return f"imports another plugin's module {target}"
        if any(target == api or target.startswith(api + ".") and api != "dspy_trainkit" for api in PUBLIC_API):
            return None
        if target.count(".") == 1 and target.split(".")[1][:1].isupper() or target.split(".")[-1] in {
                "hookimpl", "open"}:
            return None  # `from dspy_trainkit import Example` yields dspy_trainkit.Example
        return f"imports {target}, which is not the public plugin API ({', '.join(PUBLIC_API)})"

    assert violations(PLUGINS.rglob("*.py"), PLUGINS, rule) == []
    assert violations(iter([sample / "trainkit_sample_plugin.py"]), sample, rule) == []


def test_nothing_of_ours_uses_a_deprecated_module_path():
    old = {f"dspy_trainkit.{name}" for name in DEPRECATED}

    def rule(source: str, target: str) -> str | None:
        return f"uses deprecated {target}" if target in old else None

    files = [p for p in [*CORE.rglob("*.py"), *PLUGINS.rglob("*.py"), *(ROOT / "tests").rglob("*.py")]
             if not (p.parent == CORE and p.stem in DEPRECATED)]
    assert violations(iter(files), ROOT, rule) == []


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The checks above would pass on anything if `imports_of` saw nothing: show each rule failing."""
    package = tmp_path / "dspy_trainkit_fake"
    package.mkdir()
    (package / "__init__.py").write_text("from dspy_trainkit.store import Store\n"
                                         "def f():\n    from dspy_trainkit.cli.state import CliState\n"
                                         "from dspy_trainkit.pluginkit import check_each\n", encoding="utf-8")
    found = [target for _, target in imports_of(package / "__init__.py", tmp_path)]
    assert {"dspy_trainkit.store", "dspy_trainkit.cli.state", "dspy_trainkit.pluginkit"} <= set(found)
    nested = tmp_path / "dspy_trainkit" / "lifecycle"
    nested.mkdir(parents=True)
    (nested / "cleanup.py").write_text("from ..cli import output\n", encoding="utf-8")
    assert ("dspy_trainkit.cli" in [t for _, t in imports_of(nested / "cleanup.py", tmp_path)])
