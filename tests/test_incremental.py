"""IncrementalBuilder and the collecting -> optimized switch, with DummyLM: the first run when readiness is
met, re-optimization exactly at the new-data threshold, a worse challenger that leaves the champion in place,
a schedule on an injected clock, failures recorded and retried later (never raised), and the background thread
woken by the pipeline's own writes and stopped cleanly."""

from __future__ import annotations

import queue

import dspy
import pytest
from helpers import QUALITY_PLUGINS
from incremental_program import QA, dummy_lm, exact, record

import dspy_trainkit as tk
from dspy_trainkit import load_settings
from dspy_trainkit.optimization.incremental import IncrementalBuilder, TaskState
from dspy_trainkit.optimization.triggers import TriggerSettings

TOML = """
[tasks.qa]
inputs = ["question"]
outputs = ["answer"]

[optimize]
optimizer = "labeled"
"""


def open_kit(store_url, tmp_path, toml=TOML):
    (tmp_path / "trainkit.toml").write_text(toml)
    return tk.open(store_url, settings=load_settings(env={}, cwd=tmp_path), disable=QUALITY_PLUGINS)


def sqlite(tmp_path):
    return f"sqlite:///{tmp_path / 'store.db'}"


def add(kit, numbers, **options):
    report = kit.add_many([record(i, **options) for i in numbers])
    assert report.accepted == len(numbers)


def builder(kit, **options):
    options.setdefault("lm", dummy_lm())
    return kit.builder("qa", program=QA, metric=exact, **options)


def test_task_collects_until_ready_then_the_first_run_makes_it_optimized(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        b = builder(kit, triggers=TriggerSettings(new_accepted=5))
        add(kit, range(3))
        state = kit.task_state("qa")
        assert isinstance(state, TaskState) and str(state) == "collecting" and not state.ready
        assert state.next_steps  # says what to add
        assert b.due() == [] and b.step() == []
        assert isinstance(kit.program("qa", QA), QA)  # the unoptimized fallback while collecting

        add(kit, range(3, 10))
        [hit] = b.due()
        assert hit.trigger == "on_ready" and "no optimization run yet" in hit.reason
        [result] = b.step()
        assert (result.status, result.promoted, result.score) == ("succeeded", True, 100.0)
        state = kit.task_state("qa")
        assert (state.state, state.champion) == ("optimized", result.run_id)
        program = kit.program("qa", QA)
        assert program.answer.demos  # the champion, loaded from its saved JSON
        assert b.due() == [] and b.step() == []  # nothing new since that run's snapshot

        # readiness lost again (examples rejected): "collecting" is informational, the champion still runs
        kit.set_status("rejected", ids=[e.id for e in kit.examples(task="qa", status="accepted")][:6], reason="test")
        assert kit.task_state("qa").state == "collecting" and kit.task_state("qa").champion == result.run_id
        assert kit.program("qa", QA).answer.demos == program.answer.demos


def test_new_data_reoptimizes_at_the_threshold_and_a_worse_challenger_keeps_the_champion(tmp_path):
    with open_kit(sqlite(tmp_path), tmp_path) as kit:
        b = builder(kit, triggers=TriggerSettings(new_accepted=5))
        add(kit, range(10))
        [first] = b.step()
        assert first.promoted
        add(kit, range(4), poisoned=True)
        assert b.due() == []  # 4 new accepted: below the threshold
        add(kit, [4], poisoned=True)
        [hit] = b.due()
        assert (hit.trigger, hit.value, hit.threshold) == ("new_accepted", 5, 5)
        [second] = b.step()
        assert second.status == "succeeded" and not second.promoted
        assert second.score < second.baseline_score  # poisoned demos make it worse
        assert kit.champion("qa").id == first.run_id == second.champion
        assert "kept" in second.message
        assert b.step() == []  # the lost run is the new baseline: no re-run on the same data
        kinds = [e.kind for e in kit.store.iter_events() if e.kind == "reoptimized"]
        assert kinds == ["reoptimized", "reoptimized"]


def test_schedule_fires_on_the_injected_clock(tmp_path):
    now = [0.0]
    with open_kit(sqlite(tmp_path), tmp_path) as kit:
        b = builder(kit, triggers=TriggerSettings(every=3600), clock=lambda: now[0])
        add(kit, range(10))
        [first] = b.step()
        finished = kit.run(first.run_id).finished_at
        now[0] = finished + 3599
        assert b.due() == []
        now[0] = finished + 3600
        assert [h.trigger for h in b.due()] == ["every"]
        [second] = b.step()
        assert second.status == "succeeded" and second.run_id != first.run_id


def test_a_failure_is_recorded_not_raised_and_retried_after_the_wait(tmp_path):
    now = [1000.0]

    def broken():
        raise RuntimeError("no such model")

    with open_kit(sqlite(tmp_path), tmp_path) as kit:
        b = kit.builder("qa", program=broken, metric=exact, lm=dummy_lm(), clock=lambda: now[0], retry_after=600)
        add(kit, range(10))
        [result] = b.step()
        assert result.status == "failed" and "no such model" in result.error
        [event] = [e for e in kit.store.iter_events() if e.kind == "reoptimization_failed"]
        assert event.details["task"] == "qa" and "no such model" in event.reason
        [check] = b.check()
        assert check.hits and not check.due and "retrying in 10m" in check.blocked
        assert b.step() == []
        now[0] += 600
        b.program = QA
        [retried] = b.step()
        assert retried.status == "succeeded" and retried.promoted


class Observed(IncrementalBuilder):
    """A builder that reports each step's results on a queue, so the test can wait for the thread."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps: queue.Queue = queue.Queue()

    def step(self, **options):
        results = super().step(**options)
        self.steps.put(results)
        return results


def test_background_builder_wakes_on_pipeline_writes_and_stops_cleanly(tmp_path):
    with open_kit(sqlite(tmp_path), tmp_path) as kit:
        b = Observed(kit, "qa", QA, exact, lm=dummy_lm())
        b.start(interval=3600, settle=0)  # only the pipeline's writes can wake it before an hour
        try:
            assert b.steps.get(timeout=60) == []  # the first look: not ready
            add(kit, range(10))  # the triggers plugin wakes the builder
            [result] = b.steps.get(timeout=120)
            assert result.promoted
            assert dspy.settings.lm is None  # the pipeline's DSPy settings are untouched
        finally:
            assert b.stop(timeout=120)
        assert not b.running
        assert kit.champion("qa").id == result.run_id


def test_background_errors_never_reach_the_pipeline(tmp_path, caplog):
    with open_kit(sqlite(tmp_path), tmp_path) as kit:
        b = Observed(kit, "qa", program="no_such_module:factory", metric=exact, lm=dummy_lm())
        add(kit, range(10))
        with b.start(interval=3600, settle=0):
            [result] = b.steps.get(timeout=120)
        assert result.status == "failed" and "no_such_module" in result.error
        assert "re-optimizing task qa failed" in caplog.text


def test_builder_refuses_a_second_start(tmp_path):
    with open_kit(sqlite(tmp_path), tmp_path) as kit:
        b = builder(kit)
        with b.start(interval=3600):
            with pytest.raises(tk.TrainkitError, match="running already"):
                b.start()


def test_closing_the_kit_stops_a_running_builder(tmp_path):
    kit = open_kit(sqlite(tmp_path), tmp_path)
    b = Observed(kit, "qa", QA, exact, lm=dummy_lm())
    b.start(interval=3600, settle=0)
    assert b.steps.get(timeout=60) == []
    kit.close()
    assert not b.running and kit.on_close == []


def test_a_manual_fallback_run_does_not_stop_the_first_real_optimization(tmp_path):
    with open_kit(sqlite(tmp_path), tmp_path) as kit:
        add(kit, range(3))
        fallback = kit.optimize("qa", program=QA, metric=exact, lm=dummy_lm())  # too little data
        assert fallback.fallback_reason and kit.champion("qa") is None
        b = builder(kit, triggers=TriggerSettings(new_accepted=50))
        add(kit, range(3, 10))
        [hit] = b.due()
        assert hit.trigger == "on_ready" and "only fallback runs so far" in hit.reason
        [result] = b.step()
        assert result.promoted and kit.task_state("qa").state == "optimized"
        assert b.due() == []


def test_a_success_after_a_failure_ends_the_wait(tmp_path):
    def broken():
        raise RuntimeError("no such model")

    with open_kit(sqlite(tmp_path), tmp_path) as kit:
        b = kit.builder("qa", program=broken, metric=exact, lm=dummy_lm(), retry_after=3600,
                        triggers=TriggerSettings(new_accepted=3))
        add(kit, range(10))
        [failed] = b.step()
        assert failed.status == "failed" and b.check()[0].blocked
        kit.optimize("qa", program=QA, metric=exact, lm=dummy_lm())  # fixed by hand, within retry_after
        b.program = QA
        add(kit, range(10, 13))
        [check] = b.check()
        assert check.due and check.blocked is None and [h.trigger for h in check.hits] == ["new_accepted"]


def test_pipeline_collection_goes_on_while_the_builder_optimizes(tmp_path):
    with open_kit(sqlite(tmp_path), tmp_path) as kit:
        b = Observed(kit, "qa", QA, exact, lm=dummy_lm())
        with b.start(interval=3600, settle=0):
            assert b.steps.get(timeout=60) == []
            for i in range(10):  # the pipeline collects through the background writer
                kit.collect("qa", {"question": f"question {i:03d}"}, {"answer": f"answer {i:03d}"})
            assert kit.flush(timeout=60)
            results = b.steps.get(timeout=120)
            while not results:  # a wake-up may come before the last batch: wait for the step that ran
                results = b.steps.get(timeout=120)
            for i in range(10, 40):  # and goes on collecting while (or after) the builder works
                kit.collect("qa", {"question": f"question {i:03d}"}, {"answer": f"answer {i:03d}"})
            assert kit.flush(timeout=60)
        [result] = results
        assert result.promoted
        stats = kit.collection.stats
        assert (stats.written, stats.accepted, stats.retries) == (40, 40, 0)
        assert kit.count(task="qa", status="accepted") == 40
