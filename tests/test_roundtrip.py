"""Round trips through every file format: import -> export -> import into a second store gives the same content.

The source records hold what breaks naive writers: non-ASCII text, integers and floats, a multi-line string,
labels, metadata and a list value. Content hashes (task + inputs + outputs, normalised) must come back equal in
the second store for every format; labels and metadata must survive where the format carries them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli

TOML = 'default_task = "qa"\n\n[tasks.qa]\nsignature = "question, context -> answer"\n'

SOURCE = [
    {"question": "Ünïcödé: what does 日本語 mean?", "context": "naïve café — “quotes”", "answer": "Japanese",
     "domain": "languages", "topic": "scripts", "difficulty": "easy", "origin": "book 1"},
    {"question": "Compute 6 × 7", "context": "arithmetic", "answer": 42, "domain": "math", "topic": "products",
     "difficulty": "medium"},
    {"question": "Half of 6.5?", "context": "fractions", "answer": 3.25, "domain": "math", "topic": "fractions",
     "difficulty": "hard"},
    {"question": "Write a two-line poem", "context": "line one\nline two, with, commas\n\tand a tab",
     "answer": "Roses are red,\nviolets are blue;\r\nend", "domain": "poetry"},
    {"question": "List the primes below 6", "context": "number theory", "answer": [2, 3, 5], "topic": "primes"},
    {"question": "Which is true?", "context": "logic", "answer": "yes", "difficulty": "007"},
]

#: Formats that carry labels and metadata (the dspy format is flat DSPy records: inputs and outputs only).
LABELLED = ("jsonl", "json", "csv", "yaml")
#: Formats that carry metadata.
WITH_METADATA = ("jsonl", "json", "yaml")
EXTENSIONS = {"jsonl": "jsonl", "json": "json", "csv": "csv", "yaml": "yaml", "dspy": "dspy.json"}


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    (tmp_path / "trainkit.toml").write_text(TOML)
    path = tmp_path / "source.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in SOURCE), encoding="utf-8")
    return path


@pytest.fixture
def kit(source: Path, store_url: str) -> Iterator[tk.Kit]:
    """The first store, opened after trainkit.toml is written (so it knows task `qa`)."""
    with tk.open(store_url) as opened:
        yield opened


def content(kit: tk.Kit) -> dict[str, tuple]:
    """content hash -> (labels, metadata, inputs, outputs) of every stored example."""
    return {ex.content_hash: ((ex.domain, ex.topic, ex.difficulty), ex.metadata, ex.inputs, ex.outputs)
            for ex in kit.examples()}


def second_store(tmp_path: Path, name: str = "second.db") -> str:
    return f"sqlite:///{tmp_path / name}"


@pytest.mark.parametrize("fmt", sorted(EXTENSIONS))
def test_import_export_import_keeps_content_hashes(kit, source, tmp_path, fmt):
    first = kit.import_files([source])
    assert (first.read, first.imported, first.rejected) == (len(SOURCE), len(SOURCE), 0)
    original = content(kit)
    assert len(original) == len(SOURCE)

    exported = tmp_path / f"out.{EXTENSIONS[fmt]}"
    assert kit.export(exported, format=fmt, task="qa") == len(SOURCE)

    with tk.open(second_store(tmp_path)) as again:
        report = again.import_files([exported])
        assert (report.read, report.imported, report.rejected) == (len(SOURCE), len(SOURCE), 0), \
            report.to_dict()
        back = content(again)
    assert set(back) == set(original)
    for digest, (labels, metadata, _inputs, _outputs) in original.items():
        if fmt in LABELLED:
            assert back[digest][0] == labels
        if fmt in WITH_METADATA:
            assert back[digest][1] == metadata


@pytest.mark.parametrize("fmt", sorted(EXTENSIONS))
def test_round_trip_through_the_cli(source, tmp_path, fmt):
    tk.open().close()  # the project's store, from trainkit.toml
    assert run("import", source.name).exit_code == 0
    with tk.open("sqlite:///trainkit.db") as kit:
        original = content(kit)
    exported = f"out.{EXTENSIONS[fmt]}"
    result = run("export", "-o", exported, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"exported {len(SOURCE)} examples to {exported}"

    url = second_store(tmp_path)
    tk.open(url).close()  # create it
    result = run("--db", url, "import", exported)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"read {len(SOURCE)}, imported {len(SOURCE)}, duplicates 0, rejected 0"
    with tk.open(url) as again:
        assert set(content(again)) == set(original)

    # and back into the first store: every record is a duplicate of what is there
    result = run("import", exported)
    assert result.stdout.strip() == f"read {len(SOURCE)}, imported 0, duplicates {len(SOURCE)}, rejected 0"


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "yaml"])
def test_export_with_provenance_reimports_to_the_same_content(kit, source, tmp_path, fmt):
    kit.import_files([source])
    original = content(kit)
    exported = tmp_path / f"full.{fmt}"
    kit.export(exported, format=fmt, provenance=True)
    with tk.open(second_store(tmp_path)) as again:
        report = again.import_files([exported])
        assert report.rejected == 0, report.to_dict()
        back = content(again)
        stored = list(again.examples())
    assert set(back) == set(original)
    for ex in stored:  # the exported id, status, scores, times describe the old copy; they are not content
        assert not {"id", "status", "content_hash", "created_at", "scores"} & set(ex.metadata)
        assert ex.provenance["origin"].startswith(str(exported))


def test_the_second_export_is_identical_to_the_first(kit, source, tmp_path):
    kit.import_files([source])
    first = tmp_path / "first.jsonl"
    kit.export(first, format="jsonl")
    with tk.open(second_store(tmp_path)) as again:
        again.import_files([first])
        second = tmp_path / "second.jsonl"
        again.export(second, format="jsonl")
    assert sorted(second.read_text(encoding="utf-8").splitlines()) == \
        sorted(first.read_text(encoding="utf-8").splitlines())


QUOTED = ['plain', 'a"b', '"quoted"', 'z']


@pytest.mark.parametrize("fmt", [
    "csv",
    "dspy", "json", "jsonl", "yaml"])
def test_round_trip_of_text_with_double_quotes(kit, tmp_path, fmt):
    for number, text in enumerate(QUOTED):
        kit.add(task="qa", inputs={"question": f"q{number}", "context": "c"}, outputs={"answer": text})
    original = content(kit)
    exported = tmp_path / f"out.{EXTENSIONS[fmt]}"
    kit.export(exported, format=fmt)
    with tk.open(second_store(tmp_path)) as again:
        report = again.import_files([exported])
        assert {ex.inputs["question"]: ex.outputs["answer"] for ex in again.examples()} == \
            {f"q{n}": text for n, text in enumerate(QUOTED)}
        assert (report.read, report.imported) == (len(QUOTED), len(QUOTED))
        assert set(content(again)) == set(original)


def test_csv_round_trip_of_text_that_looks_like_json(kit, tmp_path):
    kit.add(task="qa", inputs={"question": "q1", "context": "c"}, outputs={"answer": '{"a": 1}'})
    kit.add(task="qa", inputs={"question": "q2", "context": "c"}, outputs={"answer": "[1, 2]"})
    original = content(kit)
    kit.export(tmp_path / "out.csv")
    with tk.open(second_store(tmp_path)) as again:
        again.import_files([tmp_path / "out.csv"])
        assert set(content(again)) == set(original)


def test_csv_round_trip_keeps_metadata(kit, source, tmp_path):
    kit.import_files([source])
    original = content(kit)
    kit.export(tmp_path / "out.csv")
    with tk.open(second_store(tmp_path)) as again:
        again.import_files([tmp_path / "out.csv"])
        back = content(again)
    assert {d: v[1] for d, v in back.items()} == {d: v[1] for d, v in original.items()}
