"""`trainkit import` as a user drives it: summary and exit status, the rejects file and recovery, re-runs and
interruptions (a plugin raising KeyboardInterrupt, and a real `kill -9`), field mapping, --format and --dry-run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
import dspy_trainkit.plugin_manager as plugins_module
from dspy_trainkit import hookimpl
from dspy_trainkit.cli.main import cli

EXIT_SOME_REJECTED = 3
EXIT_INTERRUPTED = 130
QA_TOML = 'default_task = "qa"\n\n[tasks.qa]\nsignature = "question -> answer"\n'


def run(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output, result.output
    return result


def one_error_line(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write_jsonl(path: Path, *records: dict | str) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose task `qa` declares `question -> answer`, with its store created."""
    (tmp_path / "trainkit.toml").write_text(QA_TOML)
    tk.open().close()
    return tmp_path


def examples(**filters) -> list[tk.Example]:
    with tk.open() as kit:
        return list(kit.examples(**filters))


def events() -> int:
    with tk.open() as kit:
        return sum(1 for _ in kit.events())


def by_question(**filters) -> dict[str, tk.Example]:
    return {ex.inputs.get("question"): ex for ex in examples(**filters)}


# -- summary and exit status ---------------------------------------------------------------------------------

def test_summary_counts_and_exit_status(project):
    write_jsonl(project / "good.jsonl", {"question": "a", "answer": "1"}, {"question": "b", "answer": "2"})
    result = run("import", "good.jsonl")
    assert result.exit_code == 0
    assert result.stdout == "read 2, imported 2, duplicates 0, rejected 0\n"
    assert result.stderr == ""

    write_jsonl(project / "mixed.jsonl",
                {"question": "a", "answer": "1"},  # stored already
                {"question": "c", "answer": "3"},
                {"question": "c", "answer": "3 "},  # the same content again, within the file
                "not json",
                {"question": "d"})  # no answer: stored as rejected
    result = run("import", "mixed.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert result.stdout == "read 5, imported 1, duplicates 2, rejected 2\n"
    assert result.stderr.splitlines()[0].startswith("mixed.jsonl:line 4: not valid JSON")
    assert set(by_question()) == {"a", "b", "c", "d"}
    assert by_question()["d"].status == "rejected"

    data = json.loads(run("import", "mixed.jsonl", "--json").stdout)
    assert {k: data[k] for k in ("read", "imported", "duplicates", "rejected")} == \
        {"read": 5, "imported": 0, "duplicates": 4, "rejected": 1}


def test_rerunning_the_same_import_adds_nothing(store_url, tmp_path):
    (tmp_path / "trainkit.toml").write_text(QA_TOML + "\n[intake]\nbatch_size = 7\n")
    tk.open(store_url).close()
    write_jsonl(tmp_path / "data.jsonl", *({"question": f"q{i}", "answer": str(i)} for i in range(30)))
    first = run("--db", store_url, "import", "data.jsonl")
    assert first.stdout == "read 30, imported 30, duplicates 0, rejected 0\n"

    def state() -> tuple[list[tuple[str, str]], int]:
        with tk.open(store_url) as kit:
            stored = sorted((ex.id, ex.content_hash) for ex in kit.examples())
            return stored, sum(1 for event in kit.events() if event.kind == "added")

    before = state()
    assert len(before[0]) == 30 and before[1] == 5  # one "added" event per committed batch of 7

    again = run("--db", store_url, "import", "data.jsonl")
    assert again.exit_code == 0
    assert again.stdout == "read 30, imported 0, duplicates 30, rejected 0\n"
    assert state() == before  # the same examples, and no new "added" events


# -- the rejects file ----------------------------------------------------------------------------------------

def test_rejects_file_holds_bad_records_with_reasons_and_reimports_after_a_fix(project):
    write_jsonl(project / "data.jsonl",
                {"question": "good", "answer": "yes"},
                '{"question": "broken", "answer": "no"',  # a missing brace
                {"question": "unanswered", "topic": "t1"})
    result = run("import", "data.jsonl", "--rejects", "rejects.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert "rejects.jsonl" in result.stderr

    rejects = read_jsonl(project / "rejects.jsonl")
    assert [r["_trainkit_reject"]["position"] for r in rejects] == ["data.jsonl:line 2", "data.jsonl:line 3"]
    assert "not valid JSON" in rejects[0]["_trainkit_reject"]["reasons"][0]
    assert rejects[0]["_trainkit_raw"] == '{"question": "broken", "answer": "no"'
    assert rejects[1]["_trainkit_reject"]["reasons"] == [
        "outputs.answer: outputs.answer is required by task 'qa' [missing-field]"]
    assert rejects[1]["inputs"] == {"question": "unanswered"} and rejects[1]["topic"] == "t1"

    # the user fixes both records in place, keeping the _trainkit_* keys, and imports the rejects file
    rejects[0] = {"_trainkit_reject": rejects[0]["_trainkit_reject"], "_trainkit_raw": rejects[0]["_trainkit_raw"],
                  "question": "broken", "answer": "no"}
    rejects[1]["outputs"] = {"answer": "now answered"}
    write_jsonl(project / "rejects.jsonl", *rejects)
    result = run("import", "rejects.jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout == "read 2, imported 2, duplicates 0, rejected 0\n"

    stored = by_question(status="accepted")
    assert set(stored) == {"good", "broken", "unanswered"}
    assert stored["unanswered"].outputs == {"answer": "now answered"} and stored["unanswered"].topic == "t1"
    for ex in stored.values():
        text = json.dumps([ex.inputs, ex.outputs, ex.metadata])
        assert "_trainkit" not in text
    assert stored["broken"].provenance["origin"] == "rejects.jsonl:line 1"


def test_an_unfixed_raw_line_in_a_rejects_file_is_not_stored_as_an_empty_example(project):
    write_jsonl(project / "data.jsonl", {"question": "good", "answer": "yes"}, "{not json}")
    run("import", "data.jsonl", "--rejects", "rejects.jsonl")
    result = run("import", "rejects.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert [ex.inputs for ex in examples()] == [{"question": "good"}]


def test_rejects_file_that_is_also_an_input_is_refused_not_truncated(project):
    write_jsonl(project / "data.jsonl", {"question": "good", "answer": "yes"}, {"question": "unanswered"})
    run("import", "data.jsonl", "--rejects", "rejects.jsonl")
    before = (project / "rejects.jsonl").read_text()
    assert "unanswered" in before
    result = run("import", "rejects.jsonl", "--rejects", "rejects.jsonl")
    assert (project / "rejects.jsonl").read_text() == before
    one_error_line(result, "rejects.jsonl")


# -- interruptions -------------------------------------------------------------------------------------------

class InterruptAfter:
    """A plugin that acts like Ctrl-C right after the `batches`-th committed batch."""

    def __init__(self, batches: int):
        self.batches, self.seen = batches, 0

    @hookimpl
    def on_data_changed(self, event, context):
        self.seen += 1
        if self.seen == self.batches:
            raise KeyboardInterrupt


def interrupt_project(tmp_path: Path, store_url: str | None = None, n: int = 23, batch_size: int = 5) -> Path:
    (tmp_path / "trainkit.toml").write_text(QA_TOML + f"\n[intake]\nbatch_size = {batch_size}\n")
    tk.open(store_url).close()
    return write_jsonl(tmp_path / "data.jsonl", *({"question": f"q{i}", "answer": str(i)} for i in range(n)))


def assert_exactly_once(kit: tk.Kit, n: int) -> None:
    stored = list(kit.examples())
    assert len(stored) == n
    assert len({ex.content_hash for ex in stored}) == n
    assert sorted(ex.inputs["question"] for ex in stored) == sorted(f"q{i}" for i in range(n))


def test_interrupted_import_then_rerun_stores_each_record_once(store_url, tmp_path):
    data = interrupt_project(tmp_path, store_url)
    with tk.open(store_url, plugins=[("interrupter", InterruptAfter(2))]) as kit:
        with pytest.raises(KeyboardInterrupt):
            kit.import_files([data])
        assert kit.count() == 10  # the two committed batches of 5 are kept

    with tk.open(store_url) as kit:
        report = kit.import_files([data])
        assert (report.read, report.imported, report.duplicates, report.rejected) == (23, 13, 10, 0)
        assert_exactly_once(kit, 23)


def test_interrupted_cli_import_exits_130_and_says_to_run_it_again(project, monkeypatch):
    data = interrupt_project(project)
    real = plugins_module.make_plugin_manager

    def with_interrupter(**options):
        return real(**options, extra_plugins=[("interrupter", InterruptAfter(2))])

    with monkeypatch.context() as patch:
        patch.setattr(plugins_module, "make_plugin_manager", with_interrupter)
        result = run("import", data.name, "--rejects", "rejects.jsonl")
    assert result.exit_code == EXIT_INTERRUPTED
    assert "interrupted" in result.stderr and "run the same command again" in result.stderr
    assert "read " not in result.stdout  # no summary pretending it finished
    assert len(examples()) == 10

    result = run("import", data.name)
    assert result.exit_code == 0
    assert result.stdout == "read 23, imported 13, duplicates 10, rejected 0\n"
    with tk.open() as kit:
        assert_exactly_once(kit, 23)


def trainkit_command() -> list[str]:
    if (Path(tk.__file__).parent / "__main__.py").exists():
        return [sys.executable, "-m", "dspy_trainkit"]
    script = Path(sys.executable).parent / ("trainkit.exe" if os.name == "nt" else "trainkit")
    if not script.exists():
        pytest.fail(f"no trainkit script beside {sys.executable}; install the project (pip install -e .[test])")
    return [str(script)]


def stored_count(db: Path) -> int:
    connection = sqlite3.connect(db, timeout=30)
    try:
        return connection.execute("SELECT count(*) FROM examples").fetchone()[0]
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="kill -9 is POSIX")
def test_kill_9_partway_then_rerun_stores_each_record_once(tmp_path):
    n, batch = 40_000, 200
    data = interrupt_project(tmp_path, n=n, batch_size=batch)
    db = tmp_path / "trainkit.db"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    command = [*trainkit_command(), "import", data.name, "--quiet"]

    process = subprocess.Popen(command, cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None and stored_count(db) < 5 * batch:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "the import finished before it could be killed"

    partial = stored_count(db)
    assert 0 < partial < n
    assert partial % batch == 0  # only whole batches were committed

    rerun = subprocess.run(command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == f"read {n}, imported {n - partial}, duplicates {partial}, rejected 0\n"
    with tk.open() as kit:
        assert_exactly_once(kit, n)


# -- field mapping -------------------------------------------------------------------------------------------

NESTED = [
    {"id": 1, "body": {"text": "What is 2+2?"}, "sol": {"value": "4"}, "meta": {"level": "easy"},
     "subject": "math", "src": "book"},
    {"id": 2, "body": {"text": "What is 3+3?"}, "sol": {"value": "6"}, "meta": {"level": "hard"}, "subject": ""},
]


def test_map_dotted_paths_and_labels_from_fields_and_defaults(project):
    write_jsonl(project / "nested.jsonl", *NESTED)
    result = run("import", "nested.jsonl", "--map", "question=body.text", "--map", "answer=sol.value",
                 "--map", "difficulty=meta.level", "--map", "domain=subject",
                 "--domain", "general", "--topic", "arithmetic")
    assert result.exit_code == 0, result.output
    stored = by_question()
    first, second = stored["What is 2+2?"], stored["What is 3+3?"]
    assert (first.inputs, first.outputs) == ({"question": "What is 2+2?"}, {"answer": "4"})
    assert (first.domain, first.topic, first.difficulty) == ("math", "arithmetic", "easy")  # field beats default
    assert (second.domain, second.topic, second.difficulty) == ("general", "arithmetic", "hard")
    assert first.metadata == {"id": 1, "src": "book"}  # neither input, output nor label: kept
    assert second.metadata == {"id": 2}
    assert first.status == second.status == "accepted"


def test_map_from_a_nested_record_keeps_the_unmapped_parts(project):
    write_jsonl(project / "nested.jsonl",
                {"question": "q", "answer": "a", "meta": {"level": "easy", "author": "bob"}})
    assert run("import", "nested.jsonl", "--map", "difficulty=meta.level").exit_code == 0
    (ex,) = examples()
    assert ex.difficulty == "easy"
    assert "bob" in json.dumps(ex.metadata)


def test_map_into_inputs_and_outputs(project):
    write_jsonl(project / "data.jsonl", {"q": {"text": "Capital of France?"}, "a": "Paris", "note": "geo"})
    result = run("import", "data.jsonl", "--task", "free", "--map", "inputs.question=q.text",
                 "--map", "outputs.answer=a")
    assert result.exit_code == 0, result.output
    (ex,) = examples()
    assert (ex.task, ex.inputs, ex.outputs) == ("free", {"question": "Capital of France?"}, {"answer": "Paris"})
    assert ex.metadata == {"note": "geo"}


def test_map_into_inputs_with_the_rest_split_by_the_signature(project):
    write_jsonl(project / "data.jsonl", {"q": "Capital of France?", "answer": "Paris"})
    result = run("import", "data.jsonl", "--map", "inputs.question=q")
    (ex,) = examples()
    assert (ex.inputs, ex.outputs, ex.status) == ({"question": "Capital of France?"}, {"answer": "Paris"},
                                                  "accepted")
    assert result.exit_code == 0


def test_input_and_output_fields_options(project):
    write_jsonl(project / "data.jsonl",
                {"question": "2+2?", "context": "sums", "answer": "4", "topic": "add", "url": "http://x"})
    result = run("import", "data.jsonl", "--task", "free", "--input-fields", "question, context",
                 "--output-fields", "answer")
    assert result.exit_code == 0, result.output
    (ex,) = examples()
    assert ex.inputs == {"question": "2+2?", "context": "sums"} and ex.outputs == {"answer": "4"}
    assert ex.topic == "add" and ex.metadata == {"url": "http://x"}


def test_input_fields_alone_make_the_rest_outputs(project):
    write_jsonl(project / "data.jsonl", {"question": "2+2?", "answer": "4", "why": "sum", "difficulty": "easy"})
    assert run("import", "data.jsonl", "--task", "free", "--input-fields", "question").exit_code == 0
    (ex,) = examples()
    assert ex.inputs == {"question": "2+2?"} and ex.outputs == {"answer": "4", "why": "sum"}
    assert ex.difficulty == "easy"


def test_fields_come_from_the_signature_in_trainkit_toml(project):
    (project / "trainkit.toml").write_text(
        QA_TOML + '\n[tasks.problems]\nsignature = "domain, topic, difficulty -> problem, solution"\n')
    write_jsonl(project / "problems.jsonl",
                {"domain": "math", "topic": "fractions", "difficulty": "easy", "problem": "1/2 + 1/4?",
                 "solution": "3/4", "author": "amy"})
    result = run("import", "problems.jsonl", "--task", "problems")
    assert result.exit_code == 0, result.output
    (ex,) = examples()
    assert ex.inputs == {"domain": "math", "topic": "fractions", "difficulty": "easy"}
    assert ex.outputs == {"problem": "1/2 + 1/4?", "solution": "3/4"}
    assert (ex.domain, ex.topic, ex.difficulty) == ("math", "fractions", "easy")  # labels too
    assert ex.metadata == {"author": "amy"}


def test_a_missing_map_source_rejects_that_record_naming_the_path(project):
    write_jsonl(project / "data.jsonl",
                {"body": {"text": "kept"}, "answer": "1"},
                {"body": {"title": "no text here"}, "answer": "2"})
    result = run("import", "data.jsonl", "--map", "question=body.text", "--rejects", "rejects.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert result.stdout == "read 2, imported 1, duplicates 0, rejected 1\n"
    line = result.stderr.splitlines()[0]
    assert line.startswith("data.jsonl:line 2: ") and "body.text" in line and "--map question=body.text" in line
    assert [ex.inputs for ex in examples()] == [{"question": "kept"}]
    (reject,) = read_jsonl(project / "rejects.jsonl")
    assert reject["body"] == {"title": "no text here"} and reject["answer"] == "2"  # the original record


def test_flat_records_of_an_undeclared_task_need_field_options(project):
    write_jsonl(project / "data.jsonl", {"question": "q", "answer": "a"})
    one_error_line(run("import", "data.jsonl", "--task", "free"), "--input-fields", "--output-fields")
    assert examples() == []


def test_a_malformed_map_option_is_one_error(project):
    write_jsonl(project / "data.jsonl", {"question": "q", "answer": "a"})
    one_error_line(run("import", "data.jsonl", "--map", "question"), "--map 'question'", "DEST=SOURCE")
    assert examples() == []


# -- --format and --dry-run ----------------------------------------------------------------------------------

def test_format_option_overrides_the_extension(project):
    write_jsonl(project / "data.txt", {"question": "from txt", "answer": "1"})
    write_jsonl(project / "lines.json", {"question": "from json lines", "answer": "2"},
                {"question": "second", "answer": "3"})
    one_error_line(run("import", "data.txt"), "data.txt", "--format")
    result = run("import", "data.txt", "lines.json", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout == "read 3, imported 3, duplicates 0, rejected 0\n"
    assert set(by_question()) == {"from txt", "from json lines", "second"}


def test_unknown_format_is_one_error_listing_the_known_formats(project):
    write_jsonl(project / "data.jsonl", {"question": "q", "answer": "a"})
    line = one_error_line(run("import", "data.jsonl", "--format", "parquet"), "unknown import format 'parquet'")
    for name in ("csv", "json", "jsonl", "yaml"):
        assert f"{name} (." in line
    assert examples() == []


def test_dry_run_stores_nothing_but_reports_counts(project):
    write_jsonl(project / "stored.jsonl", {"question": "old", "answer": "0"})
    run("import", "stored.jsonl")
    events_before = events()
    write_jsonl(project / "data.jsonl",
                {"question": "old", "answer": "0"},
                {"question": "new", "answer": "1"},
                {"question": "new", "answer": "1"},
                {"question": "another", "answer": "2"},
                {"question": "unanswered"},
                "broken")
    result = run("import", "data.jsonl", "--dry-run")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert result.stdout == "dry run, nothing stored: read 6, imported 2, duplicates 2, rejected 2\n"
    assert set(by_question()) == {"old"} and events() == events_before

    data = json.loads(run("import", "data.jsonl", "--dry-run", "--json").stdout)
    assert data["dry_run"] is True and (data["imported"], data["rejected"]) == (2, 2)
    assert set(by_question()) == {"old"}

    result = run("import", "data.jsonl")  # the real run does what the dry run said
    assert result.stdout == "read 6, imported 2, duplicates 2, rejected 2\n"


def test_a_flat_records_metadata_mapping_is_its_metadata_not_a_nested_field():
    from dspy_trainkit.files.mapping import FieldMap

    fields = FieldMap(task="qa", input_fields=("question",), output_fields=("answer",)).apply(
        {"question": "q", "answer": "a", "metadata": {"origin": "sheet"}, "note": "x"})
    assert fields["metadata"] == {"origin": "sheet", "note": "x"}
    only_inputs = FieldMap(task="qa", input_fields=("question",)).apply(
        {"question": "q", "answer": "a", "metadata": {"origin": "sheet"}})
    assert only_inputs["outputs"] == {"answer": "a"} and only_inputs["metadata"] == {"origin": "sheet"}
