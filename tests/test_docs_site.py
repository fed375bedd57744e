"""The generated reference pages of the documentation site cover the public API.

mkdocstrings fails the `mkdocs build --strict` of CI on a `::: name` that does not exist; these tests catch the
other direction, a public name (in `dspy_trainkit.__all__`, `pluginkit.__all__` or `testing.__all__`) with no
entry in docs/reference/, and a built-in command that the generated CLI reference would miss.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.M)


def documented_names(*pages: str) -> set[str]:
    """The last dotted part of every `::: path` directive on the given reference pages."""
    return {path.rsplit(".", 1)[-1] for page in pages
            for path in DIRECTIVE.findall((REFERENCE / page).read_text(encoding="utf-8"))}


def missing(module: str, *pages: str) -> list[str]:
    return sorted(set(importlib.import_module(module).__all__) - documented_names(*pages))


@pytest.mark.parametrize(("module", "pages"), [
    ("dspy_trainkit", ("api.md",)),
    ("dspy_trainkit.pluginkit", ("api.md", "pluginkit.md")),
    ("dspy_trainkit.testing", ("testing.md",)),
])
def test_every_public_name_has_a_reference_entry(module: str, pages: tuple[str, ...]) -> None:
    assert missing(module, *pages) == [], f"{module} names without a '::: ...' entry in docs/reference/{pages}"


def test_directive_targets_resolve() -> None:
    """Each `::: a.b.C` names an importable object (mkdocstrings would fail the build; this says which)."""
    broken = []
    for page in sorted(REFERENCE.glob("*.md")):
        for path in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            module, _, name = path.rpartition(".")
            try:
                target = importlib.import_module(path)
            except ImportError:
                target = getattr(importlib.import_module(module), name, None)
            if target is None:
                broken.append(f"{page.name}: {path}")
    assert broken == []


def test_missing_names_are_found(tmp_path: Path) -> None:
    """The check sees a name that has no directive (so the test above could fail)."""
    page = REFERENCE / "testing.md"
    text = page.read_text(encoding="utf-8")
    assert "::: dspy_trainkit.testing.openai_server.input_fields" in text
    kept = text.replace("::: dspy_trainkit.testing.openai_server.input_fields\n", "")
    assert "input_fields" not in {p.rsplit(".", 1)[-1] for p in DIRECTIVE.findall(kept)}


def test_cli_reference_group_holds_every_builtin_command() -> None:
    from dspy_trainkit.cli.main import BUILTIN_COMMANDS, cli
    from dspy_trainkit.cli.reference import builtin_cli, builtin_plugin_commands

    assert sorted(builtin_cli.commands) == sorted({*BUILTIN_COMMANDS, *builtin_plugin_commands()})
    assert [p.name for p in builtin_cli.params] == [p.name for p in cli.params]
    assert "builtin_cli" in (REFERENCE / "cli.md").read_text(encoding="utf-8")


def test_third_party_plugin_commands_stay_out_of_the_reference() -> None:
    import click

    from dspy_trainkit import hookimpl
    from dspy_trainkit.cli.reference import builtin_plugin_commands
    from dspy_trainkit.plugin_manager import make_plugin_manager

    class ThirdParty:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("third-party-cmd"))

    pm = make_plugin_manager(extra_plugins=[("third_party", ThirdParty())])
    assert not pm.infos["third_party"].builtin
    assert "third-party-cmd" not in builtin_plugin_commands(pm)
    pm.infos["third_party"] = attrs.evolve(pm.infos["third_party"], builtin=True)  # as if shipped with trainkit
    assert "third-party-cmd" in builtin_plugin_commands(pm)
