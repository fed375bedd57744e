"""Example text written by someone else: CSV export neutralises spreadsheet formulas (and import takes the
neutralising apostrophe off again), and `list` / `show` never send terminal escape sequences to the terminal."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS, qa

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+2", "-2+3", "@SUM(A1:A2)", "\tx", "'=already",
            "''+quoted"]
SAFE = ["-5", "+1.5", "plain", "'apostrophe", "3-2"]
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x9b1m\u202eevil"


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with tk.open(url, disable=QUALITY_PLUGINS) as kit:
        kit.add_many([qa(text, f"answer {n}") for n, text in enumerate(FORMULAS + SAFE)])
    return url


def _cells(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return {row["outputs.answer"]: row["inputs.question"] for row in csv.DictReader(stream)}


def test_csv_export_neutralises_formulas_and_import_restores_them(url, tmp_path):
    runner = CliRunner()
    base = ["--db", url, *[f"--disable-plugin={p}" for p in QUALITY_PLUGINS]]
    result = runner.invoke(cli, [*base, "export", "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    cells = _cells(tmp_path / "out.csv")
    for n, text in enumerate(FORMULAS):
        assert cells[f"answer {n}"] == "'" + text  # a spreadsheet shows it as text
    for n, text in enumerate(SAFE, start=len(FORMULAS)):
        assert cells[f"answer {n}"] == text  # numbers and ordinary text as they are
    other = f"sqlite:///{tmp_path / 'again.db'}"
    tk.open(other).close()
    result = runner.invoke(cli, ["--db", other, *base[2:], "import", str(tmp_path / "out.csv"), "--task", "qa"])
    assert result.exit_code == 0, result.output
    with tk.open(other, disable=QUALITY_PLUGINS) as kit:
        assert sorted(e.inputs["question"] for e in kit.examples()) == sorted(FORMULAS + SAFE)
    result = runner.invoke(cli, [*base, "export", "-o", str(tmp_path / "raw.csv"), "--keep-formulas"])
    assert result.exit_code == 0, result.output
    assert _cells(tmp_path / "raw.csv")["answer 0"] == FORMULAS[0]


def test_list_and_show_print_escape_sequences_visibly(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with tk.open(url, disable=QUALITY_PLUGINS) as kit:
        example = kit.add(qa("question " + ESCAPES, "answer " + ESCAPES, topic="t" + ESCAPES))
    runner = CliRunner()
    for args in (["list"], ["show", example.id]):
        result = runner.invoke(cli, ["--db", url, *args])
        assert result.exit_code == 0, result.output
        assert not any(ch in result.output for ch in "\x1b\x07\x9b\u202e"), repr(result.output)
        assert "\\x1b[31mred" in result.output
    shown = runner.invoke(cli, ["--db", url, "show", example.id, "--json"]).output
    assert json.loads(shown)["inputs"]["question"] == "question " + ESCAPES  # JSON keeps the data, escaped
    assert "\x1b" not in shown


def test_log_lines_and_error_lines_print_escape_sequences_visibly(tmp_path, monkeypatch):
    """An escape sequence in a file name or a reason reached the terminal through `trainkit log` (it is stored
    in the audit trail, so every later log replayed it) and through error lines."""
    from click.testing import CliRunner

    from dspy_trainkit.cli.main import cli

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--task", "qa", "--signature", "question -> answer"]).exit_code == 0
    title = "\x1b]0;OWNED\x07"
    added = runner.invoke(cli, ["add", "-t", "qa", "-i", "question=q?", "-o", "answer=a", "--reason", f"why {title}"])
    assert added.exit_code == 0, added.output
    shown = runner.invoke(cli, ["log"]).output
    assert "\x1b" not in shown and "\\x1b]0;OWNED\\x07" in shown
    missing = runner.invoke(cli, ["import", f"nofile{title}.jsonl"])
    assert missing.exit_code != 0 and "\x1b" not in missing.output and "\\x1b" in missing.output
