"""Collection from a running pipeline: kit.collect, @kit.collector, kit.dspy_callback, and the background writer
(sampling, flush, close, retries on store errors, spill files for other failures).

No test here measures time: waiting is done with kit.flush(), and retry delays are set to zero.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dspy_trainkit as tk
from dspy_trainkit import collection
from dspy_trainkit.errors import StoreError

CONFIG = """
[tasks.qa]
signature = "question -> answer"

[tasks.problems]
signature = "domain, topic, difficulty -> problem, answer"

[tasks.off]
signature = "question -> answer"
collect = false

[tasks.sampled]
signature = "question -> answer"
sample_rate = 0.0
"""


@pytest.fixture
def kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tk.Kit]:
    """A SQLite project in tmp_path, with only the built-in basic checks judging examples (and the jsonl
    format, to import spill files)."""
    (tmp_path / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("TRAINKIT_LOAD_PLUGINS", "basic_checks,jsonl")
    monkeypatch.setattr(collection, "RETRY_DELAYS", (0.0,))
    with tk.open(config=tmp_path / "trainkit.toml") as opened:
        yield opened


@pytest.fixture
def dspy_lm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """DummyLM answering every question with 'a'; DSPy settings restored afterwards."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "true")
    import dspy
    from dspy.utils import DummyLM

    yield DummyLM([{"answer": "a"}] * 50)
    dspy.configure(lm=None, callbacks=[])


def only(kit: tk.Kit, **filters: Any) -> tk.Example:
    found = list(kit.examples(**filters))
    assert len(found) == 1, found
    return found[0]


# ---- kit.collect ------------------------------------------------------------------------------------------------

def test_collect_queues_and_flush_stores(kit: tk.Kit) -> None:
    assert kit.collect("qa", {"question": "2+2?"}, {"answer": "4"}, domain="math", topic="arithmetic",
                       difficulty="easy", metadata={"run": 7}, provenance={"pipeline": "demo"}) is True
    assert kit.flush() is True
    ex = only(kit, task="qa")
    assert (ex.inputs, ex.outputs) == ({"question": "2+2?"}, {"answer": "4"})
    assert (ex.domain, ex.topic, ex.difficulty) == ("math", "arithmetic", "easy")
    assert ex.source == "collected" and ex.status == "accepted"
    assert ex.metadata == {"run": 7}
    assert ex.provenance["origin"] == "pipeline" and ex.provenance["pipeline"] == "demo"
    stats = kit.collection.stats
    assert (stats.submitted, stats.written, stats.accepted) == (1, 1, 1)


def test_flush_waits_for_every_record_across_batches(kit: tk.Kit) -> None:
    total = kit.settings.batch_size * 2 + 17
    for n in range(total):
        kit.collect("qa", {"question": f"q{n}"}, {"answer": str(n)})
    kit.flush()
    assert kit.count(task="qa") == total
    assert kit.collection.stats.written == total


def test_flush_without_collection_returns_at_once(kit: tk.Kit) -> None:
    assert kit.flush() is True


def test_close_flushes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("TRAINKIT_LOAD_PLUGINS", "basic_checks")
    kit = tk.open(config=tmp_path / "trainkit.toml")
    for n in range(50):
        kit.collect("qa", {"question": f"q{n}"}, {"answer": "a"})
    kit.close()
    with tk.open(config=tmp_path / "trainkit.toml") as again:
        assert again.count(task="qa") == 50


def test_scalar_outputs_and_predictions(kit: tk.Kit) -> None:
    import dspy

    kit.collect("qa", {"question": "one"}, "plain value")
    kit.collect("qa", dspy.Example(question="two"), dspy.Prediction(answer="b"))
    kit.flush()
    by_question = {ex.inputs["question"]: ex for ex in kit.examples(task="qa")}
    assert by_question["one"].outputs == {"output": "plain value"}  # kit.collect does not guess names
    assert by_question["two"].outputs == {"answer": "b"}


def test_collect_never_raises_and_reports_bad_records(kit: tk.Kit, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dspy_trainkit.collection"):
        assert kit.collect("not a task name!", {"question": "q"}, {"answer": "a"}) is True
        assert kit.collect("qa", {"question": "q"}, {"answer": "a"}, domain="") is True
        kit.flush()
    assert kit.collection.stats.invalid == 2 and kit.count() == 0
    assert "not stored" in caplog.text


def test_duplicates_are_counted_not_stored(kit: tk.Kit) -> None:
    for _ in range(3):
        kit.collect("qa", {"question": "same"}, {"answer": "same"})
    kit.flush()
    kit.collect("qa", {"question": "same "}, {"answer": "same"})  # same content after normalisation
    kit.flush()
    assert kit.count(task="qa") == 1
    assert kit.collection.stats.duplicates == 3


def test_rejected_examples_are_stored_with_reasons(kit: tk.Kit) -> None:
    kit.collect("qa", {"question": "q"}, {"answer": ""})
    kit.flush()
    ex = only(kit, task="qa")
    assert ex.status == "rejected" and kit.collection.stats.rejected == 1
    assert [(f.code, f.field) for f in ex.findings] == [("empty-value", "outputs.answer")]


# ---- sampling ---------------------------------------------------------------------------------------------------

def test_collect_false_collects_nothing(kit: tk.Kit) -> None:
    assert kit.collect("off", {"question": "q"}, {"answer": "a"}) is False
    kit.flush()
    assert kit.count() == 0
    assert (kit.collection.stats.submitted, kit.collection.stats.disabled) == (1, 1)


def test_sample_rate_zero_collects_nothing(kit: tk.Kit) -> None:
    for n in range(200):
        assert kit.collect("sampled", {"question": f"q{n}"}, {"answer": "a"}) is False
    kit.flush()
    assert kit.count() == 0
    assert kit.collection.stats.sampled_out == 200 and kit.collection.stats.written == 0


def test_task_without_settings_is_collected(kit: tk.Kit) -> None:
    kit.collect("undeclared", {"x": "1"}, {"y": "2"})
    kit.flush()
    assert only(kit, task="undeclared").status == "accepted"


# ---- @kit.collector ---------------------------------------------------------------------------------------------

def test_decorator_records_arguments_labels_and_scalar_result(kit: tk.Kit) -> None:
    @kit.collector(task="qa")
    def answer(question: str, hint: str = "none") -> str:
        return question.upper()

    assert answer("what?") == "WHAT?"
    kit.flush()
    ex = only(kit, task="qa")
    assert ex.inputs == {"question": "what?", "hint": "none"}  # defaults are recorded too
    assert ex.outputs == {"answer": "WHAT?"}  # the task's only output field
    assert ex.status == "candidate"  # 'hint' is not declared: a warning sends it to review
    assert [f.code for f in ex.findings] == ["undeclared-field"]


def test_decorator_inputs_option_and_labels_from_arguments(kit: tk.Kit) -> None:
    @kit.collector(task="problems", inputs=["domain", "topic", "difficulty"])
    def make(domain: str, topic: str, difficulty: str, temperature: float = 0.7) -> dict[str, str]:
        return {"problem": f"{topic} {difficulty}", "answer": "4"}

    make("math", "fractions", difficulty="hard")
    kit.flush()
    ex = only(kit, task="problems")
    assert ex.inputs == {"domain": "math", "topic": "fractions", "difficulty": "hard"}
    assert (ex.domain, ex.topic, ex.difficulty) == ("math", "fractions", "hard")
    assert ex.outputs == {"problem": "fractions hard", "answer": "4"}
    assert ex.status == "accepted"


def test_decorator_fixed_labels_and_output_name(kit: tk.Kit) -> None:
    @kit.collector(task="free", output="summary", labels={"domain": "news"})
    def summarise(text: str) -> str:
        return text[:5]

    summarise("a long article")
    kit.flush()
    ex = only(kit, task="free")
    assert ex.outputs == {"summary": "a lon"} and ex.domain == "news"


def test_decorator_on_a_method_leaves_out_self(kit: tk.Kit) -> None:
    class Pipeline:
        @kit.collector(task="qa")
        def run(self, question: str) -> str:
            return "yes"

    assert Pipeline().run(question="ok?") == "yes"
    kit.flush()
    assert only(kit, task="qa").inputs == {"question": "ok?"}


def test_decorator_async_function(kit: tk.Kit) -> None:
    import inspect

    @kit.collector(task="qa")
    async def answer(question: str) -> str:
        await asyncio.sleep(0)
        return "async answer"

    assert inspect.iscoroutinefunction(answer)
    assert asyncio.run(answer("async?")) == "async answer"
    kit.flush()
    assert only(kit, task="qa").outputs == {"answer": "async answer"}


def test_decorator_exceptions_pass_through_and_are_not_collected(kit: tk.Kit) -> None:
    error = ValueError("the pipeline failed")

    @kit.collector(task="qa")
    def broken(question: str) -> str:
        raise error

    @kit.collector(task="qa")
    async def broken_async(question: str) -> str:
        raise error

    with pytest.raises(ValueError) as raised:
        broken("q")
    assert raised.value is error
    with pytest.raises(ValueError):
        asyncio.run(broken_async("q"))
    kit.flush()
    assert kit.collection.stats.submitted == 0 and kit.count() == 0


def test_decorator_refuses_unknown_labels_when_applied(kit: tk.Kit) -> None:
    with pytest.raises(ValueError, match="not_a_label"):
        kit.collector(task="qa", labels={"not_a_label": "x"})


def test_decorator_keeps_the_function_result_when_recording_fails(kit: tk.Kit, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    @kit.collector(task="qa")
    def answer(question: str) -> str:
        return "still returned"

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("collect broke")

    monkeypatch.setattr(kit, "collect", broken)
    with caplog.at_level(logging.ERROR, logger="dspy_trainkit.collection"):
        assert answer("q") == "still returned"
    assert "could not record" in caplog.text and "collect broke" in caplog.text


# ---- kit.dspy_callback ------------------------------------------------------------------------------------------

def _programs() -> tuple[type, type]:
    import dspy

    class Answer(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.predict = dspy.Predict("question -> answer")

        def forward(self, question: str) -> Any:
            if question == "fail":
                raise RuntimeError("the program failed")
            return self.predict(question=question)

    class Outer(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Answer()

        def forward(self, question: str) -> Any:
            return self.inner(question=question)

    return Answer, Outer


@pytest.mark.parametrize("how", ["class", "name", "instance"])
def test_callback_records_the_chosen_module(kit: tk.Kit, dspy_lm: Any, how: str) -> None:
    import dspy

    answer_cls, _ = _programs()
    program, other = answer_cls(), answer_cls()
    module = {"class": answer_cls, "name": "Answer", "instance": program}[how]
    dspy.configure(lm=dspy_lm, callbacks=[kit.dspy_callback(task="qa", module=module)])
    assert program(question="first").answer == "a"
    other(question="second")
    kit.flush()
    recorded = sorted(ex.inputs["question"] for ex in kit.examples(task="qa"))
    assert recorded == (["first"] if how == "instance" else ["first", "second"])
    assert all(ex.outputs == {"answer": "a"} for ex in kit.examples(task="qa"))


def test_callback_without_module_records_outermost_calls_only(kit: tk.Kit, dspy_lm: Any) -> None:
    import dspy

    _, outer_cls = _programs()
    dspy.configure(lm=dspy_lm, callbacks=[kit.dspy_callback(task="qa")])
    outer_cls()(question="top")
    outer_cls()(question="again")
    kit.flush()
    # Outer -> Answer -> Predict: one record per top-level call, not three
    assert sorted(ex.inputs["question"] for ex in kit.examples(task="qa")) == ["again", "top"]
    assert kit.collection.stats.submitted == 2


def test_callback_skips_failing_calls(kit: tk.Kit, dspy_lm: Any) -> None:
    import dspy

    answer_cls, _ = _programs()
    program = answer_cls()
    dspy.configure(lm=dspy_lm, callbacks=[kit.dspy_callback(task="qa")])
    with pytest.raises(RuntimeError, match="the program failed"):
        program(question="fail")
    program(question="works")  # the failure left no state behind: this is an outermost call again
    kit.flush()
    assert [ex.inputs["question"] for ex in kit.examples(task="qa")] == ["works"]
    assert kit.collection.stats.submitted == 1


def test_callback_takes_labels_from_inputs_and_options(kit: tk.Kit, dspy_lm: Any) -> None:
    import dspy
    from dspy.utils import DummyLM

    dspy.configure(lm=DummyLM([{"problem": "p?", "answer": "4"}]),
                   callbacks=[kit.dspy_callback(task="problems", labels={"domain": "override"})])
    dspy.Predict("domain, topic, difficulty -> problem, answer")(domain="math", topic="sums", difficulty="easy")
    kit.flush()
    ex = only(kit, task="problems")
    assert (ex.domain, ex.topic, ex.difficulty) == ("override", "sums", "easy")
    assert ex.inputs == {"domain": "math", "topic": "sums", "difficulty": "easy"}


def test_callback_records_positional_arguments(kit: tk.Kit, dspy_lm: Any, caplog: Any) -> None:
    import dspy

    answer_cls, _ = _programs()
    dspy.configure(lm=dspy_lm, callbacks=[kit.dspy_callback(task="qa", module=answer_cls)])
    with caplog.at_level(logging.WARNING):
        answer_cls()("positional?")
    kit.flush()
    assert only(kit, task="qa").inputs == {"question": "positional?"}
    assert "forward(...)" not in caplog.text  # naming the inputs must not look to DSPy like a direct forward call


def test_callback_without_module_ignores_inner_calls_in_worker_threads(kit: tk.Kit, dspy_lm: Any) -> None:
    import dspy

    class FanOut(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.predict = dspy.Predict("question -> answer")

        def forward(self, question: str) -> Any:
            parts = [dspy.Example(question=f"{question} {n}").with_inputs("question") for n in range(3)]
            answers = self.predict.batch(parts, num_threads=2, disable_progress_bar=True)
            return dspy.Prediction(answer=" ".join(a.answer for a in answers))

    dspy.configure(lm=dspy_lm, callbacks=[kit.dspy_callback(task="qa")])
    FanOut()(question="top")
    kit.flush()
    assert [ex.inputs["question"] for ex in kit.examples(task="qa")] == ["top"]


def test_callback_without_module_records_concurrent_async_calls(kit: tk.Kit, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    import dspy

    from dspy_trainkit.testing import OpenAIServer, dspy_reply, input_fields, make_lm

    class Answer(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.predict = dspy.Predict("question -> answer")

        async def aforward(self, question: str) -> Any:
            return await self.predict.acall(question=question)

    async def run_both(lm: Any) -> None:
        with dspy.context(lm=lm, callbacks=[kit.dspy_callback(task="qa")]):
            program = Answer()
            await asyncio.gather(program.acall(question="one"), program.acall(question="two"))

    def respond(body: dict[str, Any]) -> Any:  # a little latency so that the two calls overlap
        return dspy_reply({"answer": input_fields(body)["question"]}, latency=0.05)

    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "true")
    with OpenAIServer(respond) as server:
        asyncio.run(run_both(make_lm(server)))
    kit.flush()
    assert sorted(ex.inputs["question"] for ex in kit.examples(task="qa")) == ["one", "two"]


# ---- failures in the writer -------------------------------------------------------------------------------------

def test_store_error_is_retried_not_raised(kit: tk.Kit, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    real_intake = kit.intake
    failures = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if len(failures) < 2:
            failures.append(1)
            raise StoreError("database is locked (injected)")
        return real_intake(*args, **kwargs)

    monkeypatch.setattr(kit, "intake", flaky)
    with caplog.at_level(logging.ERROR, logger="dspy_trainkit.collection"):
        assert kit.collect("qa", {"question": "retried"}, {"answer": "a"}) is True
        kit.flush()
    assert kit.collection.stats.retries == 2
    assert kit.collection.stats.written == 1 and kit.collection.stats.spilled == 0
    assert only(kit, task="qa").inputs == {"question": "retried"}
    assert "retrying" in caplog.text


def test_database_driver_errors_are_retried(kit: tk.Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    real_intake = kit.intake
    calls = []

    def locked_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_intake(*args, **kwargs)

    monkeypatch.setattr(kit, "intake", locked_once)
    kit.collect("qa", {"question": "q"}, {"answer": "a"})
    kit.flush()
    assert kit.collection.stats.retries == 1 and kit.count(task="qa") == 1


class Boom:
    """A validator with a bug."""

    @tk.hookimpl
    def validate(self, examples: list[tk.Example], context: Any) -> None:
        raise RuntimeError("plugin bug")


def test_other_failures_spill_to_a_file_that_import_takes_back(kit: tk.Kit) -> None:
    kit.pm.register_plugin(Boom(), "boom")
    kit.collect("qa", {"question": "spilled 1"}, {"answer": "a"}, topic="t")
    kit.collect("qa", {"question": "spilled 2"}, {"answer": "b"})
    kit.flush()  # the pipeline never sees the plugin's error
    assert kit.collection.stats.spilled == 2 and kit.count() == 0
    spills = sorted((kit.settings.project_dir / ".trainkit").glob("collect-failed-*.jsonl"))
    assert len(spills) == 1
    assert len(spills[0].read_text(encoding="utf-8").splitlines()) == 2

    kit.pm.unregister(name="boom")  # the cause is fixed
    report = kit.import_files(spills)
    assert report.total("stored") == 2 and report.imported == 2
    taken_back = {ex.inputs["question"]: ex for ex in kit.examples(task="qa")}
    assert set(taken_back) == {"spilled 1", "spilled 2"}
    assert taken_back["spilled 1"].topic == "t" and taken_back["spilled 1"].outputs == {"answer": "a"}
    assert kit.import_files(spills).duplicates == 2  # importing it again adds nothing


def test_spilled_examples_keep_source_and_provenance(kit: tk.Kit) -> None:
    kit.pm.register_plugin(Boom(), "boom")
    kit.collect("qa", {"question": "spilled"}, {"answer": "a"}, provenance={"run": "r1"})
    kit.flush()
    kit.pm.unregister(name="boom")
    kit.import_files((kit.settings.project_dir / ".trainkit").glob("collect-failed-*.jsonl"))
    ex = only(kit, task="qa")
    assert ex.source == "collected"
    assert ex.provenance.get("run") == "r1"


# ---- after close ------------------------------------------------------------------------------------------------

def _collect_after_close(kit: tk.Kit) -> None:
    """A record collected after close is either refused (False) or stored: never accepted and then lost."""
    queued = kit.collect("qa", {"question": "after"}, {"answer": "a"})
    if queued:
        kit.flush(timeout=2.0)
    assert queued is False or "after" in {ex.inputs["question"] for ex in kit.examples(task="qa")}


def test_collect_after_close_without_prior_collection_is_not_lost(tmp_path: Path) -> None:
    kit = tk.open(f"sqlite:///{tmp_path / 'store.db'}")
    kit.close()
    try:
        _collect_after_close(kit)
    finally:
        kit.close()


def test_collect_after_close_is_not_lost(tmp_path: Path) -> None:
    kit = tk.open(f"sqlite:///{tmp_path / 'store.db'}")
    kit.collect("qa", {"question": "before"}, {"answer": "a"})
    kit.close()
    _collect_after_close(kit)


def test_flush_after_close_returns(tmp_path: Path) -> None:
    kit = tk.open(f"sqlite:///{tmp_path / 'store.db'}")
    kit.collect("qa", {"question": "before"}, {"answer": "a"})
    kit.close()
    assert kit.flush(timeout=0.2) is True


def test_close_with_the_store_down_spills_what_is_left(kit: tk.Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    real_intake = kit.intake
    down = [True]

    def intake(*args: Any, **kwargs: Any) -> Any:
        if down[0]:
            raise StoreError("server down (injected)")
        return real_intake(*args, **kwargs)

    monkeypatch.setattr(kit, "intake", intake)
    monkeypatch.setattr(collection, "RETRY_DELAYS", (0.01,))
    kit.collect("qa", {"question": "pending"}, {"answer": "a"})
    try:
        kit.collection.close(timeout=0.2)
        assert kit.collection.stats.spilled == 1
    finally:
        down[0] = False  # let the writer thread finish and stop
        kit.collection._thread.join(10)


def test_in_memory_store_is_one_database_for_the_writer_thread_too() -> None:
    with tk.open("sqlite:///:memory:") as kit:
        for i in range(20):
            kit.collect("qa", {"question": f"what is {i} + 1?"}, {"answer": str(i + 1)})
        assert kit.flush(30)
        assert kit.count(task="qa") == 20
        with tk.open("sqlite:///:memory:") as other:  # and each in-memory store is its own
            assert other.count() == 0


def test_collected_values_are_detached_from_the_pipelines_later_changes(kit: tk.Kit) -> None:
    steps, extra = ["add 2", "add 3"], {"tags": ["a"]}
    kit.collect("qa", {"question": "2+3?", "steps": steps}, {"answer": "5"}, metadata=extra)
    steps.append("mutated after collect")
    extra["tags"].append("mutated")
    kit.flush()
    stored = only(kit, task="qa")
    assert stored.inputs["steps"] == ["add 2", "add 3"] and stored.metadata["tags"] == ["a"]


def test_collection_stats_count_each_task_of_a_mixed_batch(kit: tk.Kit) -> None:
    from dspy_trainkit.reports.intake import intake_summary

    for i in range(6):  # one writer batch holds both tasks
        kit.collect("qa", {"question": f"q{i}?"}, {"answer": str(i)})
        kit.collect("problems", {"domain": "math", "topic": "sums", "difficulty": "easy"},
                    {"problem": f"{i} + 1?", "answer": str(i + 1)})
    kit.collect("qa", {"question": "q0?"}, {"answer": "0"})  # a duplicate of qa's first
    kit.collect("problems", {"domain": "math", "topic": "sums", "difficulty": "easy"},
                {"problem": "bad", "answer": object()})  # cannot be stored: invalid, for task problems
    assert kit.flush(30)
    rows = {(r["task"], r["source"]): r for r in intake_summary(kit)}
    assert set(rows) == {("qa", "collected"), ("problems", "collected")}  # no "(mixed)" row
    qa, problems = rows["qa", "collected"], rows["problems", "collected"]
    assert (qa["received"], qa["stored"], qa["duplicates"], qa["invalid"]) == (7, 6, 1, 0)
    assert (problems["received"], problems["stored"], problems["duplicates"], problems["invalid"]) == (7, 6, 0, 1)


class Pairs:
    """A collect plugin that makes two examples of one record (a question and its answers)."""

    @tk.hookimpl
    def collect(self, record: Any, context: Any) -> list[dict[str, Any]] | None:
        if not isinstance(record, tuple):
            return None
        question, *answers = record
        return [{"task": "qa", "source": "collected", "inputs": {"question": question}, "outputs": {"answer": a}}
                for a in answers]


def test_intake_counts_a_record_that_makes_several_examples_once(kit: tk.Kit) -> None:
    from dspy_trainkit.reports.intake import intake_summary

    kit.pm.register_plugin(Pairs(), "pairs")
    report = kit.add_many([("q1?", "a", "b"), ("q2?", "c", "d")])
    assert report.read == 2 and report.stored == 4
    rows = {(r["task"], r["source"]): r for r in intake_summary(kit)}
    assert rows["qa", "collected"]["received"] == 2 and rows["qa", "collected"]["stored"] == 4
