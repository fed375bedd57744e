"""The `traces` import format (built-in plugin `traces`): OpenTelemetry-style trace exports become one example per
root span, through the real CLI (`trainkit import --format traces`) and `kit.import_files`.

Fixtures under tests/data/traces: MLflow traces of a problem generator (`trace.to_json()`, attributes as JSON
text), an OTLP JSON export of a RAG program instrumented for Phoenix (attributes as key/value lists, children
before their parent, a failed run), and OpenTelemetry SDK spans one per line (Phoenix's nested attributes, a
plain-text output).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import run_checked

import dspy_trainkit as tk

DATA = Path(__file__).parent / "data" / "traces"
EXIT_SOME_REJECTED = 3
TOML = '''default_task = "problems"

[tasks.problems]
signature = "domain, topic, difficulty -> problem, solution"

[tasks.rag]
signature = "question -> answer"
'''


run = run_checked


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "trainkit.toml").write_text(TOML)
    for fixture in DATA.iterdir():
        shutil.copy(fixture, tmp_path / fixture.name)
    tk.open().close()
    return tmp_path


def stored(**filters) -> dict[str, tk.Example]:
    with tk.open() as kit:
        return {ex.provenance["origin"]: ex for ex in kit.examples(**filters)}


def test_mlflow_traces_give_one_example_per_program_call(project):
    result = run("import", "--format", "traces", "mlflow_traces.json")
    assert (result.exit_code, result.stdout) == (0, "read 2, imported 2, duplicates 0, rejected 0\n"), result.output
    examples = stored()
    assert sorted(examples) == ["mlflow_traces.json:span 1", "mlflow_traces.json:span 4"]
    first = examples["mlflow_traces.json:span 1"]
    # mlflow.spanInputs / spanOutputs are JSON text: decoded into the example's fields
    assert first.inputs == {"domain": "math", "topic": "fractions", "difficulty": "easy"}
    assert first.outputs == {"problem": "What is 1/2 + 1/4?", "solution": "3/4: write 1/2 as 2/4 and add 1/4."}
    assert (first.task, first.domain, first.topic, first.difficulty) == ("problems", "math", "fractions", "easy")
    assert first.provenance["format"] == "traces"
    assert first.metadata["trace_id"] == "5b8aa5a2d2c872e8321cf37308d69df2"
    assert first.metadata["span_name"] == "MakeProblem.forward" and first.metadata["trace_spans"] == 3
    assert first.metadata["attributes"] == {"mlflow.traceRequestId": "tr-5b8aa5a2d2c872e8321cf37308d69df2",
                                            "mlflow.spanType": "CHAIN",
                                            "signature": "domain, topic, difficulty -> problem, solution"}
    # a call recorded as {"args": [], "kwargs": {...}} gives its keyword arguments
    second = examples["mlflow_traces.json:span 4"]
    assert second.inputs == {"domain": "physics", "topic": "kinematics", "difficulty": "medium"}
    assert second.outputs["solution"].startswith("25 m")


def test_otlp_json_roots_are_found_whatever_the_order_and_a_failed_run_is_rejected_with_its_status(project):
    result = run("import", "--format", "traces", "--task", "rag", "otlp_rag.json", "--rejects", "rejects.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert result.stdout == "read 2, imported 1, duplicates 0, rejected 1\n"
    assert result.stderr.splitlines()[0] == (
        "otlp_rag.json:span 4: root span 'RAG.forward' has no outputs (looked for mlflow.spanOutputs, output.value, "
        "langfuse.observation.output); the span ended with status ERROR (RateLimitError: 429 Too Many Requests)")
    (example,) = stored().values()
    assert example.provenance["origin"] == "otlp_rag.json:span 3"  # the root, written after its two children
    assert (example.task, example.inputs, example.outputs) == (
        "rag", {"question": "Who wrote The Left Hand of Darkness?"}, {"answer": "Ursula K. Le Guin"})
    assert example.metadata["resource"] == {"service.name": "rag-service", "telemetry.sdk.language": "python"}
    assert example.metadata["attributes"]["session.id"] == "s-1042"
    assert example.metadata["status"] == {"code": 1}
    (reject,) = [json.loads(line) for line in (project / "rejects.jsonl").read_text().splitlines()]
    assert reject["spanId"] == "c8be7c7270314442" and reject["_trainkit_reject"]["position"] == "otlp_rag.json:span 4"


def test_spans_one_per_line_from_python(store_url, project):
    with tk.open(store_url) as kit:
        report = kit.import_files([project / "sdk_spans.jsonl"], format="traces", task="support")
        assert (report.read, report.imported, report.rejected) == (2, 2, 0)
        examples = {ex.provenance["origin"].rsplit(":", 1)[1]: ex for ex in kit.examples(task="support")}
    assert sorted(examples) == ["line 2", "line 3"]  # line 1 is a child of line 2
    ticket = examples["line 2"]
    assert (ticket.inputs, ticket.outputs) == ({"ticket": "My invoice shows the wrong VAT number."},
                                               {"category": "billing"})
    assert ticket.metadata["trace_spans"] == 2 and ticket.metadata["resource"] == {"service.name": "support-bot"}
    # Phoenix nests attributes ({"input": {"value": ...}}); a plain-text output becomes the field `output`
    summary = examples["line 3"]
    assert summary.inputs == {"text": "Customer asks to move the delivery to Friday; courier confirmed."}
    assert summary.outputs == {"output": "Delivery moved to Friday."}
    assert summary.metadata["attributes"]["output"] == {"mime_type": "text/plain"}


def test_otlp_batches_per_line_partial_traces_and_bad_lines(project):
    """A collector's file exporter writes one OTLP batch per line; a span whose parent is not in the file is a
    root; a bad line is reported and the other lines are read."""
    def batch(*spans: dict) -> str:
        return json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": list(spans)}]}]})

    def span(span_id: str, parent: str, question: str, answer: str | None = None) -> dict:
        attributes = [{"key": "input.value", "value": {"stringValue": json.dumps({"question": question})}}]
        if answer is not None:
            attributes.append({"key": "output.value", "value": {"stringValue": json.dumps({"answer": answer})}})
        return {"traceId": "ab" * 16, "spanId": span_id, "parentSpanId": parent, "name": "QA.forward",
                "attributes": attributes}

    (project / "collector.jsonl").write_text("\n".join([
        batch(span("0000000000000002", "0000000000000001", "inner", "x"),
              span("0000000000000001", "00000000000000ff", "Capital of Peru?", "Lima")),  # parent not exported
        '{"resourceSpans": [',
        batch(span("0000000000000003", "", "Capital of Chile?", "Santiago")),
        json.dumps({"inputs": {"question": "Capital of Peru?"}}),  # not a span: an example-shaped line
        json.dumps(["not", "a", "span"]),
    ]) + "\n")
    result = run("import", "--format", "traces", "--task", "rag", "collector.jsonl", "--dry-run")
    problems = result.stderr.splitlines()
    assert problems[0].startswith("collector.jsonl:line 2: not valid JSON (unexpected end of data")
    assert problems[1] == "collector.jsonl:line 5: expected a JSON object, got list"
    assert result.stdout.startswith("dry run, nothing stored: read 5, imported 2, duplicates 0, rejected 3")
    with tk.open() as kit:
        report = kit.import_files([project / "collector.jsonl"], format="traces", task="rag")
        questions = {ex.inputs["question"]: ex.provenance["origin"]
                     for ex in kit.examples(task="rag", status="accepted")}
    assert report.read == 5
    assert questions == {"Capital of Peru?": f"{project / 'collector.jsonl'}:line 1 span 2",
                         "Capital of Chile?": f"{project / 'collector.jsonl'}:line 3 span 1"}


def test_a_file_that_is_not_a_trace_export_is_one_clear_problem(project):
    (project / "notes.json").write_text('{"title": "meeting notes", "lines": 3}\n')
    (project / "broken.json").write_text('[\n  {"spanId": "01", "name": "x",\n')
    result = run("import", "--format", "traces", "notes.json", "broken.json", "--dry-run")
    assert result.exit_code == EXIT_SOME_REJECTED
    problems = result.stderr.splitlines()
    assert problems[0].startswith("notes.json:line 1: not a span: expected an object with a span id or name")
    assert problems[1].startswith("broken.json: not valid JSON") and "nothing was imported" in problems[1]


def test_langfuse_observations_and_items_that_are_not_spans(project):
    """Langfuse's observations export: `id`, `traceId`, `parentObservationId`, and `input` / `output` as span
    fields (an object, and plain text). An item that is not a span is rejected on its own, kept for the rejects
    file."""
    observations = [
        {"id": "obs-2", "traceId": "trace-9", "parentObservationId": "obs-1", "type": "GENERATION",
         "name": "LM.__call__", "input": [{"role": "user", "content": "..."}], "output": "..."},
        {"id": "obs-1", "traceId": "trace-9", "parentObservationId": None, "type": "SPAN", "name": "Translate.forward",
         "input": {"text": "Guten Morgen", "target": "en"}, "output": "Good morning", "level": "DEFAULT"},
        {"note": "exported by a script"},
    ]
    (project / "langfuse.json").write_text(json.dumps(observations))
    rejected = []
    with tk.open() as kit:
        report = kit.import_files([project / "langfuse.json"], format="traces", task="translate",
                                  on_reject=lambda position, record, reasons: rejected.append((record, reasons)))
        (example,) = kit.examples(task="translate")
    assert (report.read, report.imported, report.rejected) == (2, 1, 1)
    assert example.inputs == {"text": "Guten Morgen", "target": "en"}
    assert example.outputs == {"output": "Good morning"}
    assert example.metadata["trace_id"] == "trace-9" and example.metadata["kind"] == "SPAN"
    assert example.metadata["trace_spans"] == 2 and example.provenance["origin"].endswith("langfuse.json:span 2")
    (record, reasons), = rejected
    assert record == {"note": "exported by a script"} and reasons[0].startswith("not a span")


def test_an_otlp_int_attribute_wider_than_int64_is_kept_as_text_and_the_example_imported(project):
    """OTLP's intValue is an int64 written as a string; a wider one (a broken exporter) cannot be stored exactly
    as a number, so it is kept as the text it was, and the span still becomes an example."""
    attributes = [{"key": "input.value", "value": {"stringValue": json.dumps({"question": "Capital of Peru?"})}},
                  {"key": "output.value", "value": {"stringValue": json.dumps({"answer": "Lima"})}},
                  {"key": "llm.token_count.total", "value": {"intValue": "123"}},
                  {"key": "request.id", "value": {"intValue": str(2**64 + 5)}},
                  {"key": "offset", "value": {"intValue": str(-(2**63))}}]
    span = {"traceId": "cd" * 16, "spanId": "0000000000000001", "name": "QA.forward", "attributes": attributes}
    (project / "wide.json").write_text(json.dumps(
        {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}))
    result = run("import", "--format", "traces", "--task", "rag", "wide.json")
    assert (result.exit_code, result.stdout) == (0, "read 1, imported 1, duplicates 0, rejected 0\n"), result.output
    (example,) = stored().values()
    assert example.metadata["attributes"]["llm.token_count.total"] == 123
    assert example.metadata["attributes"]["request.id"] == str(2**64 + 5)
    assert example.metadata["attributes"]["offset"] == -(2**63)


def test_a_trace_whose_parent_ids_form_a_cycle_is_reported_not_dropped(project):
    """Two spans naming each other as parent: neither is a root, so the trace gives no example; the import says
    so for that trace (it used to read nothing and say nothing) and the other trace is imported."""
    def span(trace: str, span_id: str, parent: str | None) -> dict:
        attributes = [{"key": "input.value", "value": {"stringValue": json.dumps({"question": "q " + span_id})}},
                      {"key": "output.value", "value": {"stringValue": json.dumps({"answer": "a"})}}]
        return {"traceId": trace * 16, "spanId": span_id, "parentSpanId": parent, "name": "QA.forward",
                "attributes": attributes}

    spans = [span("aa", "0000000000000001", "0000000000000002"), span("aa", "0000000000000002", "0000000000000001"),
             span("bb", "0000000000000003", None)]
    (project / "cycle.json").write_text(json.dumps(
        {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]}))
    result = run("import", "--format", "traces", "--task", "rag", "cycle.json", "--rejects", "rejects.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED, result.output
    assert result.stdout == "read 2, imported 1, duplicates 0, rejected 1\n"
    assert f"trace {'aa' * 16}: none of its 2 span(s) is a root (their parent span ids form a cycle)" \
        in result.stderr
    (reject,) = [json.loads(line) for line in (project / "rejects.jsonl").read_text().splitlines()]
    assert reject["spanId"] == "0000000000000001"
    assert [ex.inputs["question"] for ex in stored().values()] == ["q 0000000000000003"]
