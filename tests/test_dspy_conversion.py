"""Stored examples to `dspy.Example` and back: inputs marked, fields checked against the task's Signature (a
string in trainkit.toml, or an import path to a Signature class), per-example skips logged, and the `dspy`
export loading back with DSPy alone.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.conversion import ConversionError

dspy = pytest.importorskip("dspy")


@pytest.fixture
def open_kit(store_url: str, tmp_path: Path) -> Callable[..., tk.Kit]:
    """Write trainkit.toml, then open the store with it (the `kit` fixture would open before the file exists)."""
    opened: list[tk.Kit] = []

    def open_with(toml: str) -> tk.Kit:
        (tmp_path / "trainkit.toml").write_text(toml)
        kit = tk.open(store_url)
        opened.append(kit)
        return kit

    yield open_with
    for kit in opened:
        kit.close()


def signature_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    """A module `name` holding DSPy signatures, importable from tmp_path (and fresh in sys.modules)."""
    (tmp_path / f"{name}.py").write_text("import dspy\n\n" + source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def qa(question: str, context: str | None, answer: str | None, **fields) -> dict:
    inputs = {"question": question} | ({"context": context} if context is not None else {})
    outputs = {"answer": answer} if answer is not None else {}
    return {"task": "qa", "inputs": inputs, "outputs": outputs, **fields}


def as_pairs(examples: list) -> list[tuple[dict, set[str]]]:
    """Each dspy.Example as (its fields, its input keys), sorted, for comparisons."""
    return sorted(((ex.toDict(), set(ex.inputs().keys())) for ex in examples), key=lambda p: json.dumps(p[0]))


def test_trainset_makes_dspy_examples_with_inputs_marked(open_kit):
    kit = open_kit('[tasks.qa]\nsignature = "question, context -> answer"\n')
    kit.add_many([qa("What is 2+2?", "sums", "4", topic="add"), qa("Capital of France?", "geo", "Paris"),
                  qa("Unanswered", "x", "")])  # the empty answer is rejected at intake
    trainset = kit.trainset("qa")
    assert all(isinstance(ex, dspy.Example) for ex in trainset)
    assert as_pairs(trainset) == [
        ({"question": "Capital of France?", "context": "geo", "answer": "Paris"}, {"question", "context"}),
        ({"question": "What is 2+2?", "context": "sums", "answer": "4"}, {"question", "context"}),
    ]
    for ex in trainset:
        assert set(ex.inputs().keys()) == {"question", "context"}
        assert set(ex.labels().keys()) == {"answer"}


def test_trainset_checks_an_import_path_signature(open_kit, tmp_path, monkeypatch):
    signature_module(tmp_path, monkeypatch, "tk_conv_sigs_ok", (
        "class RagQA(dspy.Signature):\n"
        '    """Answer from the context."""\n'
        "    question: str = dspy.InputField()\n"
        "    context: str = dspy.InputField()\n"
        "    answer: str = dspy.OutputField()\n"))
    kit = open_kit('[tasks.qa]\nsignature = "tk_conv_sigs_ok:RagQA"\n')
    report = kit.add_many([qa("q1", "c1", "a1"), qa("q2", None, "a2")])
    assert (report.accepted, report.rejected) == (1, 1)  # intake checked the class's fields too
    (ex,) = kit.trainset("qa")
    assert ex.toDict() == {"question": "q1", "context": "c1", "answer": "a1"}
    assert set(ex.inputs().keys()) == {"question", "context"} and set(ex.labels().keys()) == {"answer"}


def test_a_signature_field_no_example_has_is_an_error_naming_it(open_kit, tmp_path, monkeypatch):
    kit = open_kit('[tasks.qa]\nsignature = "question -> answer"\n')
    kit.add_many([qa("q1", None, "a1"), qa("q2", None, "a2")])

    with pytest.raises(ConversionError) as caught:
        kit.trainset("qa", signature="question, hint -> answer")
    message = str(caught.value)
    assert "hint" in message and "question" in message and "'qa'" in message

    with pytest.raises(ConversionError) as caught:
        kit.trainset("qa", signature="question -> answer, rationale")
    assert "rationale" in str(caught.value) and "answer" in str(caught.value)

    signature_module(tmp_path, monkeypatch, "tk_conv_sigs_hint", (
        "class WithHint(dspy.Signature):\n"
        "    question: str = dspy.InputField()\n"
        "    hint: str = dspy.InputField()\n"
        "    answer: str = dspy.OutputField()\n"))
    with pytest.raises(ConversionError, match="hint"):
        kit.trainset("qa", signature="tk_conv_sigs_hint:WithHint")


def test_signature_changed_in_trainkit_toml_after_import_is_an_error(open_kit):
    kit = open_kit('[tasks.qa]\nsignature = "question -> answer"\n')
    kit.add_many([qa("q1", None, "a1")])
    kit.close()
    kit = open_kit('[tasks.qa]\nsignature = "question, grade -> answer"\n')
    with pytest.raises(ConversionError) as caught:
        kit.trainset("qa")
    assert "grade" in str(caught.value) and "question" in str(caught.value)


def test_an_example_missing_a_field_is_skipped_and_logged(open_kit, caplog):
    kit = open_kit("")  # nothing declared yet: intake accepts all three
    report = kit.add_many([qa("q1", "c1", "a1"), qa("q2", None, "a2"), qa("q3", "c3", "a3")])
    assert report.accepted == 3
    missing_id = next(ex.id for ex in kit.examples() if "context" not in ex.inputs)
    kit.close()

    kit = open_kit('[tasks.qa]\nsignature = "question, context -> answer"\n')
    with caplog.at_level(logging.WARNING, logger="dspy_trainkit"):
        trainset = kit.trainset("qa")
    assert sorted(ex.question for ex in trainset) == ["q1", "q3"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert missing_id in warnings[0] and "context" in warnings[0]


def test_dspy_examples_round_trip_through_collect(open_kit):
    kit = open_kit('[tasks.qa]\nsignature = "question, context -> answer"\n')
    originals = [
        dspy.Example(question="Ünïcode?", context="naïve", answer="oui").with_inputs("question", "context"),
        dspy.Example(question="6 × 7?", context="products", answer="42").with_inputs("question", "context"),
    ]
    report = kit.add_many(originals, defaults={"task": "qa", "topic": "mixed", "source": "collected"})
    assert (report.stored, report.invalid) == (2, 0)
    assert {(ex.topic, ex.source) for ex in kit.examples()} == {("mixed", "collected")}
    assert as_pairs(kit.trainset("qa")) == as_pairs(originals)
    # collecting the same examples again adds nothing
    assert kit.add_many(originals, defaults={"task": "qa"}).duplicates == 2


def test_a_dspy_example_without_marked_inputs_is_a_problem_for_that_record(open_kit):
    kit = open_kit('[tasks.qa]\nsignature = "question -> answer"\n')
    good = dspy.Example(question="q1", answer="a1").with_inputs("question")
    unmarked = dspy.Example(question="q2", answer="a2")
    report = kit.add_many([good, unmarked], defaults={"task": "qa"})
    assert (report.read, report.stored, report.invalid) == (2, 1, 1)
    (problem,) = report.problems
    assert problem.position == "record 2" and "with_inputs" in problem.message
    assert [ex.toDict() for ex in kit.trainset("qa")] == [{"question": "q1", "answer": "a1"}]


def test_dspy_export_loads_back_with_the_documented_one_liner(open_kit, tmp_path):
    kit = open_kit('[tasks.qa]\nsignature = "question, context -> answer"\n')
    kit.add_many([qa("What is 2+2?", "sums", "4"), qa("Multi\nline?", "ünïcode", "yes\nno")])
    kit.add_many([qa("other task", "x", "y") | {"task": "other"}])
    expected = as_pairs(kit.trainset("qa"))

    result = CliRunner().invoke(cli, ["--db", kit.settings.store_url, "export", "-o", "train.dspy.json",
                                      "--task", "qa"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    p = tmp_path / "train.dspy.json"
    d = json.load(open(p))  # noqa: SIM115 - the one-liner as documented
    trainset = [dspy.Example(**e).with_inputs(*d["input_keys"]) for e in d["examples"]]
    assert as_pairs(trainset) == expected
    assert d["task"] == "qa" and d["input_keys"] == ["question", "context"]


def test_converting_to_an_unknown_target_is_an_error(open_kit):
    kit = open_kit('[tasks.qa]\nsignature = "question -> answer"\n')
    kit.add_many([qa("q", None, "a")])
    with pytest.raises(ConversionError, match="no plugin converts to 'openai-chat-xyz'"):
        kit.convert(kit.examples(), "openai-chat-xyz")


def test_dspy_export_of_examples_with_different_inputs_keeps_the_input_marking(open_kit, tmp_path):
    kit = open_kit("")  # task `free` declares nothing
    kit.add(task="free", inputs={"question": "q1"}, outputs={"answer": "a1"})
    kit.add(task="free", inputs={"question": "q2", "context": "c2"}, outputs={"answer": "a2"})
    expected = as_pairs(kit.trainset("free"))
    kit.export(tmp_path / "free.dspy.json", task="free")
    d = json.load(open(tmp_path / "free.dspy.json"))  # noqa: SIM115
    trainset = [dspy.Example(**e).with_inputs(*d["input_keys"]) for e in d["examples"]]
    assert as_pairs(trainset) == expected
