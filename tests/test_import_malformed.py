"""Malformed input through `trainkit import`: handled per record, the rest imported, nothing lost, no traceback.

Each case writes a small (or, for the 10 MB field, big) file into the test's folder, imports it through the real
command line (click's CliRunner) into a project whose task `qa` declares `question -> answer`, and then checks
what the store holds, what was reported and the exit status.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli

EXIT_SOME_REJECTED = 3


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def import_json(*args: str) -> tuple[object, dict]:
    """`trainkit import ARGS --json`: the result and its parsed summary."""
    result = run("import", *args, "--json")
    assert "Traceback" not in result.output, result.output
    return result, json.loads(result.stdout)


def problems(summary: dict) -> dict[str, str]:
    """position -> message, over every file of a `--json` summary."""
    return {p["position"]: p["message"] for f in summary["files"].values() for p in f["problems"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    result = run("init", "--task", "qa", "--signature", "question -> answer")
    assert result.exit_code == 0, result.output
    return tmp_path


def stored(project: Path) -> dict[str, dict]:
    """question -> outputs of every stored example (any status)."""
    with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
        return {ex.inputs.get("question"): ex.outputs for ex in kit.examples()}


def event_count(project: Path, kind: str | None = None) -> int:
    """Audit events in the store (of `kind`, or all)."""
    with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
        return sum(1 for event in kit.events() if kind is None or event.kind == kind)


def write_lines(path: Path, *lines: str, end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


# -- JSON Lines ----------------------------------------------------------------------------------------------

def test_jsonl_bad_lines_are_reported_and_the_rest_imported(project):
    write_lines(project / "data.jsonl",
                '{"question": "a", "answer": "1"}',
                "{not json}",
                "[1, 2]",
                '{"question": "b", "answer": "2"}',
                '{"question": "c", "ans',  # cut short: no newline at the end of the file
                end="")
    result, summary = import_json("data.jsonl", "--rejects", "rejects.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert (summary["read"], summary["imported"], summary["duplicates"], summary["rejected"]) == (5, 2, 0, 3)
    found = problems(summary)
    assert set(found) == {"data.jsonl:line 2", "data.jsonl:line 3", "data.jsonl:line 5"}
    assert "not valid JSON" in found["data.jsonl:line 2"]
    assert "expected a JSON object" in found["data.jsonl:line 3"]
    assert "cut short" in found["data.jsonl:line 5"]
    assert stored(project) == {"a": {"answer": "1"}, "b": {"answer": "2"}}
    # nothing lost: each unreadable line is in the rejects file, text and all
    rejects = [json.loads(line) for line in (project / "rejects.jsonl").read_text().splitlines()]
    assert [r["_trainkit_raw"] for r in rejects] == ["{not json}", "[1, 2]", '{"question": "c", "ans']
    assert [r["_trainkit_reject"]["position"] for r in rejects] == sorted(found)


def test_jsonl_summary_lines_on_stderr_name_each_bad_line(project):
    write_lines(project / "data.jsonl", '{"question": "a", "answer": "1"}', "nope")
    result = run("import", "data.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert result.stdout.strip() == "read 2, imported 1, duplicates 0, rejected 1"
    assert result.stderr.startswith("data.jsonl:line 2: not valid JSON")
    assert "Traceback" not in result.output


# -- CSV -----------------------------------------------------------------------------------------------------

def test_csv_rows_with_too_many_or_too_few_cells(project):
    write_lines(project / "data.csv", "question,answer", "q1,a1", "q2,a2,surplus", "q3", "q4,a4")
    result, summary = import_json("data.csv")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert (summary["read"], summary["imported"], summary["rejected"]) == (4, 2, 2)
    assert problems(summary) == {"data.csv:line 3": "3 cells but the header has 2 columns",
                                 "data.csv:line 4": "1 cells but the header has 2 columns"}
    assert stored(project) == {"q1": {"answer": "a1"}, "q4": {"answer": "a4"}}


def test_csv_bad_row_keeps_its_cells_in_the_rejects_file(project):
    write_lines(project / "data.csv", "question,answer", "q1,a1", "q2,a2,surplus")
    result = run("import", "data.csv", "--rejects", "rejects.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    (reject,) = [json.loads(line) for line in (project / "rejects.jsonl").read_text().splitlines()]
    assert "q2" in json.dumps(reject) and "surplus" in json.dumps(reject)


def test_csv_unclosed_quote_keeps_the_rows_before_it(project):
    write_lines(project / "data.csv", "question,answer", "q1,a1", "q2,a2", 'q3,"never closed', "q4,a4")
    result, summary = import_json("data.csv")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert (summary["read"], summary["imported"], summary["rejected"]) == (3, 2, 1)
    (position, message), = problems(summary).items()
    assert position == "data.csv:line 4" and "quote" in message
    assert stored(project) == {"q1": {"answer": "a1"}, "q2": {"answer": "a2"}}


# -- encodings -----------------------------------------------------------------------------------------------

LATIN1_TEXT = {
    "jsonl": '{"question": "café?", "answer": "crème brûlée"}\n',
    "csv": "question,answer\ncafé?,crème brûlée\n",
    "yaml": "- question: café?\n  answer: crème brûlée\n",
    "json": '[{"question": "café?", "answer": "crème brûlée"}]\n',
}


@pytest.mark.parametrize("fmt", sorted(LATIN1_TEXT))
def test_latin1_file_names_encoding_and_imports_with_it(project, fmt):
    path = project / f"data.{fmt}"
    path.write_bytes(LATIN1_TEXT[fmt].encode("latin-1"))
    result = run("import", path.name)
    assert result.exit_code != 0
    assert "--encoding" in result.output, result.output
    assert "Traceback" not in result.output
    assert stored(project) == {}

    result = run("import", path.name, "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    assert stored(project) == {"café?": {"answer": "crème brûlée"}}


def test_csv_with_a_late_latin1_byte_keeps_the_rows_before_it(project):
    rows = [f"q{i},a{i}" for i in range(3000)]
    (project / "data.csv").write_bytes(("question,answer\n" + "\n".join(rows) + "\n").encode() + b"caf\xe9,x\n")
    result = run("import", "data.csv")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert "--encoding" in result.stderr and "Traceback" not in result.output
    got = stored(project)
    assert 0 < len(got) <= 3000 and "q0" in got


def test_csv_encoding_error_names_the_line_and_keeps_every_row_before_it(project):
    rows = [f"q{i},a{i}" for i in range(50)]
    (project / "data.csv").write_bytes(("question,answer\n" + "\n".join(rows) + "\n").encode()
                                       + b"caf\xe9,x\nafter,y\n")
    result = run("import", "data.csv")
    assert "line 52" in result.stderr or "line 51" in result.stderr, result.stderr
    assert len(stored(project)) == 50


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_unknown_encoding_is_one_error(project, fmt):
    (project / f"data.{fmt}").write_bytes(LATIN1_TEXT[fmt].encode("utf-8"))
    write_lines(project / "more.jsonl", *(json.dumps({"question": f"q{i}", "answer": "a"}) for i in range(30)))
    result = run("import", f"data.{fmt}", "more.jsonl", "--encoding", "no-such-codec")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "no-such-codec" in lines[0], result.stderr
    assert stored(project) == {}


def test_utf8_with_bom_needs_no_encoding(project):
    (project / "data.csv").write_bytes("question,answer\nnaïve?,oui\n".encode("utf-8-sig"))
    (project / "data.jsonl").write_bytes('{"question": "déjà?", "answer": "vu"}\n'.encode("utf-8-sig"))
    result = run("import", "data.csv", "data.jsonl")
    assert result.exit_code == 0, result.output
    assert stored(project) == {"naïve?": {"answer": "oui"}, "déjà?": {"answer": "vu"}}


# -- empty files and big fields ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "csv", "yaml"])
def test_empty_file_imports_nothing_and_succeeds(project, fmt):
    (project / f"empty.{fmt}").write_bytes(b"")
    result, summary = import_json(f"empty.{fmt}")
    assert result.exit_code == 0
    assert (summary["read"], summary["imported"], summary["rejected"]) == (0, 0, 0)
    assert stored(project) == {} and event_count(project) == 0


def test_empty_json_file_imports_nothing_and_succeeds(project):
    (project / "empty.json").write_bytes(b"")
    result, summary = import_json("empty.json")
    assert (summary["read"], summary["imported"], summary["rejected"]) == (0, 0, 0)
    assert result.exit_code == 0


def test_empty_json_file_is_reported_without_a_traceback(project):
    (project / "empty.json").write_bytes(b"")
    result = run("import", "empty.json")
    assert result.exit_code in (0, EXIT_SOME_REJECTED)
    assert "Traceback" not in result.output
    assert stored(project) == {} and event_count(project, "added") == 0


def test_header_only_csv_and_blank_jsonl_lines_are_not_records(project):
    write_lines(project / "header.csv", "question,answer")
    write_lines(project / "blank.jsonl", "", '{"question": "a", "answer": "1"}', "   ", "")
    result, summary = import_json("header.csv", "blank.jsonl")
    assert result.exit_code == 0
    assert (summary["read"], summary["imported"]) == (1, 1)


BIG = "x" * (10 * 1024 * 1024)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json", "yaml"])
def test_ten_megabyte_field(project, fmt, monkeypatch):
    # the reader is under test here; the lengths validator would (rightly) reject a 10 MB answer
    monkeypatch.setenv("TRAINKIT_DISABLE_PLUGINS", "lengths")
    records = [{"question": "big", "answer": BIG}, {"question": "small", "answer": "s"}]
    path = project / f"big.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif fmt == "json":
        path.write_text(json.dumps(records))
    elif fmt == "csv":
        path.write_text("question,answer\n" + "".join(f"{r['question']},{r['answer']}\n" for r in records))
    else:
        path.write_text("".join(f"- question: {r['question']}\n  answer: {r['answer']}\n" for r in records))
    result, summary = import_json(path.name)
    assert result.exit_code == 0, summary
    assert summary["imported"] == 2
    got = stored(project)
    assert got["big"]["answer"] == BIG
    assert got["small"] == {"answer": "s"}


# -- YAML ----------------------------------------------------------------------------------------------------

def test_yaml_syntax_error_is_one_problem_naming_the_line_and_other_files_go_on(project):
    write_lines(project / "bad.yaml", "- question: a", "  answer: '1'", "- question: [unclosed", "  answer: 2")
    write_lines(project / "good.jsonl", '{"question": "g", "answer": "ok"}')
    result = run("import", "bad.yaml", "good.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert "Traceback" not in result.output
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "bad.yaml" in line and "not valid YAML" in line and "line 4" in line
    assert "nothing was imported from it" in line
    assert result.stdout.strip() == "read 2, imported 1, duplicates 0, rejected 1"
    assert stored(project) == {"g": {"answer": "ok"}}


def billion_laughs(path: Path, levels: int = 9) -> Path:
    """A top-level list whose first record holds nine levels of nine aliases each: 9**9 strings once expanded."""
    lines = ["- question: lol", "  answer: lol", "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"  a{level}: &a{level} [{refs}]")
    lines += [f"- question: *a{levels - 1}", "  answer: boom"]
    return write_lines(path, *lines)


def test_yaml_alias_bomb_is_refused_quickly_without_blowing_memory(project):
    bomb = billion_laughs(project / "bomb.yaml")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
            report = kit.import_files([bomb])
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 5, f"refusing the alias bomb took {elapsed:.1f}s"
    assert peak < 64 * 1024 * 1024, f"refusing the alias bomb peaked at {peak / 2**20:.0f} MiB"
    assert (report.read, report.imported, report.rejected) == (1, 0, 1)
    (problem,) = report.files[str(bomb)].problems
    assert "alias" in problem.message and "refusing" in problem.message

    result = run("import", "bomb.yaml")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert "alias" in result.stderr and "Traceback" not in result.output
    assert stored(project) == {}


def test_yaml_record_with_a_key_written_twice_is_rejected_alone_naming_the_key_and_lines(project):
    """YAML keeps the last of two equal keys without a word: a hand-edited answer could silently replace another.
    The record is rejected with the key and both lines (nested mappings too); the other records are stored."""
    write_lines(project / "dup.yaml",
                "- question: a", "  answer: '1'", "  answer: '2'",
                "- question: b", "  answer: '3'", "  metadata: {source: quiz, source: book}",
                "- question: c", "  answer: '4'")
    result = run("import", "dup.yaml")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert result.stderr.splitlines() == [
        "dup.yaml:line 1: key 'answer' appears twice (lines 2 and 3): YAML would keep only the last value; "
        "remove one",
        "dup.yaml:line 4: key 'source' appears twice (both on line 6): YAML would keep only the last value; "
        "remove one"]
    assert result.stdout.strip() == "read 3, imported 1, duplicates 0, rejected 2"
    assert stored(project) == {"c": {"answer": "4"}}


def test_yaml_with_ordinary_anchors_is_imported(project):
    write_lines(project / "anchors.yaml",
                "- question: a", "  answer: '1'", "  metadata: &meta {author: bob, book: algebra}",
                "- question: b", "  answer: '2'", "  metadata: *meta")
    result, summary = import_json("anchors.yaml")
    assert result.exit_code == 0 and summary["imported"] == 2
    with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
        assert [ex.metadata for ex in kit.examples()] == [{"author": "bob", "book": "algebra"}] * 2


# -- whole-file JSON errors ----------------------------------------------------------------------------------

def test_json_positions_count_records_from_one_in_words(project):
    """`examples[1]` read as the second record to anyone counting from 0 (jq, Python): a stranger's finding."""
    (project / "top.json").write_text('[{"question": "a", "answer": "1"}, 5]')
    (project / "held.json").write_text('{"source": "x", "examples": [7, {"question": "b", "answer": "2"}]}')
    result, summary = import_json("top.json", "held.json")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert set(problems(summary)) == {"top.json:item 2", "held.json:examples item 1"}
    assert {ex["answer"] for ex in stored(project).values()} == {"1", "2"}


def test_malformed_json_document_is_one_error_with_its_position(project):
    (project / "bad.json").write_text('[{"question": "a", "answer": "1"},\n {"question": "b"')
    result = run("import", "bad.json")
    assert result.exit_code != 0
    assert "bad.json" in result.output and "not valid JSON" in result.output and "line 2" in result.output
    assert "Traceback" not in result.output
    assert stored(project) == {}


def test_malformed_json_file_does_not_stop_the_other_files(project):
    (project / "bad.json").write_text('[{"question": "a", "answer": "1"},')
    write_lines(project / "good.jsonl", '{"question": "g", "answer": "ok"}')
    result = run("import", "bad.json", "good.jsonl")
    assert "Traceback" not in result.output
    assert result.exit_code == EXIT_SOME_REJECTED
    assert result.stdout.strip() == "read 2, imported 1, duplicates 0, rejected 1"
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("bad.json: not valid JSON")
    assert stored(project) == {"g": {"answer": "ok"}}


# -- records missing required fields -------------------------------------------------------------------------

def test_records_missing_required_fields_are_stored_as_rejected_with_reasons(project):
    write_lines(project / "data.jsonl",
                '{"question": "good", "answer": "yes"}',
                '{"question": "no answer"}',
                '{"answer": "no question"}',
                '{"question": "empty answer", "answer": ""}')
    reported = []
    with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
        report = kit.import_files([project / "data.jsonl"], on_reject=lambda *a: reported.append(a))
        by_question = {ex.inputs.get("question"): ex for ex in kit.examples()}
    assert (report.read, report.imported, report.rejected) == (4, 1, 3)
    assert by_question["good"].status == "accepted"
    assert by_question["no answer"].status == "rejected"
    assert [(f.code, f.field) for f in by_question["no answer"].findings] == [("missing-field", "outputs.answer")]
    assert [(f.code, f.field) for f in by_question[None].findings] == [("missing-field", "inputs.question")]
    assert [(f.code, f.field) for f in by_question["empty answer"].findings] == [("empty-value", "outputs.answer")]
    assert [(position, reasons) for position, _record, reasons in reported] == [
        (f"{project / 'data.jsonl'}:line 2", ["outputs.answer: outputs.answer is required by task 'qa' "
                                              "[missing-field]"]),
        (f"{project / 'data.jsonl'}:line 3", ["inputs.question: inputs.question is required by task 'qa' "
                                              "[missing-field]"]),
        (f"{project / 'data.jsonl'}:line 4", ["outputs.answer: outputs.answer is empty [empty-value]"]),
    ]


def test_missing_required_fields_through_the_cli(project):
    write_lines(project / "data.csv", "question,hint", "q1,h1", "q2,h2")
    result = run("import", "data.csv", "--rejects", "rejects.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert result.stdout.strip() == "read 2, imported 0, duplicates 0, rejected 2"
    rejects = [json.loads(line) for line in (project / "rejects.jsonl").read_text().splitlines()]
    assert [r["_trainkit_reject"]["reasons"] for r in rejects] == [
        ["outputs.answer: outputs.answer is required by task 'qa' [missing-field]"]] * 2
    assert [r["inputs"] for r in rejects] == [{"question": "q1"}, {"question": "q2"}]
    assert [r["metadata"] for r in rejects] == [{"hint": "h1"}, {"hint": "h2"}]


# -- paths that are not files --------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "fragment"), [
    (("folder",), "folder: is a folder"),
    (("missing.jsonl",), "missing.jsonl: no such file"),
    (("good.jsonl", "missing.jsonl"), "missing.jsonl: no such file"),
    (("good.jsonl", "folder"), "folder: is a folder"),
])
def test_a_folder_or_missing_path_is_one_error_and_nothing_is_imported(project, args, fragment):
    (project / "folder").mkdir()
    write_lines(project / "good.jsonl", '{"question": "g", "answer": "ok"}')
    result = run("import", *args, "--rejects", "rejects.jsonl")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr
    assert result.stdout == "" and "Traceback" not in result.output
    assert stored(project) == {} and event_count(project) == 0
