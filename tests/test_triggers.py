"""Re-optimization triggers: exact thresholds (N-1 does not fire, N does) from real intake on SQLite and
PostgreSQL, growth, quality shift, a schedule on an injected clock, durations, and the plugin's change marks."""

from __future__ import annotations

import math

import pytest
from helpers import QUALITY_PLUGINS, qa

import dspy_trainkit as tk
from dspy_trainkit import hookimpl, load_settings
from dspy_trainkit.optimization import triggers
from dspy_trainkit.optimization.triggers import Observation, TriggerSettings, evaluate, observe, parse_duration

DAY = 86400.0


class FixedQuality:
    """A scorer giving each example the quality in its metadata `q` (so tests choose qualities)."""

    @hookimpl
    def score(self, examples, context):
        return {i: {"fixed": ex.metadata["q"]} for i, ex in enumerate(examples) if "q" in ex.metadata}


def open_kit(store_url, tmp_path, toml=""):
    (tmp_path / "trainkit.toml").write_text(toml)
    return tk.open(store_url, settings=load_settings(env={}, cwd=tmp_path), disable=QUALITY_PLUGINS,
                   plugins=[("fixed_quality", FixedQuality())])


def add(kit, start, n, **extra):
    report = kit.add_many([qa(f"question {i}", f"answer {i}", **extra) for i in range(start, start + n)])
    assert report.stored == n
    return report


def obs(**values):
    base = dict(task="qa", now=1000.0, ready=True, accepted=10, mean_quality=0.5, last_run_id="r1",
                last_run_at=0.0, last_snapshot="s1", baseline_size=10, baseline_quality=0.5, new_accepted=0,
                optimized_before=True)
    return Observation(**{**base, **values})


def fired(settings, observation):
    return [hit.trigger for hit in evaluate(settings, observation)]


# ---- evaluation against exact thresholds ------------------------------------------------------------------

def test_new_accepted_fires_at_exactly_n():
    settings = TriggerSettings(new_accepted=5)
    assert fired(settings, obs(new_accepted=4)) == []
    [hit] = evaluate(settings, obs(new_accepted=5))
    assert (hit.trigger, hit.value, hit.threshold) == ("new_accepted", 5, 5)
    assert "5 new accepted examples since run r1 (snapshot s1)" in hit.reason


def test_growth_fires_at_the_fraction_and_not_below():
    settings = TriggerSettings(growth=0.2)
    assert fired(settings, obs(accepted=11, baseline_size=10)) == []  # 10% growth
    assert fired(settings, obs(accepted=12, baseline_size=10)) == ["growth"]  # 20%
    [hit] = evaluate(settings, obs(accepted=3, baseline_size=0))
    assert math.isinf(hit.value) and "from none" in hit.reason
    assert fired(settings, obs(accepted=8, baseline_size=10)) == []  # shrinking is not growth


def test_quality_shift_fires_both_ways_at_the_threshold():
    settings = TriggerSettings(quality_shift=0.1)
    assert fired(settings, obs(mean_quality=0.59, baseline_quality=0.5)) == []
    assert fired(settings, obs(mean_quality=0.6, baseline_quality=0.5)) == ["quality_shift"]  # 0.6-0.5 < 0.1 in floats
    assert fired(settings, obs(mean_quality=0.4, baseline_quality=0.5)) == ["quality_shift"]
    assert fired(settings, obs(mean_quality=None, baseline_quality=0.5)) == []  # nothing scored: no opinion


def test_schedule_uses_the_given_clock():
    settings = TriggerSettings(every=DAY)
    assert fired(settings, obs(last_run_at=0.0, now=DAY - 1)) == []
    [hit] = evaluate(settings, obs(last_run_at=0.0, now=DAY))
    assert hit.trigger == "every" and hit.value == DAY and "1d since the last run" in hit.reason


def test_first_run_fires_on_readiness_only_and_nothing_fires_while_not_ready():
    first = obs(last_run_id=None, last_run_at=None, last_snapshot=None, baseline_size=0, new_accepted=0,
                optimized_before=False)
    assert fired(TriggerSettings(new_accepted=1), first) == ["on_ready"]
    assert fired(TriggerSettings(on_ready=False, new_accepted=1), first) == []
    everything = TriggerSettings(new_accepted=1, growth=0.01, quality_shift=0.01, every=1)
    assert fired(everything, obs(ready=False, new_accepted=50, accepted=60, mean_quality=0.9)) == []
    assert fired(everything, obs(new_accepted=50, accepted=60, mean_quality=0.9)) == [
        "new_accepted", "growth", "quality_shift", "every"]


def test_on_ready_fires_again_when_every_earlier_run_was_a_fallback():
    fallback_only = obs(optimized_before=False, new_accepted=3)
    [hit] = evaluate(TriggerSettings(new_accepted=5), fallback_only)
    assert hit.trigger == "on_ready" and "only fallback runs so far" in hit.reason
    assert fired(TriggerSettings(new_accepted=3), fallback_only) == ["on_ready", "new_accepted"]
    assert fired(TriggerSettings(new_accepted=5), obs(optimized_before=True, new_accepted=3)) == []


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("12h", 43200), ("1d", DAY),
                                               ("1w", 7 * DAY), ("1h30m", 5400), (" 2 d ", 2 * DAY), (45, 45),
                                               (0.5, 0.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "1x", "d", "1d2", "0s", 0, -3, True, "1 day", None])
def test_parse_duration_refuses_other_text(bad):
    with pytest.raises(ValueError, match="duration|more than 0"):
        parse_duration(bad)


# ---- observing a real store ------------------------------------------------------------------------------

def test_new_accepted_from_real_intake_fires_at_n_not_n_minus_1(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        add(kit, 0, 6)
        kit.snapshot("base", task="qa")
        settings = TriggerSettings(new_accepted=4, on_ready=False)

        def look():
            return observe(kit, "qa", now=10.0, ready=True, last_run_id="r1", last_run_at=1.0,
                           last_snapshot="base")

        add(kit, 100, 2)
        kit.add(task="qa", inputs={"question": "for review"}, outputs={"answer": "x"})
        candidate = kit.add(qa("later accepted", "y"))
        kit.set_status("candidate", ids=[candidate.id], reason="review it")  # not accepted: does not count
        now = look()
        assert (now.accepted, now.baseline_size, now.new_accepted) == (9, 6, 3)  # 6 + 2 + the manual one
        assert fired(settings, now) == []
        kit.set_status("accepted", ids=[candidate.id], reason="reviewed")
        now = look()
        assert now.new_accepted == 4
        assert fired(settings, now) == ["new_accepted"]


def test_archiving_snapshot_examples_does_not_count_as_new(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        add(kit, 0, 5)
        kit.snapshot("base", task="qa")
        old = [ex.id for ex in kit.examples(task="qa")][:3]
        kit.set_status("archived", ids=old, reason="stale")
        add(kit, 50, 2)
        now = observe(kit, "qa", now=1.0, ready=True, last_run_id="r", last_run_at=0.0, last_snapshot="base")
        assert (now.accepted, now.baseline_size, now.new_accepted) == (4, 5, 2)
        assert fired(TriggerSettings(growth=0.2), now) == []  # 5 -> 4 accepted
        assert fired(TriggerSettings(new_accepted=2), now) == ["new_accepted"]


def test_growth_and_quality_shift_from_real_intake(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        add(kit, 0, 10, metadata={"q": 0.5})
        kit.snapshot("base", task="qa")

        def look():
            return observe(kit, "qa", now=1.0, ready=True, last_run_id="r", last_run_at=0.0, last_snapshot="base")

        settings = TriggerSettings(growth=0.3, quality_shift=0.1, on_ready=False)
        add(kit, 10, 2, metadata={"q": 0.9})  # 12 accepted: +20%, mean (5 + 1.8) / 12 = 0.5667
        now = look()
        assert now.baseline_quality == pytest.approx(0.5) and now.mean_quality == pytest.approx(6.8 / 12)
        assert fired(settings, now) == []
        add(kit, 20, 1, metadata={"q": 1.0})  # 13 accepted: +30%, mean 7.8 / 13 = 0.6
        now = look()
        assert now.mean_quality == pytest.approx(0.6)
        assert fired(settings, now) == ["growth", "quality_shift"]


def test_observe_without_a_run_counts_accepted_only(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        add(kit, 0, 3)
        now = observe(kit, "qa", now=5.0, ready=False)
        assert (now.accepted, now.new_accepted, now.last_snapshot) == (3, 0, None)
        assert evaluate(TriggerSettings(), now) == []  # not ready yet
        assert fired(TriggerSettings(), attrs_evolve(now, ready=True)) == ["on_ready"]


def attrs_evolve(value, **changes):
    import attrs

    return attrs.evolve(value, **changes)


# ---- the plugin's change marks ---------------------------------------------------------------------------

def test_plugin_marks_data_changes_and_ignores_other_events(tmp_path):
    with open_kit(f"sqlite:///{tmp_path / 'marks.db'}", tmp_path) as kit:
        assert kit.pm.get_plugin("triggers") is not None  # the built-in plugin, found by its entry point
        marks = triggers.change_marks(kit)
        assert marks.version == 0
        add(kit, 0, 3)
        assert marks.version == 1
        kit.add(task="other", inputs={"x": "1"}, outputs={"y": "2"})
        first = next(iter(kit.examples(task="qa")))
        kit.set_status("archived", ids=[first.id], reason="old")
        assert marks.version == 3
        version = marks.version
        kit.snapshot("s", task="qa")  # not a data change
        kit.add_many([qa("question 1", "answer 1")])  # a duplicate: nothing committed
        assert marks.version == version


def test_marks_wait_returns_on_change_or_stop():
    marks = triggers.ChangeMarks()
    assert marks.wait(0, timeout=0.0, stop=lambda: False) == 0
    marks.mark()
    assert marks.wait(0, timeout=60.0, stop=lambda: False) == 1  # already newer: returns at once
    assert marks.wait(1, timeout=60.0, stop=lambda: True) == 1  # stopping: returns at once


# ---- settings ---------------------------------------------------------------------------------------------

def test_trigger_settings_merge_per_key_and_false_switches_one_off(tmp_path):
    (tmp_path / "trainkit.toml").write_text("""
[optimize.triggers]
new_accepted = 50
growth = 0.2
every = "1d"

[tasks.qa.optimize.triggers]
new_accepted = 10
every = false
quality_shift = 0.05
on_ready = false
""")
    settings = load_settings(env={}, cwd=tmp_path)
    with tk.open(f"sqlite:///{tmp_path / 's.db'}", settings=settings) as kit:
        assert triggers.triggers_for(kit, "qa") == TriggerSettings(new_accepted=10, growth=0.2, quality_shift=0.05,
                                                                   every=None, on_ready=False)
        assert triggers.triggers_for(kit, "other") == TriggerSettings(new_accepted=50, growth=0.2, every=DAY)
        assert triggers.triggers_for(kit, "qa").active() == ["new_accepted", "growth", "quality_shift"]
        # the task's settings (which a run records) merge the tables key by key as well
        assert kit.settings.optimize_for("qa").triggers == {"new_accepted": 10, "growth": 0.2, "every": None,
                                                           "quality_shift": 0.05, "on_ready": False}


@pytest.mark.parametrize(("table", "line", "message"), [
    ("new_accepted = 0", 3, "optimize.triggers.new_accepted: must be a whole number >= 1"),
    ("growth = -0.1", 3, "optimize.triggers.growth: must be a fraction > 0"),
    ("quality_shift = 2", 3, "optimize.triggers.quality_shift: must be a number above 0 and at most 1"),
    ("every = \"sometimes\"", 3, "optimize.triggers.every: 'sometimes' is not a duration"),
    ("on_ready = 1", 3, "optimize.triggers.on_ready: must be true or false"),
    ("new_acepted = 5", 3, "optimize.triggers.new_acepted: unknown key; known keys here: new_accepted, growth"),
])
def test_bad_trigger_settings_name_the_file_line_and_key(tmp_path, table, line, message):
    (tmp_path / "trainkit.toml").write_text(f"\n[optimize.triggers]\n{table}\n")
    with pytest.raises(tk.ConfigError) as caught:
        load_settings(env={}, cwd=tmp_path)
    assert f"trainkit.toml:{line}: {message}" in str(caught.value)


def test_task_trigger_errors_name_the_task_table(tmp_path):
    (tmp_path / "trainkit.toml").write_text("[tasks.qa.optimize.triggers]\ngrowth = \"lots\"\n")
    with pytest.raises(tk.ConfigError, match=r"trainkit.toml:2: tasks.qa.optimize.triggers.growth: must be a fraction"):
        load_settings(env={}, cwd=tmp_path)
