"""The intake pipeline: normalise, validate, dedup, score, decide, store in batches, notify."""

from __future__ import annotations

import logging

import attrs
import pytest
from helpers import QUALITY_PLUGINS, qa

import dspy_trainkit as tk
from dspy_trainkit import Finding, hookimpl, load_settings
from dspy_trainkit.assessment import weighted_quality


class LengthScorer:
    """Scores `length` = len(answer)/10, capped at 1."""

    @hookimpl
    def score(self, examples, context):
        return {i: {"length": min(1.0, len(str(ex.outputs.get("answer", ""))) / 10)} for i, ex in enumerate(examples)}


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def on_data_changed(self, event, context):
        self.events.append(event)


class WarnOnMaybe:
    @hookimpl
    def validate(self, examples, context):
        return {i: [Finding(severity="warning", code="maybe", message="unsure")]
                for i, ex in enumerate(examples) if "maybe" in str(ex.outputs)}


def open_kit(tmp_path, toml: str = "", plugins=()):
    (tmp_path / "trainkit.toml").write_text(toml)
    settings = load_settings(env={}, cwd=tmp_path)
    return tk.open(settings=settings, plugins=plugins, disable=QUALITY_PLUGINS)


def test_automatic_mode_accepts_above_threshold_and_rejects_below_with_reason(tmp_path):
    toml = "[tasks.qa]\nmin_quality = 0.5\n"
    with open_kit(tmp_path, toml, [("length", LengthScorer())]) as kit:
        report = kit.add_many([qa("long", "a long answer"), qa("short", "ab")])
        assert (report.stored, report.accepted, report.rejected) == (2, 1, 1)
        rejected = next(kit.examples(status="rejected"))
        assert rejected.quality == 0.2 and rejected.scores == {"length": 0.2}
        assert [f.code for f in rejected.findings] == ["below-threshold"]
        accepted = next(kit.examples(status="accepted"))
        assert accepted.provenance["scorers"] == {"length": {"plugin": "length", "version": None}}


def test_manual_mode_keeps_everything_for_review(tmp_path):
    with open_kit(tmp_path, "[tasks.qa]\ncollection_mode = 'manual'\n") as kit:
        report = kit.add_many([qa("a"), qa("b")])
        assert report.candidates == 2 and kit.count(status="candidate") == 2


def test_domain_threshold_overrides_task_threshold(tmp_path):
    toml = "[tasks.qa]\nmin_quality = 0.1\n[tasks.qa.domains.strict]\nmin_quality = 0.9\n"
    with open_kit(tmp_path, toml, [("length", LengthScorer())]) as kit:
        kit.add_many([qa("x", "abcde", domain="strict"), qa("y", "abcde", domain="lenient")])
        assert {ex.domain: ex.status for ex in kit.examples()} == {"strict": "rejected", "lenient": "accepted"}


def test_warnings_send_to_review_and_errors_reject_without_scoring(tmp_path):
    with open_kit(tmp_path, "", [("warn", WarnOnMaybe()), ("length", LengthScorer())]) as kit:
        kit.add_many([qa("w", "maybe"), qa("e", "")])
        warned = next(kit.examples(status="candidate"))
        assert warned.findings[0].plugin == "warn" and warned.scores
        errored = next(kit.examples(status="rejected"))
        assert errored.findings[0].code == "empty-value" and errored.findings[0].plugin == "basic_checks"
        assert errored.scores == {} and errored.quality is None


def test_declared_fields_are_checked(tmp_path):
    with open_kit(tmp_path, "[tasks.qa]\nsignature = 'question, context -> answer'\n") as kit:
        kit.add_many([qa("no context"), {"task": "qa", "inputs": {"question": "q", "context": "c", "extra": "e"},
                                         "outputs": {"answer": "a"}}])
        missing = next(kit.examples(status="rejected"))
        assert [(f.code, f.field) for f in missing.findings] == [("missing-field", "inputs.context")]
        extra = next(kit.examples(status="candidate"))
        assert [(f.code, f.field) for f in extra.findings] == [("undeclared-field", "inputs.extra")]


def test_records_that_cannot_be_examples_are_reported_with_position_and_the_rest_stored(tmp_path):
    with open_kit(tmp_path) as kit:
        report = kit.add_many([qa("good"), {"inputs": {"q": 1}}, "not a mapping", {**qa("x"), "status": "?"},
                               ValueError("line 7: not JSON")])
        assert report.read == 5 and report.stored == 1
        assert [(p.position, p.message.split(":")[0]) for p in report.problems] == [
            ("record 2", "task"),
            ("record 3", "expected a mapping of example fields, got str (and no collect plugin recognises it)"),
            ("record 4", "status"), ("record 5", "line 7")]


def test_duplicates_within_a_batch_and_across_runs(tmp_path):
    with open_kit(tmp_path) as kit:
        first = kit.add_many([qa("a"), qa("a "), qa("b")])
        assert (first.stored, first.duplicates) == (2, 1)
        again = kit.add_many([qa("a"), qa("b"), qa("c")])
        assert (again.stored, again.duplicates) == (1, 2)
        assert kit.count() == 3


def test_batches_commit_separately_and_notify_with_stored_ids(tmp_path):
    recorder = Recorder()
    (tmp_path / "trainkit.toml").write_text("[intake]\nbatch_size = 4\n")
    with tk.open(settings=load_settings(env={}, cwd=tmp_path), plugins=[("rec", recorder)]) as kit:
        report = kit.add_many([qa(f"q{i}") for i in range(10)], actor="tester", reason="bulk")
        assert [len(e.example_ids) for e in recorder.events] == [4, 4, 2]
        assert [e.example_ids for e in recorder.events] == [e.example_ids for e in kit.events()]
        assert {e.actor for e in kit.events()} == {"tester"} and report.stored == 10
        assert sorted(i for e in recorder.events for i in e.example_ids) == sorted(report.ids)


def test_an_interrupted_run_can_be_rerun_without_duplicates(tmp_path):
    class StopAfter:
        def __init__(self, n):
            self.n = n

        @hookimpl
        def on_data_changed(self, event, context):
            self.n -= 1
            if self.n == 0:
                raise KeyboardInterrupt

    (tmp_path / "trainkit.toml").write_text("[intake]\nbatch_size = 3\n")
    records = [qa(f"q{i}") for i in range(10)]
    with tk.open(settings=load_settings(env={}, cwd=tmp_path), plugins=[("stop", StopAfter(2))]) as kit:
        with pytest.raises(KeyboardInterrupt):
            kit.add_many(records)
        assert kit.count() == 6
    with tk.open(settings=load_settings(env={}, cwd=tmp_path)) as kit:
        report = kit.add_many(records)
        assert (report.stored, report.duplicates, kit.count()) == (4, 6, 10)


def test_a_failing_change_listener_is_logged_and_the_change_kept(tmp_path, caplog):
    class Broken:
        @hookimpl
        def on_data_changed(self, event, context):
            raise RuntimeError("cache down")

    with open_kit(tmp_path, "", [("broken_listener", Broken())]) as kit, caplog.at_level(logging.ERROR):
        kit.add(qa("kept"))
        assert kit.count() == 1
    assert "broken_listener" in caplog.text and "cache down" in caplog.text


def test_add_returns_stored_example_or_the_original_duplicate(tmp_path):
    with open_kit(tmp_path, 'default_task = "qa"\n') as kit:
        first = kit.add(inputs={"question": "q"}, outputs={"answer": "a"}, topic="t")
        assert first.task == "qa" and first.source == "manual" and first.status == "accepted"
        again = kit.add(inputs={"question": " q"}, outputs={"answer": "a"})
        assert again.id == first.id
        with pytest.raises(tk.ValidationError, match="inputs"):
            kit.add(inputs="nope")


def test_weighted_quality():
    assert weighted_quality({}, {}) is None
    assert weighted_quality({"a": 1.0, "b": 0.0}, {"a": 3}) == 0.75
    assert weighted_quality({"a": 1.0}, {"a": 0}) is None


def test_report_dict_is_json_ready(tmp_path):
    with open_kit(tmp_path) as kit:
        data = kit.add_many([qa("a"), 5]).to_dict()
    assert data["stored"] == 1 and data["invalid"] == 1 and data["problems"][0]["position"] == "record 2"
    assert attrs.has(tk.IntakeReport)


class GcWatcher:
    """Records whether the cyclic garbage collector was on while a batch was judged."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def validate(self, examples, context):
        import gc

        self.seen.append(gc.isenabled())
        return {}


def test_the_garbage_collector_is_paused_per_batch_and_back_on_afterwards(tmp_path):
    import gc

    watcher = GcWatcher()
    toml = "[intake]\nbatch_size = 2\n"
    with open_kit(tmp_path, toml, [("gc_watcher", watcher)]) as kit:
        assert gc.isenabled()
        report = kit.add_many([qa(f"q{n}") for n in range(5)])
        assert report.stored == 5
        assert watcher.seen == [False, False, False]  # three batches, each judged with the collector paused
        assert gc.isenabled()  # and on again after the run


def test_a_background_thread_leaves_the_garbage_collector_on(tmp_path):
    """The collection writer runs intake in a thread of the user's pipeline process: pausing the collector
    there would stop collecting the pipeline's own garbage for as long as the writer is busy."""
    import gc
    import threading

    watcher = GcWatcher()
    with open_kit(tmp_path, "[intake]\nbatch_size = 2\n", [("gc_watcher", watcher)]) as kit:
        worker = threading.Thread(target=lambda: kit.add_many([qa(f"q{n}") for n in range(3)]))
        worker.start()
        worker.join()
        assert watcher.seen == [True, True] and gc.isenabled()
