"""Every `trainkit ...` command in docs/operations.md (its runbooks included) and in the runbook notes of
deploy/prometheus/alerts.yml is a command that exists, with options that parse: `trainkit ARGS --help` exits 0
(click parses every option before it acts on --help, so an unknown command or option fails)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dspy_trainkit.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
SHELL_SPLIT = re.compile(r"\s(?:\||&&|;|>|2>|<)\s|#")


def commands_in(text: str) -> list[str]:
    """`trainkit ...` commands in fenced code blocks (after a `$ ` prompt or an assignment) and in backticks."""
    found = []
    for block in re.findall(r"```(?:sh|console|bash)\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.removeprefix("$ ").strip()
            if line.startswith("trainkit ") or re.match(r"[A-Z_]+=\S+ trainkit ", line):
                found.append(line)
    found += [m for m in re.findall(r"`(trainkit [^`]+)`", text)]
    return found


def arguments(command: str) -> list[str]:
    """The arguments after `trainkit`, cut at the first pipe, `&&`, `;`, redirection or comment."""
    command = SHELL_SPLIT.split(command, maxsplit=1)[0]
    words = shlex.split(command)
    while words and re.match(r"[A-Z_]+=", words[0]):
        words.pop(0)
    assert words[0] == "trainkit", command
    return [w for w in words[1:] if w != "..."]


def check(command: str) -> str | None:
    args = arguments(command)
    if not args or args[0] in ("-h", "--help", "--version"):
        return None
    result = CliRunner().invoke(cli, [*args, "--help"])
    return None if result.exit_code == 0 else f"{command!r}: {result.output.strip().splitlines()[-1]}"


def documented() -> list[str]:
    text = (ROOT / "docs" / "operations.md").read_text()
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    notes = [rule["annotations"].get("runbook", "") for group in rules["groups"] for rule in group["rules"]]
    from_rules = [re.sub(r"\{\{[^}]*\}\}", "T", part.strip()) for note in notes
                  for part in re.split(r"[;(]", note) if part.strip().startswith("trainkit ")]
    return sorted(set(commands_in(text) + from_rules))


def test_the_runbooks_have_commands():
    commands = documented()
    assert len(commands) > 40
    for needed in ("trainkit backup --dir", "trainkit backup verify", "trainkit restore", "trainkit migrate",
                   "trainkit lm check", "trainkit bootstrap", "trainkit watch"):
        assert any(c.startswith(needed) for c in commands), needed


@pytest.mark.parametrize("command", documented())
def test_every_documented_command_exists_and_parses(command):
    if arguments(command)[:1] == ["serve"] and CliRunner().invoke(cli, ["serve", "--help"]).exit_code != 0:
        pytest.skip("`trainkit serve` (the dashboard, built on another branch) is not in this checkout")
    assert check(command) is None, check(command)


def test_the_check_catches_a_wrong_command_or_option():
    assert check("trainkit backupp --dir x") is not None
    assert check("trainkit backup --dirr x") is not None
    assert check("trainkit backup --dir x --keep 2 | tail -1") is None
