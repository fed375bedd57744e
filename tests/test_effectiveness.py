"""Per-example value from stored optimization runs, against a simulated few-shot learner with planted
mislabeled examples (dspy_trainkit.testing.learner): the learner does worse after each wrong demonstration, so a
working valuation must rank the mislabeled examples at the bottom.

The random-search run is real: DSPy's BootstrapFewShotWithRandomSearch over HTTP against the loopback server,
its candidates stored by `kit.optimize`, then read back by `kit.value`.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS
from optimize_support import dspy_cache
from plugins_under_test import ridge_estimates

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.effectiveness.signals import ExampleValue, ValueSignal
from dspy_trainkit.testing import FewShotLearner, OpenAIServer, make_lm


def _example() -> Any:
    """examples/effectiveness/run.py: its task settings, program, ground truth and records are the test's too."""
    path = Path(__file__).resolve().parent.parent / "examples" / "effectiveness" / "run.py"
    spec = importlib.util.spec_from_file_location("effectiveness_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = _example()
PROGRAM, TOML, truth, records = EXAMPLE.PROGRAM, EXAMPLE.TOML, EXAMPLE.truth, EXAMPLE.records


def auc(bad: list[float], good: list[float]) -> float:
    """P(a mislabeled example's value < a clean one's): 1.0 = every planted example below every clean one."""
    pairs = [(1.0 if b < g else 0.5 if b == g else 0.0) for b in bad for g in good]
    return sum(pairs) / len(pairs)


def with_fixed_ids(made: list[dict]) -> list[dict]:
    """The records with ids of their own, the same in every run. The optimizer's seeded split orders examples by
    id, and new ids are random (UUIDv7): which examples became demos, and how often, changed from run to run,
    and with it what the estimators could find; the bars below were measured over such runs, and one run in a
    few dozen fell under them (recommend named 2 of 6 findable mislabels, with 3 clean ones)."""
    return [{**record, "id": f"{n + 1:032x}"} for n, record in enumerate(made)]


@pytest.fixture(scope="module")
def optimized_project(tmp_path_factory):
    """One random-search run over 60 examples, 10 of them mislabeled, shared by the tests of this module (the
    run is the slow part: a few hundred LM calls)."""
    folder = tmp_path_factory.mktemp("sums")
    (folder / "trainkit.toml").write_text(TOML, encoding="utf-8")
    (folder / "sums_program.py").write_text(PROGRAM, encoding="utf-8")
    planted = set(range(0, 60, 6))
    learner = FewShotLearner(truth, base=0.55, gain=0.04, harm=0.3)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.syspath_prepend(str(folder))
        with dspy_cache(None), OpenAIServer(learner) as server, \
                tk.open(config=folder / "trainkit.toml", disable=QUALITY_PLUGINS) as kit:
            kit.add_many(with_fixed_ids(records(60, planted)))
            run = kit.optimize("sums", program="sums_program:program", metric="sums_program:exact",
                               lm=make_lm(server))
    return folder, run, planted, learner


@pytest.fixture
def valued_project(optimized_project, monkeypatch):
    folder, run, planted, learner = optimized_project
    monkeypatch.chdir(folder)
    with tk.open(config=folder / "trainkit.toml", disable=QUALITY_PLUGINS) as kit:
        yield kit, run, planted, learner


def test_mislabeled_examples_rank_at_the_bottom(valued_project):
    kit, run, planted, learner = valued_project
    assert run.status == "succeeded" and len(run.candidates) >= 30
    assert any(wrong > 0 for wrong in learner.seen)  # candidates did show mislabeled demos
    report = kit.value("sums")
    by_n = {kit.get(v.example_id).metadata["n"]: v for v in report.values}
    in_train = {kit.get(i).metadata["n"] for i in run.train_ids}
    bad = [by_n[n].value for n in planted & in_train if n in by_n]
    good = [v.value for n, v in by_n.items() if n not in planted]
    assert len(bad) >= 4 and len(good) >= 20
    score = auc(bad, good)
    # 0.5 is chance; the learner's harm per wrong demo is 0.3 against a gain of 0.04 per right one, so with
    # ~6 inclusions per example a working estimator separates them clearly (measured: see docs/effectiveness.md)
    assert score >= 0.85, (score, sorted(bad), sorted(good)[:5])
    assert all(v.stderr is not None and v.stderr > 0 and v.observations > 0 for v in report.values)
    assert report.values == sorted(report.values, key=lambda v: (v.value, v.example_id))
    assert report.estimators == {"demo_value": len(report.values)}


def test_values_are_stored_read_back_and_marked_stale_by_changes(valued_project):
    kit, _run, _planted, _learner = valued_project
    report = kit.value("sums")
    stored = kit.values("sums")
    assert [(v.example_id, v.value) for v in stored] == [(v.example_id, v.value) for v in report.values]
    assert [v.example_id for v in kit.values("sums", order="-value", limit=3)] == \
        [v.example_id for v in reversed(report.values)][:3]
    worst = stored[0]
    assert not worst.stale
    kit.set_status("rejected", ids=[worst.example_id], reason="mislabeled")
    assert kit.values("sums", example_ids=[worst.example_id])[0].stale
    assert not kit.values("sums", example_ids=[stored[-1].example_id])[0].stale
    events = [e for e in kit.events() if e.kind == "valued"]
    assert events and events[-1].details["estimators"] == {"demo_value": len(report.values)}
    kit.set_status("accepted", ids=[worst.example_id], reason="test over")


def test_cli_value_lists_lowest_first_and_json(valued_project):
    kit, _run, _planted, _learner = valued_project
    runner = CliRunner()
    shown = runner.invoke(cli, ["value", "--task", "sums", "--limit", "5"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert re.match(r"sums: \d+ example\(s\) valued from \d+ candidate\(s\) of 1 run\(s\)", lines[0])
    assert lines[1].split() == ["EXAMPLE", "VALUE", "STDERR", "CANDIDATES", "STALE"]
    values = [float(line.split()[1]) for line in lines[2:7]]
    assert values == sorted(values)
    data = json.loads(runner.invoke(cli, ["value", "--task", "sums", "--json", "--stored", "--top"]).stdout)
    assert data["task"] == "sums" and data["stored"] is True and len(data["values"]) > 5
    assert [v["value"] for v in data["values"]] == sorted((v["value"] for v in data["values"]), reverse=True)
    fresh = json.loads(runner.invoke(cli, ["value", "--task", "sums", "--json", "--top"]).stdout)
    assert [v["example_id"] for v in fresh["values"]] == [v["example_id"] for v in data["values"]]
    missing = runner.invoke(cli, ["value", "--task", "nosuch"])
    assert missing.exit_code == 1 and "nosuch" in missing.output


def test_recommend_names_the_mislabeled_examples_and_applying_sends_them_to_review(valued_project):
    kit, run, planted, _learner = valued_project
    kit.value("sums")
    valued = {kit.get(v.example_id).metadata["n"] for v in kit.values("sums")}
    (harmful,) = [r for r in kit.recommend("sums") if r.kind == "review-harmful-demos"]
    named = {kit.get(i).metadata["n"] for i in harmful.example_ids}
    findable = planted & valued
    precision = len(named & planted) / len(named)
    recall = len(named & planted) / len(findable)
    # measured on this setup over runs: precision 0.57-1.0 (0.57 seen once), recall 0.57-1.0 (the split, and
    # so which examples were demos how often, changes with the example ids); the bars fail an estimator that
    # names clean examples (the base rate of planted ones is 1 in 6: 0.5 is three times it) or misses most
    # planted ones
    assert precision >= 0.5 and recall >= 0.4, (sorted(named), sorted(findable))
    assert harmful.applicable and harmful.status == "candidate" and harmful.plugin == "advice"
    again = [r for r in kit.recommend("sums") if r.kind == "review-harmful-demos"]
    assert len(harmful.id) == 10 and [r.id for r in again] == [harmful.id]  # stable between calls
    chosen, changed = kit.apply_recommendation("sums", harmful.id[:6], actor="tester")
    try:
        assert changed == len(harmful.example_ids)
        assert {kit.get(i).status for i in harmful.example_ids} == {"candidate"}
        events = [e for e in kit.events() if e.kind == "status_changed"]
        assert events[-1].actor == "tester" and events[-1].reason.startswith(f"recommendation {harmful.id}: ")
        assert not [r for r in kit.recommend("sums") if r.kind == "review-harmful-demos"]
        with pytest.raises(tk.NotFoundError, match="no current recommendation"):
            kit.apply_recommendation("sums", harmful.id)
    finally:
        kit.set_status("accepted", ids=list(harmful.example_ids), reason="test over")


def test_cli_recommend_lists_and_applies(valued_project):
    kit, _run, _planted, _learner = valued_project
    kit.value("sums")
    runner = CliRunner()
    listed = runner.invoke(cli, ["recommend", "--task", "sums"])
    assert listed.exit_code == 0, listed.output
    first = next(line for line in listed.stdout.splitlines() if " review " in line)
    rec_id = first.split()[0]
    assert re.match(r"[0-9a-f]{10}  \[\d\.\d\d\] review \d+ example\(s\) that lower", first)
    assert f"apply: trainkit recommend --task sums --apply {rec_id}" in listed.stdout
    data = [r for r in json.loads(runner.invoke(cli, ["recommend", "--task", "sums", "--json"]).stdout)
            if r["id"] == rec_id]
    assert data[0]["applicable"] is True and data[0]["kind"] == "review-harmful-demos"
    applied = runner.invoke(cli, ["recommend", "--task", "sums", "--apply", rec_id])
    try:
        assert applied.exit_code == 0, applied.output
        assert applied.stdout.startswith(f"applied {rec_id}: review ")
        assert runner.invoke(cli, ["recommend", "--task", "sums", "--apply", "nosuch"]).exit_code == 1
    finally:
        kit.set_status("accepted", ids=data[0]["example_ids"], reason="test over")


def test_weak_spots_come_from_the_champions_dev_results(valued_project):
    kit, run, _planted, _learner = valued_project
    spots = kit.weak_spots("sums")
    optimized = [r for r in kit.run(run.id).results if r.phase == "optimized"]
    assert spots.run == run.id and sum(c["dev"] for c in spots.cells) == len(optimized)
    assert spots.cells[0]["failure_rate"] == pytest.approx(1 - sum(r.score for r in optimized) / len(optimized),
                                                          abs=1e-4)
    assert sorted(f["example_id"] for f in spots.failures) == sorted(r.example_id for r in optimized
                                                                      if r.score < 1)
    weak = [r for r in kit.recommend("sums") if r.kind == "strengthen-weak-cell"]
    assert bool(weak) == (spots.cells[0]["failure_rate"] >= 0.5)
    shown = CliRunner().invoke(cli, ["value", "--task", "sums", "--weak"])
    assert shown.exit_code == 0 and f"run {run.id[-8:]}: {len(spots.failures)} of {len(optimized)} dev" in shown.stdout


def test_label_check_flags_the_mislabeled_examples(valued_project):
    kit, run, planted, _learner = valued_project
    # right 90% of the time whatever the demos: with the run's learner, the check's program was only as good as
    # the demos DSPy's threaded search happened to pick, and one pick in a few dozen agreed with 53% of the labels,
    # below min_agreement (0.6), so the check (rightly) gave no signals
    learner = FewShotLearner(truth, base=0.9, gain=0.0, harm=0.0)
    with dspy_cache(None), OpenAIServer(learner) as server:
        # the run by id: whether it also became champion depends on DSPy's threaded search (its dev score
        # against the unoptimized program's), which made this test fail now and then
        check = kit.check_labels("sums", run=run.id, budget=60, lm=make_lm(server))
    assert check.run == run.id and check.checked == 60 and check.failed_calls == 0
    report = kit.value("sums", labels=check)
    assert report.estimators["label_check"] == 60
    by_n = {kit.get(v.example_id).metadata["n"]: v for v in kit.values("sums")}
    suspects = {n for n, v in by_n.items() if v.signals.get("label_agreement", {}).get("detail", {}).get("suspect")}
    recall = len(suspects & planted) / len(planted)
    precision = len(suspects & planted) / len(suspects)
    # a planted label is always contradicted (the learner answers the true sum); clean ones only when the program
    # errs, so precision is bounded by the program's own error rate (10% here: about 5 of the 50 clean labels):
    # the bar says "much better than the 1/6 base rate", not "a verdict"
    assert recall == 1.0 and precision >= 0.4, (sorted(suspects), check.agreement)
    (review,) = [r for r in kit.recommend("sums") if r.kind == "review-suspect-labels"]
    assert set(review.example_ids) <= {v.example_id for n, v in by_n.items() if n in suspects}
    dry = CliRunner().invoke(cli, ["value", "--task", "sums", "--labels", "--label-budget", "10", "--dry-run",
                                   "--run", run.id])
    assert dry.exit_code == 0 and dry.stdout.startswith("--labels would make 10 program call(s)")


def test_recommend_without_evidence_says_so_and_asks_for_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trainkit.toml").write_text(TOML, encoding="utf-8")
    with tk.open(disable=QUALITY_PLUGINS) as kit:
        kit.add_many(records(5, set()))
        found = {r.kind: r for r in kit.recommend("sums")}
        assert set(found) == {"not-enough-evidence", "add-examples"}
        assert "random-search" in found["not-enough-evidence"].command
        assert found["add-examples"].title.startswith("add about 15 example(s)")  # random-search needs 20 here
        assert not found["add-examples"].applicable
        with pytest.raises(tk.TrainkitError, match="is not applied by trainkit: run `trainkit bootstrap"):
            kit.apply_recommendation("sums", found["add-examples"].id)


def test_a_rule_plugin_returning_something_else_is_named():
    from dspy_trainkit.testing import hermetic_kit

    class Sloppy:
        @tk.hookimpl
        def recommend(self, task, context):
            return [{"kind": "oops"}]

    import tempfile

    with tempfile.TemporaryDirectory() as folder, \
            hermetic_kit(folder, extra=[("sloppy", Sloppy())], toml="[tasks.qa]\nsignature = \"q -> a\"\n") as kit:
        with pytest.raises(tk.PluginError, match="plugin 'sloppy' returned dict from recommend"):
            kit.recommend("qa")


def test_no_runs_means_no_values_and_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trainkit.toml").write_text(TOML, encoding="utf-8")
    with tk.open(disable=QUALITY_PLUGINS) as kit:
        kit.add_many(records(5, set()))
    result = CliRunner().invoke(cli, ["value", "--task", "sums"])
    assert result.exit_code == 0, result.output
    assert "0 example(s) valued" in result.stdout and "5 accepted example(s) not covered" in result.stdout
    assert "not enough evidence yet" in result.stdout


def test_ridge_recovers_planted_effects_exactly_enough():
    rng = random.Random(1)
    ids = [f"e{n}" for n in range(30)]
    effect = {i: (-10.0 if n < 3 else 1.0) for n, i in enumerate(ids)}
    sets = [rng.sample(ids, 6) for _ in range(200)]
    scores = [50 + sum(effect[i] for i in s) + rng.gauss(0, 1) for s in sets]
    found = ridge_estimates(sets, scores, penalty=1.0)
    assert set(sorted(found, key=lambda i: found[i][0])[:3]) == {"e0", "e1", "e2"}
    # every demo set has 6 members, so effects are known up to a common constant: relative to the mean effect
    mean = sum(effect.values()) / len(effect)
    for i in ids:
        value, stderr, observed = found[i]
        assert value == pytest.approx(effect[i] - mean, abs=1.0)
        assert stderr is not None and 0 < stderr < 1.0
        assert observed == sum(i in s for s in sets)


def test_combining_signals_weights_by_inverse_variance():
    signals = [ValueSignal(example_id="x", signal="a", value=2.0, stderr=1.0, observations=3),
               ValueSignal(example_id="x", signal="b", value=-1.0, stderr=2.0, observations=5)]
    combined = ExampleValue.combine("t", "x", signals, when=1.0)
    assert combined.value == pytest.approx((2.0 / 1 + -1.0 / 4) / (1 + 1 / 4))
    assert combined.stderr == pytest.approx((1 / (1 + 1 / 4)) ** 0.5)
    assert combined.observations == 8 and set(combined.signals) == {"a", "b"}


def test_store_keeps_values_and_streams_candidates(kit):
    """Both backends: candidates of succeeded runs only, values replaced per task, read in order, flagged stale."""
    from dspy_trainkit.optimization.records import Run

    ok = Run(task="qa", optimizer="random-search", status="succeeded", val_ids=["v1", "v2"])
    failed = Run(task="qa", optimizer="random-search", status="failed", val_ids=["v1"])
    kit.store.save_run(ok.record(), [], [{"seed": 0, "score": 50.0, "demo_ids": ["a", "b"], "subscores": [1, 0]},
                                         {"seed": 1, "score": 0.0, "demo_ids": ["c", None], "subscores": [0, 0]}])
    kit.store.save_run(failed.record(), [], [{"seed": 0, "score": 9.0, "demo_ids": ["z"], "subscores": [1]}])
    found = list(kit.store.iter_candidates("qa"))
    assert [(c["run_id"], c["seed"], c["demo_ids"]) for c in found] == [(ok.id, 0, ["a", "b"]), (ok.id, 1, ["c", None])]
    values = [ExampleValue(task="qa", example_id=i, value=v, stderr=0.5, observations=2, signals={"s": {"value": v}},
                           computed_at=1.0) for i, v in (("a", 2.0), ("b", -1.0), ("c", 0.5))]
    kit.store.save_values("qa", values[:1])
    kit.store.save_values("qa", values)  # replaces
    assert [v.example_id for v in kit.store.iter_values("qa")] == ["b", "c", "a"]
    assert [v.example_id for v in kit.store.iter_values("qa", order="-value", limit=2)] == ["a", "c"]
    assert kit.store.mark_values_stale(["b", "zzz"]) == 1
    read = {v.example_id: v for v in kit.store.iter_values("qa", example_ids=["b", "c"])}
    assert read["b"].stale and not read["c"].stale and read["b"].signals == {"s": {"value": -1.0}}
    assert list(kit.store.iter_values("other")) == []


def test_weak_spots_speak_for_the_champion_not_a_later_run_that_lost(tmp_path, monkeypatch):
    """A run recorded without promotion (it lost, or promote=False) is not the program in use: weak spots and
    the weak-cell recommendation keep reading the champion's dev results."""
    (tmp_path / "trainkit.toml").write_text(TOML, encoding="utf-8")
    (tmp_path / "sums_program.py").write_text(PROGRAM, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    learner = FewShotLearner(truth, base=0.55, gain=0.04, harm=0.3)
    with dspy_cache(None), OpenAIServer(learner) as server, \
            tk.open(config=tmp_path / "trainkit.toml", disable=QUALITY_PLUGINS) as kit:
        kit.add_many(records(24, set()))
        served = kit.optimize("sums", program="sums_program:program", metric="sums_program:exact",
                              optimizer="labeled", lm=make_lm(server))
        later = kit.optimize("sums", program="sums_program:program", metric="sums_program:exact",
                             optimizer="labeled", lm=make_lm(server), seed=7, promote=False)
        if not served.promoted:  # a first run is promoted unless it scores below the unoptimized program
            kit.store.set_champion("sums", served.id, time.time())
        assert not later.promoted and kit.champion("sums").id == served.id
        assert kit.weak_spots("sums").run == served.id
        assert kit.weak_spots("sums", run=later.id).run == later.id
