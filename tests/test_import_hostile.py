"""Hostile input through `trainkit import`: record shapes and values that used to abort a batch, change data
without a word, or look like duplicates; standard input and pipes; YAML alias growth; format clashes.

Each case imports through the real command line (click's CliRunner) into a project whose task `qa` declares
`question -> answer`, then checks the store, the reasons reported and the exit status.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli

EXIT_SOME_REJECTED = 3


def run(*args: str, input: str | bytes | None = None):  # noqa: A002 - click's name
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def import_json(*args: str, input: str | bytes | None = None) -> tuple[object, dict]:  # noqa: A002
    result = run("import", *args, "--json", input=input)
    assert "Traceback" not in result.output, result.output
    return result, json.loads(result.stdout)


def problems(summary: dict) -> dict[str, str]:
    return {p["position"].rsplit("/", 1)[-1]: p["message"] for f in summary["files"].values()
            for p in f["problems"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    result = run("init", "--task", "qa", "--signature", "question -> answer")
    assert result.exit_code == 0, result.output
    return tmp_path


def stored(project: Path) -> dict[str, tk.Example]:
    """question (or task) -> stored example, any status."""
    with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
        return {ex.inputs.get("question", ex.task): ex for ex in kit.examples()}


# -- 6: record shapes that aborted a whole batch -------------------------------------------------------------

def test_bad_record_shapes_are_rejected_one_by_one_and_the_batch_is_kept(project):
    (project / "shapes.jsonl").write_text("\n".join([
        '{"question": "good 1", "answer": "a"}',
        '{"inputs": "not a mapping", "outputs": {"answer": "1"}}',
        '{"question": "outputs list", "outputs": [1]}',
        '{"inputs": {"question": "md"}, "outputs": {"answer": "1"}, "metadata": "text", "extra": 1}',
        '{"question": "good 2", "answer": "b"}',
    ]) + "\n")
    (project / "shapes.yaml").write_text(
        "- {question: good 3, answer: c}\n"
        "- {1: x, question: int key, answer: y}\n"
        "- {~: x, question: null key, answer: y}\n"
        "- {question: nested key, answer: y, meta: {2: z}}\n"
        "- {inputs: [a], outputs: {answer: x}}\n")
    result, summary = import_json("shapes.jsonl", "shapes.yaml")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert (summary["read"], summary["imported"], summary["rejected"]) == (10, 3, 7)
    found = problems(summary)
    assert found["shapes.jsonl:line 2"] == "inputs: expected a mapping of field names to values, got str"
    assert found["shapes.jsonl:line 3"] == "outputs: expected a mapping of field names to values, got list"
    assert found["shapes.jsonl:line 4"] == "metadata: expected a mapping of field names to values, got str"
    assert found["shapes.yaml:line 2"] == "the field name 1 (int) is not text; quote it in the file"
    assert found["shapes.yaml:line 3"] == "the field name null is not text; quote it in the file"
    assert found["shapes.yaml:line 4"].startswith("metadata.meta: the key 2 (int) is not text")
    assert found["shapes.yaml:line 5"] == "inputs: expected a mapping of field names to values, got list"
    assert set(stored(project)) == {"good 1", "good 2", "good 3"}


# -- 6, 7: numbers the store would change ---------------------------------------------------------------------

WIDE = 123456789012345678901234567890


@pytest.mark.parametrize("fmt", ["jsonl", "json", "yaml"])
def test_integers_wider_than_64_bits_are_rejected_not_rounded(project, fmt):
    records = [{"question": "wide", "answer": WIDE}, {"question": "below", "answer": -(2**63) - 1},
               {"question": "nested", "answer": "x", "meta": {"ids": [1, WIDE]}},
               {"question": "u64", "answer": 2**64 - 1}, {"question": "plain", "answer": 7}]
    path = project / f"wide.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif fmt == "json":
        path.write_text(json.dumps(records))
    else:
        path.write_text("".join(f"- {json.dumps(r)}\n" for r in records))  # JSON is YAML
    result, summary = import_json(path.name)
    assert result.exit_code == EXIT_SOME_REJECTED, result.output
    messages = list(problems(summary).values())
    assert len(messages) == 3
    assert messages[0] == (f"outputs.answer: the integer {WIDE} is wider than 64 bits and cannot be stored "
                           "exactly; write it as text (in quotes)")
    assert messages[1].startswith(f"outputs.answer: the integer {-(2**63) - 1} is wider than 64 bits")
    assert messages[2].startswith(f"metadata.meta.ids[1]: the integer {WIDE} is wider")
    kept = stored(project)
    assert set(kept) == {"u64", "plain"}
    assert kept["u64"].outputs["answer"] == 2**64 - 1 and type(kept["u64"].outputs["answer"]) is int


def test_the_reason_names_the_first_wide_integer_of_a_record_in_its_own_order(project):
    """It named the last one (the walk went last to first; a stranger's LOW)."""
    record = {"question": "two", "answer": "x", "first": [1, WIDE, -WIDE], "second": WIDE + 1}
    (project / "two.jsonl").write_text(json.dumps(record) + "\n")
    result, summary = import_json("two.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED, result.output
    [message] = problems(summary).values()
    assert message.startswith(f"metadata.first[1]: the integer {WIDE} is wider than 64 bits"), message


def test_a_label_option_with_a_byte_that_is_not_utf8_is_refused_not_a_traceback(project):
    """Python makes a lone surrogate of such a byte in an argument; the store then failed the whole batch with a
    UnicodeEncodeError traceback (a stranger's HIGH). Through add and import, serial and with workers."""
    added = run("add", "-t", "qa", "-i", "question=q?", "-o", "answer=x", "--domain", "d\udcff")
    assert added.exit_code == 1 and "Traceback" not in added.output
    assert "domain: holds '\\udcff', a lone surrogate" in added.output
    added = run("add", "-t", "qa", "-i", "question=q\udcff?", "-o", "answer=x")  # the field named, not only
    assert added.exit_code == 1 and "inputs.question: holds '\\udcff', a lone surrogate" in added.output  # "UTF-8"
    (project / "two.jsonl").write_text('{"question": "a", "answer": "b"}\n{"question": "c", "answer": "d"}\n')
    for workers in ("0", "2"):
        result, summary = import_json("two.jsonl", "--topic", "t\udcfe", "--workers", workers)
        assert result.exit_code == EXIT_SOME_REJECTED, result.output
        assert set(problems(summary).values()) == {
            "topic: holds '\\udcfe', a lone surrogate (often a byte that is not UTF-8, from a command-line argument "
            "or a file in another encoding), which cannot be stored; check the encoding of its source"}
    assert stored(project) == {}
    result, _ = import_json("two.jsonl")
    assert result.exit_code == 0 and set(stored(project)) == {"a", "c"}


def test_an_interrupted_dry_run_does_not_say_batches_are_kept(project, monkeypatch):
    """It said "the batches already stored are kept", though a dry run stores nothing (a stranger's LOW)."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tk.Kit, "import_files", interrupted)
    (project / "g.jsonl").write_text('{"question": "a", "answer": "b"}\n')
    result = CliRunner().invoke(cli, ["import", "g.jsonl", "--dry-run"])
    assert result.exit_code == 130 and "interrupted: a dry run stores nothing" in result.stderr, result.output
    assert "kept" not in result.stderr


def test_a_file_name_with_a_byte_that_is_not_utf8_is_imported_and_named_with_the_byte_escaped(project):
    """Its name went into every record's origin and the import's event, which the store refused: a traceback,
    nothing stored."""
    import os

    name = os.fsdecode(b"bad\xff.jsonl")  # as Python gives it from the command line
    (project / name).write_text('{"question": "a", "answer": "b"}\n')
    result = run("import", name)
    assert result.exit_code == 0, result.output
    [example] = stored(project).values()
    assert example.provenance["origin"] == "bad\\xff.jsonl:line 1"


@pytest.mark.parametrize("args", [["list", "--domain", "d\udcff"], ["stats", "--task", "q\udcff"],
                                  ["log", "--id", "x\udcff"], ["import", "g.jsonl", "--input-fields", "quest\udcff"]])
def test_a_search_for_text_that_is_not_utf8_is_one_error_line(project, args):
    """The store's UnicodeEncodeError came out as a traceback (a stranger's finding); so did orjson's TypeError for
    an import whose `--input-fields` named a field with such a byte (its "missing field" finding holds the name)."""
    (project / "g.jsonl").write_text('{"question": "a", "answer": "b"}\n')
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit | None), result.exception
    assert "Traceback" not in result.output and result.stderr.startswith("Error: the argument '"), result.output
    assert "\\xff' is not UTF-8 text" in result.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "yaml"])
def test_records_with_integers_wider_than_64_bits_are_written_whole_to_the_rejects_file(project, fmt):
    """orjson writes no integer wider than 64 bits: the rejects file used to crash the import (a traceback, and
    the batch's good records not stored)."""
    records = [{"question": "good 1", "answer": "a"}, {"question": "wide", "answer": WIDE},
               {"question": "nested", "answer": "x", "meta": {"ids": [-WIDE]}}, {"question": "good 2", "answer": "b"}]
    path = project / f"wide.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text("".join(f"- {json.dumps(r)}\n" for r in records))
    result, summary = import_json(path.name, "--rejects", "bad.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED, result.output
    assert summary["imported"] == 2 and summary["rejected"] == 2, summary
    assert set(stored(project)) == {"good 1", "good 2"}
    lines = [json.loads(line) for line in (project / "bad.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["outputs"]["answer"] for line in lines] == [WIDE, "x"]
    assert lines[1]["metadata"]["meta"]["ids"] == [-WIDE]
    assert "wider than 64 bits" in lines[0]["_trainkit_reject"]["reasons"][0]


def test_nan_and_infinity_are_rejected_not_stored_as_null(project):
    (project / "nan.yaml").write_text("- {question: a, answer: .nan}\n- {question: b, answer: -.inf}\n"
                                      "- {question: c, answer: '.nan'}\n")
    (project / "nan.jsonl").write_text('{"question": "d", "answer": NaN}\n{"question": "e", "answer": Infinity}\n')
    result, summary = import_json("nan.yaml", "nan.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    found = problems(summary)
    assert found["nan.yaml:line 1"] == ('outputs.answer: NaN is not a JSON number (it would be stored as null); '
                                        'write it as text ("NaN") or leave the field out')
    assert found["nan.yaml:line 2"].startswith("outputs.answer: -Infinity is not a JSON number")
    assert found["nan.jsonl:line 1"].startswith("not valid JSON (NaN is not a JSON number; write it as text")
    assert found["nan.jsonl:line 2"].startswith("not valid JSON (Infinity is not a JSON number")
    assert {q: ex.outputs for q, ex in stored(project).items()} == {"c": {"answer": ".nan"}}


def test_the_python_api_refuses_nan_too(project):
    with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
        with pytest.raises(tk.ValidationError, match=r"outputs.answer: NaN is not a JSON number"):
            kit.add(task="qa", inputs={"question": "q"}, outputs={"answer": math.nan})
        report = kit.add_many([{"task": "qa", "inputs": {"question": "q1"}, "outputs": {"answer": math.inf}},
                               {"task": "qa", "inputs": {"question": "q2"}, "outputs": {"answer": "2"}}])
        assert (report.invalid, report.stored) == (1, 1)


# -- 8: a signature that does not match the file --------------------------------------------------------------

def test_a_record_with_none_of_the_declared_fields_is_rejected_naming_both(project):
    (project / "mixed.jsonl").write_text('{"question": "q1", "answer": "a1"}\n'
                                         '{"question": "q2", "answer": "a2"}\n'
                                         '{"problem": "p", "solution": "s"}\n'
                                         '{"question": "q3", "answer": "a3"}\n')
    result, summary = import_json("mixed.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert (summary["imported"], summary["duplicates"], summary["rejected"]) == (3, 0, 1)
    assert problems(summary)["mixed.jsonl:line 3"] == (
        "the record has fields problem, solution but none of the fields task 'qa' declares (question -> answer); "
        "rename its fields with --map (e.g. --map question=FIELD), or give the --task, --input-fields or "
        "--output-fields that match the file")


def test_an_import_whose_records_mostly_miss_the_declared_fields_stops_early(project):
    (project / "gsm8k.jsonl").write_text("".join(json.dumps({"problem": f"p{i}", "solution": f"s{i}"}) + "\n"
                                                 for i in range(1319)))
    result = run("import", "gsm8k.jsonl")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.startswith(
        "Error: gsm8k.jsonl: most records have none of the task's fields (50 of 50 read), so the import stopped "
        "before storing any of this file: the record has fields problem, solution but none of the fields task "
        "'qa' declares (question -> answer)")
    assert stored(project) == {}
    mapped = run("import", "gsm8k.jsonl", "--map", "question=problem", "--map", "answer=solution")
    assert mapped.exit_code == 0 and mapped.output.endswith("read 1319, imported 1319, duplicates 0, rejected 0\n")


# -- 9: fields named on the command line are required -------------------------------------------------------------

def test_fields_named_on_the_command_line_are_required_like_declared_ones(project):
    (project / "free.jsonl").write_text('{"prompt": "p1", "answer": "a1"}\n{"prompt": "p2"}\n'
                                        '{"prompt": "p3", "answer": ""}\n')
    result, summary = import_json("free.jsonl", "--task", "free", "--output-fields", "answer")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert (summary["imported"], summary["rejected"]) == (1, 2)
    with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
        by_prompt = {ex.inputs["prompt"]: ex for ex in kit.examples(task="free")}
    assert by_prompt["p1"].status == "accepted"
    missing = by_prompt["p2"]
    assert missing.status == "rejected" and missing.quality is None  # rejected examples are not scored
    assert [(f.code, f.field, f.message) for f in missing.findings] == [
        ("missing-field", "outputs.answer", "outputs.answer is required by --output-fields")]
    assert by_prompt["p3"].status == "rejected"


# -- 5: standard input and pipes ------------------------------------------------------------------------------

ROWS = 2500
CSV_TEXT = "question,answer\n" + "".join(f"question number {i},answer {i}\n" for i in range(ROWS))  # > 64 KiB


@pytest.mark.parametrize("fmt, text", [
    ("csv", CSV_TEXT),
    ("jsonl", "".join(json.dumps({"question": f"q{i}", "answer": str(i)}) + "\n" for i in range(ROWS))),
    ("json", json.dumps([{"question": f"q{i}", "answer": str(i)} for i in range(ROWS)])),
    ("yaml", "".join(f"- {{question: q{i}, answer: '{i}'}}\n" for i in range(ROWS))),
])
def test_dash_reads_standard_input_in_every_format(project, fmt, text):
    result = run("import", "--format", fmt, "-", input=text.encode())
    assert result.exit_code == 0, result.output
    assert result.output == f"read {ROWS}, imported {ROWS}, duplicates 0, rejected 0\n"
    with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
        first = next(iter(kit.examples(limit=1)))
    assert first.provenance["origin"].startswith("<stdin>:")


def test_csv_from_a_pipe_is_sniffed_without_rereading_it(project):
    """`cat f.csv | trainkit import --format csv /dev/stdin`: the sniffer's sample is read from the pipe once
    and then again from memory. The old reader opened the path twice, so the second open saw the rest of the
    pipe: a fragment of a row became the header, and a short file gave nothing at all."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dspy_trainkit", "import", "--format", "csv", "/dev/stdin"],
                          input=CSV_TEXT.encode(), capture_output=True, cwd=project, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == f"read {ROWS}, imported {ROWS}, duplicates 0, rejected 0\n"
    assert f"question number {ROWS - 1}" in stored(project)


def test_standard_input_needs_a_format_and_is_read_once(project):
    assert run("import", "-", input="").output.startswith(
        "Error: -: standard input has no extension to tell its format by; give --format")
    assert run("import", "--format", "csv", "-", "-", input="").output == (
        "Error: - (standard input) is named more than once; it can be read only once\n")


def test_a_fifo_without_a_writer_says_what_it_waits_for(project, monkeypatch):
    """Opening a FIFO blocks until something writes to it: a warning names the FIFO and what it waits for."""
    import logging
    import os
    import threading

    from dspy_trainkit.files import formats

    monkeypatch.setattr(formats, "FIFO_NOTICE_AFTER", 0)
    fifo = project / "waiting.jsonl"
    os.mkfifo(fifo)
    warned = threading.Event()
    messages = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())
            warned.set()

    def write() -> None:
        warned.wait(60)  # only a safety net so a failing test cannot hang: the warning comes at once
        with open(fifo, "w", encoding="utf-8") as stream:
            stream.write('{"question": "q", "answer": "a"}\n')

    handler = Catch(level=logging.WARNING)
    logging.getLogger("dspy_trainkit.files.formats").addHandler(handler)
    writer = threading.Thread(target=write)
    writer.start()
    try:
        with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
            report = kit.import_files([fifo])
    finally:
        writer.join()
        logging.getLogger("dspy_trainkit.files.formats").removeHandler(handler)
    assert report.imported == 1
    assert messages == [f"{fifo} is a named pipe (FIFO) and nothing writes to it yet: waiting for a program to "
                        "open it for writing (Ctrl-C to stop)"]


# -- 21: UTF-16 CSV, extension clashes ----------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_utf16_csv_imports_with_its_encoding(project, encoding):
    text = "question,answer\nWie heißt du?,Kim ☃\nq2,a2\n"
    (project / "wide.csv").write_bytes(text.encode(encoding))
    result = run("import", "wide.csv", "--encoding", encoding)
    assert result.exit_code == 0, result.output
    assert result.output == "read 2, imported 2, duplicates 0, rejected 0\n"
    assert stored(project)["Wie heißt du?"].outputs == {"answer": "Kim ☃"}


def test_a_utf16_csv_without_encoding_is_named_as_such(project):
    (project / "wide.csv").write_bytes("question,answer\nq,a\n".encode("utf-16"))
    result, summary = import_json("wide.csv")
    assert list(problems(summary).values()) == [
        "the file starts with a UTF-16 byte order mark; give --encoding utf-16"]


class ClaimsJsonl:
    """A plugin whose format claims `.jsonl`, the built-in reader's extension."""

    @tk.hookimpl
    def import_format(self, register):
        register("myjsonl", ("jsonl",), lambda path, options: iter(()))


def test_two_formats_claiming_one_extension_are_named(project):
    (project / "data.jsonl").write_text('{"question": "q", "answer": "a"}\n')
    with tk.open(f"sqlite:///{project / 'trainkit.db'}") as kit:
        kit.pm.register(ClaimsJsonl(), "claims")
        with pytest.raises(tk.PluginError) as caught:
            kit.import_files(["data.jsonl"])
    message = str(caught.value)
    assert message.startswith("extension '.jsonl' is registered by both format ")
    assert "format 'jsonl' (plugin 'jsonl')" in message and "format 'myjsonl' (plugin 'claims')" in message
    assert message.endswith("in hook 'import_format'; disable one of them, or register the other format "
                            "without that extension (--format still picks it)")


# -- 17: YAML aliases bounded by the size they expand to ----------------------------------------------------------

def alias_growth(path: Path, levels: int, width: int = 1000) -> Path:
    """A short file whose one answer is a `width`-character string aliased 10**levels times (few nodes, much
    text)."""
    lines = ["- question: anchors", "  answer: fine", f"  pad: &s0 {'x' * width}"]
    for level in range(1, levels + 1):
        lines.append(f"  l{level}: &s{level} [{', '.join([f'*s{level - 1}'] * 10)}]")
    lines += ["- question: bomb", f"  answer: *s{levels}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_yaml_aliases_that_expand_far_beyond_the_file_are_refused(project):
    bomb = alias_growth(project / "grow.yaml", 4)  # 1.3 KB of text -> 10 MB of answer, 11 thousand nodes
    size = len(bomb.read_text())
    assert size < 1400
    result, summary = import_json("grow.yaml")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert list(problems(summary).values()) == [
        f"the document's aliases expand its {size:,} characters to more than 1,048,576 (an alias bomb?); "
        "refusing to load it; write repeated values out instead of aliasing them"]
    assert stored(project) == {}


def test_yaml_aliases_within_the_bound_are_expanded(project):
    alias_growth(project / "small.yaml", 2, width=500)  # 100 copies of 500 characters: under the 1 MiB floor
    result = run("import", "small.yaml")
    assert result.exit_code == 0, result.output
    assert stored(project)["bomb"].outputs["answer"] == [["x" * 500] * 10] * 10


# -- more shapes found by probing: each one rejected on its own, the good record of the file kept --------------

DEEP = "[" * 300 + "]" * 300
# a record in the full form, which may bring its own provenance (in the flat form it is just metadata)
OWN = '{"task": "qa", "inputs": {"question": "bad"}, "outputs": {"answer": "a"}, '
OWN_YAML = "- {task: qa, inputs: {question: bad}, outputs: {answer: a}, "


@pytest.mark.parametrize("name, text, reason", [
    ("deep.jsonl", '{"question": "bad", "answer": "a", "m": ' + DEEP + "}\n",
     f"{'metadata.m' + '[0]' * 200:.60}...: nested more than 200 levels deep; flatten it or store it as text"),
    ("task.jsonl", '{"task": ["qa"], "question": "bad", "answer": "a"}\n', "task: expected a task name, got list"),
    ("label.jsonl", '{"question": "bad", "answer": "a", "domain": {"x": 1}}\n',
     "domain: a label is text or a number, got dict"),
    ("cell.csv", 'question,answer,meta\nbad,a,"{""x"": 123456789012345678901234567890}"\n',
     "metadata.meta.x: the integer 123456789012345678901234567890 is wider than 64 bits and cannot be stored "
     "exactly; write it as text (in quotes)"),
    ("self.yaml", "- &r {question: bad, answer: a, m: [*r]}\n",
     "metadata.m[0].m: the value contains itself (a recursive alias?), which JSON cannot hold"),
    ("binary.yaml", "- {question: bad, answer: a, m: !!binary aGVsbG8=}\n",
     "metadata.m: a bytes value is not JSON data (text, numbers, true/false, null, lists, mappings)"),
    ("set.yaml", "- {question: bad, answer: a, m: !!set {x, y}}\n",
     "metadata.m: a set value is not JSON data (text, numbers, true/false, null, lists, mappings)"),
    # a record's own provenance: it crashed the import at the store, every re-run again (a stranger's HIGH)
    ("provenance.jsonl", OWN + '"provenance": {"origin": "crm", "ticket": 18446744073709551616}}\n',
     "provenance.ticket: the integer 18446744073709551616 is wider than 64 bits and cannot be stored exactly; write "
     "it as text (in quotes)"),
    ("provenance-key.yaml", OWN_YAML + "provenance: {origin: x, 1: one}}\n",
     "provenance: the key 1 (int) is not text; field names must be text (quote the key)"),
    ("provenance-set.yaml", OWN_YAML + "provenance: {origin: x, s: !!set {a, b}}}\n",
     "provenance.s: a set value is not JSON data (text, numbers, true/false, null, lists, mappings)"),
    ("provenance-nan.yaml", OWN_YAML + "provenance: {origin: x, score: .nan}}\n",
     'provenance.score: NaN is not a JSON number (it would be stored as null); write it as text ("NaN") or leave '
     "the field out"),
])
def test_values_the_store_cannot_hold_reject_their_record_only(project, name, text, reason):
    good = {"csv": "good,a,\n", "jsonl": '{"question": "good", "answer": "a"}\n',
            "yaml": "- {question: good, answer: a}\n"}[name.rsplit(".", 1)[1]]
    (project / name).write_text(text + good)
    result, summary = import_json(name)
    assert result.exit_code == EXIT_SOME_REJECTED, result.output
    assert list(problems(summary).values()) == [reason]
    assert set(stored(project)) == {"good"}


def test_a_csv_with_bare_carriage_returns_is_one_clear_problem(project):
    (project / "mac.csv").write_bytes(b"question,answer\rq,a\r")
    result, summary = import_json("mac.csv")
    assert result.exit_code == EXIT_SOME_REJECTED
    (message,) = problems(summary).values()
    assert message.startswith("the header row cannot be read (") and message.endswith(
        "its lines may end in a bare carriage return (old Mac style): convert them to \\n")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_record_naming_an_undeclared_task_is_rejected_alone(project, workers):
    """A stray record whose `task` field names a task without a signature used to stop the whole import (the
    serial one kept the batches before it, the parallel one, reading ahead, nothing)."""
    lines = [json.dumps({"question": f"q{i}", "answer": f"a{i}"}) for i in range(2500)]
    lines.insert(2500 - 500, json.dumps({"task": "nosuchtask", "question": "q", "answer": "a"}))
    (project / "stray.jsonl").write_text("\n".join(lines) + "\n")
    result, summary = import_json("stray.jsonl", "--workers", workers, "--rejects", "bad.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED, result.output
    assert summary["imported"] == 2500 and summary["rejected"] == 1, summary
    assert problems(summary) == {"stray.jsonl:line 2001": (
        "task 'nosuchtask' (the record's own) declares no fields, so its inputs cannot be told from its outputs: "
        "declare its signature in trainkit.toml, or correct the record's task")}
    assert len(stored(project)) == 2500
    rejected = [json.loads(line) for line in (project / "bad.jsonl").read_text().splitlines()]
    assert [r["task"] for r in rejected] == ["nosuchtask"]


def test_a_file_whose_records_mostly_name_an_undeclared_task_stops_before_storing_it(project):
    lines = [json.dumps({"task": "nosuchtask", "question": f"q{i}", "answer": "a"}) for i in range(60)]
    (project / "other.jsonl").write_text("\n".join(lines) + "\n")
    result = run("import", "other.jsonl")
    assert result.exit_code == 1, result.output
    assert "most records name a task that declares no fields (50 of 50 read)" in result.output
    assert "task 'nosuchtask' (the record's own) declares no fields" in result.output
    assert stored(project) == {}
