"""docs/troubleshooting.md covers every kind of error, every exit status and every finding code in the code.

The lists come from the code, so a new error class, exit status or finding code fails this test until the page
says what it means and what to do: error classes are the public subclasses of TrainkitError in the core (which the
built-in plugins raise too), exit statuses the EXIT_* constants of cli/exits.py, finding codes the `code="..."` literals
(and `*CODE = "..."` constants) of Finding calls in dspy_trainkit/ and plugins/.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import warnings
from pathlib import Path

import dspy_trainkit
from dspy_trainkit.cli import exits
from dspy_trainkit.errors import TrainkitError

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "troubleshooting.md"
CODE_LITERAL = re.compile(r"""(?:\bcode=|_finding\(rules, |CODE\s*=\s*)"([a-z][a-z0-9]*(?:-[a-z0-9]+)+)\"""")


def error_classes() -> set[str]:
    """Names of TrainkitError and its public subclasses defined by the core (every core module imported; the
    built-in plugins raise the core's classes)."""
    with warnings.catch_warnings():  # old module paths kept as deprecated aliases warn when imported
        warnings.simplefilter("ignore", DeprecationWarning)
        for info in pkgutil.walk_packages(dspy_trainkit.__path__, "dspy_trainkit."):
            if ".cli" not in info.name and ".testing" not in info.name:
                importlib.import_module(info.name)
    found, todo = set(), [TrainkitError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("dspy_trainkit.") and not cls.__name__.startswith("_"):
            found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def exit_statuses() -> dict[str, int]:
    return {name: value for name, value in vars(exits).items() if name.startswith("EXIT_")}


def finding_codes() -> set[str]:
    codes = set()
    for folder in (ROOT / "dspy_trainkit", ROOT / "plugins"):
        for path in folder.rglob("*.py"):
            codes.update(CODE_LITERAL.findall(path.read_text(encoding="utf-8")))
    return codes


def missing(text: str) -> list[str]:
    problems = [f"error class {name}" for name in sorted(error_classes()) if f"`{name}`" not in text]
    problems += [f"exit status {name}" for name in sorted(exit_statuses()) if f"`{name}`" not in text]
    problems += [f"exit status {value}" for value in sorted(set(exit_statuses().values()))
                 if not re.search(rf"^\| {value} \|", text, flags=re.M)]
    problems += [f"finding code {code}" for code in sorted(finding_codes()) if f"`{code}`" not in text]
    return problems


def test_the_lists_are_found() -> None:
    assert {"ConfigError", "StoreError", "OptimizationError", "BackupError", "FormatError"} <= error_classes()
    assert exit_statuses()["EXIT_INTERRUPTED"] == 130
    assert {"empty-value", "near-duplicate", "pii-email", "synthetic-cap", "too-long"} <= finding_codes()


def test_troubleshooting_covers_every_error_exit_status_and_finding_code() -> None:
    assert missing(PAGE.read_text(encoding="utf-8")) == []


def test_a_missing_entry_is_found() -> None:
    text = PAGE.read_text(encoding="utf-8").replace("`near-duplicate`", "near duplicates").replace(
        "`BackupError`", "backup errors")
    assert missing(text) == ["error class BackupError", "finding code near-duplicate"]
