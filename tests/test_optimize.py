"""Optimization runs end to end on the example problem task: readiness -> data -> optimize -> a saved program that
loads with DSPy and answers; champion and challenger; fallbacks; optional dependencies checked before any LM call;
run records on SQLite and PostgreSQL; the same scores from the LM cache. LMs are the loopback server (real HTTP)
and DummyLM; DSPy's cache is off or in a temporary folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dspy
import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS
from optimize_support import (
    METRIC,
    PROGRAM,
    TASK,
    bad_answer,
    cell_records,
    dspy_cache,
    good_answer,
    import_generated,
    make_project,
    open_project,
)

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.optimization.runs import OptimizationError
from dspy_trainkit.testing import OpenAIServer, make_lm, server_error

#: 2 per cell of the math domain's 9 cells and 3 in two physics cells: 24 examples, 2 dev examples
DATA = {**{(d, t, lvl): 2 for d, t, lvl in [("math", t, lvl) for t in ("fractions", "percentages", "linear equations")
                                            for lvl in ("easy", "medium", "hard")]},
        ("physics", "kinematics", "easy"): 3, ("physics", "energy", "easy"): 3}


@pytest.fixture(autouse=True)
def no_dspy_cache():
    with dspy_cache(None):
        yield


@pytest.fixture
def project(tmp_path, store_url):
    config = make_project(tmp_path / "project", store_url)
    with open_project(config) as kit:
        yield kit


def fill(kit: tk.Kit, folder: Path, data=None, start: int = 0, name: str = "generated.jsonl") -> int:
    return import_generated(kit, folder, cell_records(data or DATA, start=start), name)


def test_not_ready_then_data_then_optimize_saves_a_program_that_loads_and_answers(project, tmp_path):
    kit = project
    assert kit.readiness(TASK)[0].verdict == "not ready"
    fill(kit, tmp_path)
    assert kit.readiness(TASK)[0].verdict == "ready"
    with OpenAIServer(good_answer) as server:
        run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        assert server.counts["requests"] > 0
    assert run.status == "succeeded" and run.used == "bootstrap" and run.promoted
    assert run.score == 100.0 and run.baseline_score == 100.0 and run.lm == "openai/test-model"
    assert len(run.dev_ids) == 2 and len(run.train_ids) == 22
    assert set(run.dev_ids).isdisjoint(run.train_ids)
    # demos are mapped back to stored training examples; bootstrapped ones came from distinct examples
    assert run.demos and all(d["example_id"] in run.train_ids for d in run.demos)
    bootstrapped = [d["example_id"] for d in run.demos if d["augmented"]]
    assert len(bootstrapped) == 4 and len(set(bootstrapped)) == 4
    assert {r.phase for r in run.results} == {"baseline", "optimized"}
    assert [r.example_id for r in run.results_for("optimized")] == run.dev_ids
    # stored and read back
    stored = kit.run(run.id[-8:])
    assert stored.to_dict() == run.to_dict()
    assert kit.champion(TASK).id == run.id and [r.id for r in kit.runs(TASK)] == [run.id]
    # the saved JSON loads into a fresh program with plain DSPy, and the program answers
    path = Path(run.program_path)
    assert path.suffix == ".json" and json.loads(path.read_text())["generate"]["demos"]
    meta = json.loads(path.with_suffix(".meta.json").read_text())  # what made the file, beside it
    assert (meta["id"], meta["snapshot"], meta["snapshot_digest"], meta["score"], meta["lm"]) == (
        run.id, run.snapshot, run.snapshot_digest, run.score, run.lm)
    assert meta["demo_ids"] == run.demo_ids and meta["settings"] == run.settings and meta["promoted"]
    import pipeline

    fresh = pipeline.ProblemGenerator()
    fresh.load(str(path))
    assert len(fresh.generate.demos) == len(run.demos)
    program = kit.program(TASK)
    assert [dict(d) for d in program.generate.demos] == [dict(d) for d in fresh.generate.demos]
    with OpenAIServer(good_answer) as server, dspy.context(lm=make_lm(server)):
        answer = program(domain="math", topic="fractions", difficulty="easy")
        assert answer.answer == "42"
        prompt = json.dumps(server.requests[-1]["messages"])
    assert "Practice" in prompt  # the demos (stored problems) are in the prompt


def test_a_worse_challenger_keeps_the_champion(project, tmp_path):
    kit = project
    fill(kit, tmp_path)
    with OpenAIServer(good_answer) as server:
        champion = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
    with OpenAIServer(bad_answer) as server:  # same snapshot, same dev set: the stored champion score counts
        challenger = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server),
                                  snapshot=champion.snapshot)
    assert challenger.status == "succeeded" and not challenger.promoted
    assert challenger.score == pytest.approx(200 / 3, abs=0.01) and challenger.score < champion.score
    assert challenger.champion_run == champion.id and challenger.champion_score == champion.score
    assert not challenger.results_for("champion")  # same dev set: no re-evaluation
    assert "champion" in challenger.message and "kept" in challenger.message
    assert kit.champion(TASK).id == champion.id
    assert kit.program(TASK).generate.demos  # still the champion's program


def test_a_champion_is_scored_again_on_a_new_dev_set(project, tmp_path):
    kit = project
    fill(kit, tmp_path)
    with OpenAIServer(bad_answer) as server:
        first = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
    assert first.promoted and first.score == pytest.approx(200 / 3, abs=0.01)  # as good as unoptimized
    fill(kit, tmp_path, {("physics", "energy", "medium"): 3, ("math", "fractions", "easy"): 3}, start=100,
         name="more.jsonl")
    with OpenAIServer(good_answer) as server:
        second = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
    assert second.snapshot != first.snapshot and len(second.dev_ids) == 4
    scored = second.results_for("champion")
    assert [r.example_id for r in scored] == second.dev_ids  # the champion was run on the new dev set
    assert second.champion_score == 100.0 and second.score == 100.0
    assert not second.promoted  # a tie on the same dev set is not a win
    assert kit.champion(TASK).id == first.id


def lenient(example, prediction, trace=None):
    """A metric that passes everything."""
    return 1.0


def test_a_champion_is_scored_again_with_another_metric_or_lm(project, tmp_path):
    kit = project
    fill(kit, tmp_path)
    with OpenAIServer(bad_answer) as server:
        champion = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
    assert champion.promoted and champion.score == pytest.approx(200 / 3, abs=0.01)
    with OpenAIServer(bad_answer) as server:  # same dev set, but a metric that passes everything
        challenger = kit.optimize(TASK, program=PROGRAM, metric=lenient, lm=make_lm(server),
                                  snapshot=champion.snapshot)
    assert challenger.score == 100.0
    assert [r.example_id for r in challenger.results_for("champion")] == challenger.dev_ids  # re-scored
    assert challenger.champion_score == 100.0 and not challenger.promoted  # a tie keeps the champion
    assert kit.champion(TASK).id == champion.id
    with OpenAIServer(good_answer) as server:  # metric A again: the champion's stored score (metric A) counts
        fair = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server), snapshot=champion.snapshot)
    assert not fair.results_for("champion") and fair.champion_score == champion.score
    assert fair.score == 100.0 and fair.promoted and kit.champion(TASK).id == fair.id
    answers = {"problem": "Add 1/4 and 2/4 of a pizza: how much pizza is that together?",
               "solution": "Same denominator, add numerators. The sum is 3/4", "answer": "3/4"}
    other_lm = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=dspy.utils.DummyLM([answers] * 2000),
                            snapshot=champion.snapshot, promote=False)
    assert [r.example_id for r in other_lm.results_for("champion")] == other_lm.dev_ids  # another LM: re-scored


def test_margin_decides_promotion(tmp_path):
    config = make_project(tmp_path / "p", extra="[optimize]\nmargin = 40\n")
    with open_project(config) as kit:
        fill(kit, tmp_path)
        with OpenAIServer(bad_answer) as server:
            first = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        with OpenAIServer(good_answer) as server:  # gains 33.3 points on the same dev set: below the margin
            second = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server), snapshot=first.snapshot)
        assert second.score - second.champion_score == pytest.approx(100 / 3, abs=0.01)
        assert not second.promoted and kit.champion(TASK).id == first.id


def test_too_little_data_gives_the_configured_fallback_and_says_so(tmp_path, caplog):
    config = make_project(tmp_path / "p")
    with open_project(config) as kit:
        fill(kit, tmp_path, {("math", "fractions", "easy"): 3, ("math", "fractions", "hard"): 2})
        with OpenAIServer(good_answer) as server, caplog.at_level(logging.WARNING):
            run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        assert run.status == "succeeded" and run.optimizer == "bootstrap" and run.used == "unoptimized"
        assert run.fallback_reason == (f"5 usable examples in snapshot {run.snapshot!r}, bootstrap needs 10; "
                                       "1 dev examples, at least 2 needed")
        assert "fallback" in run.message and "not promoted" in run.message
        assert "using the fallback 'unoptimized' instead of bootstrap" in caplog.text
        assert not run.promoted and kit.champion(TASK) is None and run.demos == []
        assert run.score == run.baseline_score == 100.0
    labeled = make_project(tmp_path / "q", extra="[optimize]\nfallback = \"labeled\"\n")
    with open_project(labeled) as kit:
        fill(kit, tmp_path, {("math", "fractions", "easy"): 3, ("math", "fractions", "hard"): 2})
        with OpenAIServer(good_answer) as server:
            run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        assert run.used == "labeled" and run.fallback_reason
        # labeled demos are the training examples themselves, mapped back exactly
        assert sorted(d["example_id"] for d in run.demos) == sorted(run.train_ids)
        assert not any(d["augmented"] for d in run.demos) and run.promoted


def test_mipro_without_optuna_fails_before_any_lm_call(project, tmp_path):
    kit = project
    fill(kit, tmp_path)
    with OpenAIServer(good_answer) as server:
        with pytest.raises(tk.ConfigError, match=r"'mipro' \(MIPROv2\) needs the optional package\(s\) optuna.*"
                                                 r"pip install optuna.*Nothing was run"):
            kit.optimize(TASK, program=PROGRAM, metric=METRIC, optimizer="mipro", lm=make_lm(server))
        assert server.counts["requests"] == 0
    assert kit.runs() == [] and kit.store.list_snapshots() == []


def test_gepa_without_a_reflection_lm_fails_before_any_lm_call(project, tmp_path):
    kit = project
    fill(kit, tmp_path)
    with OpenAIServer(good_answer) as server:
        with pytest.raises(tk.ConfigError, match=r"needs a reflection LM: set model in \[lm.reflection\]"):
            kit.optimize(TASK, program=PROGRAM, metric=METRIC, optimizer="gepa", lm=make_lm(server))
        assert server.counts["requests"] == 0


def test_bad_program_metric_and_a_failing_lm_are_clear_errors(project, tmp_path):
    kit = project
    fill(kit, tmp_path)
    with pytest.raises(tk.ConfigError, match=r"program 'pipeline:Nope': cannot import it"):
        kit.optimize(TASK, program="pipeline:Nope", metric=METRIC, lm=dspy.utils.DummyLM([]))
    with pytest.raises(tk.ConfigError, match=r"no metric; give --metric"):
        kit.optimize(TASK, program=PROGRAM, lm=dspy.utils.DummyLM([]))
    with pytest.raises(tk.ConfigError, match="unknown optimizer 'fast'; known optimizers: labeled, bootstrap"):
        kit.optimize(TASK, program=PROGRAM, metric=METRIC, optimizer="fast")
    assert kit.runs() == []
    with OpenAIServer(lambda _body: server_error()) as server:
        with pytest.raises(OptimizationError, match="no prediction for any of the 2 dev examples"):
            kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
    (failed,) = kit.runs(TASK)
    assert failed.status == "failed" and "no prediction" in failed.error and kit.champion(TASK) is None


def test_a_failing_lm_on_a_large_dev_set_and_a_broken_metric_are_clear_errors(project, tmp_path):
    kit = project
    fill(kit, tmp_path)
    with OpenAIServer(lambda _body: server_error()) as server:  # more dev examples than DSPy's 10-error limit
        with pytest.raises(OptimizationError, match=r"no prediction for any of the 1\d dev examples \(baseline\)"):
            kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server), dev_fraction=0.5)

    def raising(example, prediction, trace=None):
        raise KeyError("score")

    def nothing(example, prediction, trace=None):
        return None

    def not_a_number(example, prediction, trace=None):
        return float("nan")

    with OpenAIServer(good_answer) as server:
        with pytest.raises(OptimizationError, match=r"^the metric .*raising raised KeyError: 'score' \(on dev "
                                                    r"example \w+\) \(baseline evaluation\); fix the metric"):
            kit.optimize(TASK, program=PROGRAM, metric=raising, lm=make_lm(server))
        with pytest.raises(OptimizationError, match=r"^the metric .*nothing returned None on dev example \w+; "
                                                    r"it must return a number or a bool"):
            kit.optimize(TASK, program=PROGRAM, metric=nothing, lm=make_lm(server))
        with pytest.raises(OptimizationError, match=r"^the metric .*not_a_number returned nan on dev example \w+; "
                                                    r"it must return a finite number or a bool"):
            kit.optimize(TASK, program=PROGRAM, metric=not_a_number, lm=make_lm(server))
    assert [r.status for r in kit.runs(TASK)] == ["failed"] * 4
    assert "the metric" in kit.runs(TASK)[1].error and kit.champion(TASK) is None


def test_dummy_lm_end_to_end_and_random_search_candidates(tmp_path, monkeypatch):
    from dspy_trainkit.optimization import runs
    from dspy_trainkit.optimization.runs import demo_records

    config = make_project(tmp_path / "p", extra="[optimize]\nmin_examples = { random-search = 20 }\n"
                                                "num_candidates = 2\n")
    with open_project(config) as kit:
        fill(kit, tmp_path)
        answers = {"fractions": {"problem": "Add 1/4 and 2/4 of a pizza: how much pizza is that together?",
                                 "solution": "Same denominator, add numerators. The sum is 3/4", "answer": "3/4"}}
        lm = dspy.utils.DummyLM([answers["fractions"]] * 2000)
        mapped = []

        def spy(program, *args):
            records = demo_records(program, *args)
            mapped.append((program, records))
            return records

        monkeypatch.setattr(runs, "demo_records", spy)
        run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, optimizer="random-search", lm=lm)
        assert run.status == "succeeded" and run.score == 100.0
        assert len(run.val_ids) == 4 and set(run.val_ids).isdisjoint(run.train_ids + run.dev_ids)
        stored = kit.run(run.id)
        seeds = [c.seed for c in stored.candidates]
        assert sorted(seeds) == [-3, -2, -1, 0, 1]  # zero-shot, labeled, unshuffled, 2 random candidates
        for candidate in stored.candidates:
            assert len(candidate.subscores) == len(run.val_ids)
            assert all(d in run.train_ids for d in candidate.demo_ids)
        zero_shot = next(c for c in stored.candidates if c.seed == -3)
        assert zero_shot.demo_ids == []
        # demos of equal content (DummyLM answers alike; a cell's inputs are alike) still name distinct examples
        for candidate in stored.candidates:
            named = [d for d in candidate.demo_ids if d is not None]
            assert len(named) == len(set(named)), candidate
        # each candidate program's demo is credited to an example with the demo's inputs
        checked = 0
        for program, records in mapped:
            demos = [demo for _name, predictor in program.named_predictors() for demo in predictor.demos]
            for demo, record in zip(demos, records, strict=True):
                if record["example_id"] is not None:
                    assert kit.get(record["example_id"]).inputs == {k: demo[k] for k in ("domain", "topic",
                                                                                          "difficulty")}
                    checked += 1
        assert checked > 4


def test_demos_of_equal_content_name_distinct_examples_from_their_own_candidate():
    from dspy_trainkit.optimization.runs import DemoTracer, demo_records

    train = [dspy.Example(question="same", answer=f"a{i}").with_inputs("question") for i in range(3)]
    ids = ["e0", "e1", "e2"]
    tracer = DemoTracer(lambda example, prediction, trace=None: 1.0, train, ids)
    step = lambda: [(None, {"question": "same"}, dspy.Prediction(answer="x"))]  # noqa: E731 - what the LM said
    tracer(train[0], None, step())  # candidate seed -1 bootstraps e0 and e1 ...
    tracer(train[1], None, step())
    tracer(train[2], None)  # ... and is evaluated (no trace)
    tracer(train[0], None, step())  # candidate seed 0 bootstraps e0 and e2
    tracer(train[2], None, step())
    by_seed = tracer.candidate_sources([{"seed": -3}, {"seed": -2}, {"seed": 0}, {"seed": -1}])
    program = dspy.Predict("question -> answer")
    program.demos = [dspy.Example(augmented=True, question="same", answer="x") for _ in range(2)]
    assert [d["example_id"] for d in demo_records(program, train, ids, by_seed[-1])] == ["e0", "e1"]
    assert [d["example_id"] for d in demo_records(program, train, ids, by_seed[0])] == ["e0", "e2"]
    # all traces together (e0, e1, e0, e2): still never the same example twice in one program
    assert [d["example_id"] for d in demo_records(program, train, ids, tracer.sources)] == ["e0", "e1"]
    program.demos.append(dspy.Example(augmented=True, question="same", answer="x"))
    assert [d["example_id"] for d in demo_records(program, train, ids, by_seed[-1])] == ["e0", "e1", None]


def test_runs_json_shows_snapshot_ids_and_the_champion(project, tmp_path, monkeypatch):
    kit = project
    fill(kit, tmp_path)
    with OpenAIServer(good_answer) as server:
        first = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
    with OpenAIServer(bad_answer) as server:
        second = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server), snapshot=first.snapshot)
    monkeypatch.chdir(Path(kit.settings.project_dir))
    result = CliRunner().invoke(cli, ["runs", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(r["id"], r["snapshot"], r["champion"]) for r in data] == [(first.id, first.snapshot, True),
                                                                     (second.id, first.snapshot, False)]
    assert data[0]["snapshot_digest"] == kit.store.snapshot_info(first.snapshot)["digest"]
    text = CliRunner().invoke(cli, ["runs"]).output
    assert f"*  {first.id[-8:]}" in text and second.id[-8:] in text
    detail = CliRunner().invoke(cli, ["runs", "--run", second.id[-8:], "--json"])
    assert json.loads(detail.stdout)["results"][0]["example_id"] in first.dev_ids


def test_optimize_command_with_lm_settings(tmp_path, monkeypatch):
    with OpenAIServer(good_answer) as server:
        config = make_project(tmp_path / "p", extra=(
            f"[lm.program]\nmodel = \"openai/test-model\"\napi_base = \"{server.url}\"\ncache = false\n"
            "api_key_env = \"LOOPBACK_KEY\"\n"
            f"retries = 0\n\n[optimize]\nprogram = \"{PROGRAM}\"\nmetric = \"{METRIC}\"\n"
            "min_examples = { random-search = 20 }\nnum_candidates = 1\n"))
        with open_project(config) as kit:
            fill(kit, tmp_path)
        monkeypatch.chdir(tmp_path / "p")
        monkeypatch.setenv("LOOPBACK_KEY", "loopback-test-key")
        monkeypatch.setenv("TRAINKIT_DISABLE_PLUGINS", "lengths,consistency,pii,neardup,coherence,relevance,"
                                                       "accuracy,llm_judge")
        result = CliRunner().invoke(cli, ["optimize", "--task", TASK, "--json"])
        assert result.exit_code == 0, result.output
        run = json.loads(result.stdout)
        assert run["status"] == "succeeded" and run["promoted"] and run["lm"] == "openai/test-model"
        assert server.counts["requests"] > 0
        text = CliRunner().invoke(cli, ["optimize", "--task", TASK, "--snapshot", run["snapshot"]])
        assert text.exit_code == 0, text.output
        assert f"champion {run['id'][-8:]} kept" in text.output
        search = CliRunner().invoke(cli, ["optimize", "--task", TASK, "--optimizer", "random-search", "--json",
                                          "--no-promote"])
        assert search.exit_code == 0, search.output
        assert json.loads(search.stdout)["candidates"]  # DSPy's own prints stayed off stdout
        missing = CliRunner().invoke(cli, ["optimize", "--task", TASK, "--optimizer", "mipro"])
        assert missing.exit_code == 1 and missing.output.startswith("Error: optimizer 'mipro'")
        assert "Traceback" not in missing.output


def test_same_snapshot_with_the_lm_cache_gives_the_same_scores(tmp_path):
    config = make_project(tmp_path / "p")
    with open_project(config) as kit, dspy_cache(tmp_path / "dspy-cache"):
        fill(kit, tmp_path)
        with OpenAIServer(good_answer) as server:
            first = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server, cache=True),
                                 promote=False)
            calls = server.counts["requests"]
            again = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server, cache=True),
                                 snapshot=first.snapshot, promote=False)
            assert server.counts["requests"] == calls  # every answer came from the cache
    assert (again.baseline_score, again.score) == (first.baseline_score, first.score)
    assert [(r.example_id, r.phase, r.score, r.prediction) for r in again.results] == \
           [(r.example_id, r.phase, r.score, r.prediction) for r in first.results]
    assert again.demos == first.demos and again.train_ids == first.train_ids
    assert not first.promoted and not again.promoted and kit.champion(TASK) is None


def test_run_records_round_trip_in_the_store(store_url):
    from dspy_trainkit.optimization.records import Candidate, ExampleResult, Run

    with tk.open(store_url) as kit:
        assert "0004_optimization_runs" in kit.store.applied_migrations()
        run = Run(task="qa", optimizer="random-search", snapshot="s", dev_ids=["a", "b"], score=50.0,
                  demos=[{"predictor": "p", "example_id": "x", "augmented": True}],
                  results=[ExampleResult("a", "baseline", 1.0, {"answer": "4"}),
                           ExampleResult("b", "baseline", 0.0, {}, "no prediction")],
                  candidates=[Candidate(seed=-3, score=10.0, demo_ids=[], subscores=[0.0, 1.0])])
        kit.store.save_run(run.record(), [r.to_dict() for r in run.results], [c.to_dict() for c in run.candidates])
        back = kit.run(run.id)
        assert back.to_dict() == run.to_dict() and back.demo_ids == ["x"]
        done = Run.from_record({**run.record(), "status": "succeeded"})
        kit.store.save_run(done.record(), [], None)  # results replaced, candidates kept
        back = kit.run(run.id)
        assert back.status == "succeeded" and back.results == [] and len(back.candidates) == 1
        assert kit.champion("qa") is None
        assert kit.store.set_champion("qa", run.id, 1.0)
        assert kit.champion("qa").id == run.id and [r.id for r in kit.runs("qa")] == [run.id]
        assert not kit.store.set_champion("qa", "other", 2.0)  # the champion is no longer "none"
        assert not kit.store.set_champion("qa", "other", 2.0, replacing="someone-else")
        assert kit.store.set_champion("qa", "other", 2.0, replacing=run.id)
        assert kit.store.champion_id("qa") == "other"
        assert kit.runs("other") == []
        with pytest.raises(tk.NotFoundError):
            kit.run("nope")


def test_bootstrap_generation_makes_the_task_ready_and_optimizable(tmp_path, monkeypatch):
    """The issue's whole path with trainkit's own generation: not ready -> `kit.bootstrap` (the task's program
    over the loopback server) -> ready -> optimize -> champion program answers."""
    import itertools
    import threading

    from dspy_trainkit.testing import dspy_reply, input_fields

    counter, lock = itertools.count(1), threading.Lock()

    def unique(body):
        with lock:
            n = next(counter)
        topic = input_fields(body).get("topic", "numbers")
        return dspy_reply({"problem": f"Exercise {n} about {topic}: {n} crates hold 12 bottles each. How many "
                                      "bottles are there?",
                           "solution": f"Multiply {n} by 12. The crates hold {12 * n}", "answer": str(12 * n)})

    monkeypatch.setenv("LOOPBACK_KEY", "loopback-test-key")
    with OpenAIServer(unique) as server:
        config = make_project(tmp_path / "p", extra=(
            f"[lm.generation]\nmodel = \"openai/test-model\"\napi_base = \"{server.url}\"\ncache = false\n"
            "api_key_env = \"LOOPBACK_KEY\"\n"))
        with open_project(config) as kit:
            before = kit.readiness(TASK)[0]
            assert not before.ready and before.accepted == 0
            report = kit.bootstrap(TASK, per_cell=3, check=False)
            assert report.made == 39
            after = kit.readiness(TASK)[0]
            assert after.ready and after.accepted == 39 and after.dev == 13
            run = kit.optimize(TASK, program=PROGRAM, metric=METRIC)  # the LM: [lm.generation]
            assert run.status == "succeeded" and run.promoted and run.score == 100.0
            assert run.lm == "openai/test-model" and len(run.dev_ids) == 13
            assert all(kit.get(i).source == "bootstrap" for i in run.demo_ids)
            program = kit.program(TASK)
            with dspy.context(lm=make_lm(server)):
                assert program(domain="physics", topic="energy", difficulty="easy").answer.isdigit()


def test_a_rerun_without_new_data_reads_the_same_snapshot(tmp_path):
    config = make_project(tmp_path / "p")
    with open_project(config) as kit:
        fill(kit, tmp_path)
        lm = dspy.utils.DummyLM([{"problem": "Two boxes hold 3 apples each. How many apples in all?",
                                  "solution": "Add 3 and 3. There are 6", "answer": "6"}] * 500)
        first = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=lm)
        again = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=lm)
        assert again.snapshot == first.snapshot and len(kit.store.list_snapshots()) == 1
        fill(kit, tmp_path, {("physics", "energy", "medium"): 1}, start=500, name="one.jsonl")
        third = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=lm)
        assert third.snapshot != first.snapshot and len(third.train_ids) + len(third.dev_ids) == 25


def test_program_falls_back_to_unoptimized_without_a_usable_champion(tmp_path, caplog):
    config = make_project(tmp_path / "p", extra=f"[tasks.problems.optimize]\nprogram = \"{PROGRAM}\"\n")
    with open_project(config) as kit:
        unoptimized = kit.program(TASK)  # no champion yet: the task's program, no demos
        assert type(unoptimized).__name__ == "ProblemGenerator" and unoptimized.generate.demos == []
        fill(kit, tmp_path)
        with OpenAIServer(good_answer) as server:
            run = kit.optimize(TASK, metric=METRIC, lm=make_lm(server))
        assert run.program == PROGRAM and kit.program(TASK).generate.demos
        Path(run.program_path).unlink()
        with caplog.at_level(logging.WARNING):
            program = kit.program(TASK)
        assert program.generate.demos == [] and "using the unoptimized program" in caplog.text
        assert "saved program" in caplog.text and "missing" in caplog.text


def test_gepa_runs_with_a_reflection_lm_and_a_plain_metric(tmp_path):
    config = make_project(tmp_path / "p", extra="[optimize]\nmin_examples = { gepa = 20 }\n")
    with open_project(config) as kit:
        fill(kit, tmp_path)
        answer = {"problem": "Two boxes hold 3 apples each. How many apples in all?",
                  "solution": "Add 3 and 3. There are 6", "answer": "6"}
        reflection = dspy.utils.DummyLM([{"improved_instruction": "Write one clear practice problem."}] * 500)
        run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, optimizer="gepa",
                           lm=dspy.utils.DummyLM([answer] * 5000), reflection_lm=reflection)
        assert run.status == "succeeded" and run.used == "gepa" and run.score == 100.0
        assert len(run.val_ids) == 4 and Path(run.program_path).is_file()


def _compile_then(monkeypatch, action):
    """Make the bootstrap optimizer run `action(kit)` at compile time (the middle of a run)."""
    import attrs

    from dspy_trainkit.optimization import optimizers

    spec = optimizers.OPTIMIZERS["bootstrap"]

    def compile_(build, student):
        action()
        return spec.compile(build, student)

    monkeypatch.setitem(optimizers.OPTIMIZERS, "bootstrap", attrs.evolve(spec, compile=compile_))


def test_a_champion_set_meanwhile_is_not_overwritten(tmp_path, monkeypatch):
    config = make_project(tmp_path / "p")
    with open_project(config) as kit:
        fill(kit, tmp_path)
        from dspy_trainkit.optimization import runs

        compare = runs._compare

        def compare_then_another_wins(*args, **kwargs):  # another run wins between comparing and promoting
            decided = compare(*args, **kwargs)
            assert kit.store.set_champion(TASK, "other-run", 1.0)
            return decided

        monkeypatch.setattr(runs, "_compare", compare_then_another_wins)
        with OpenAIServer(good_answer) as server:
            run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        assert run.status == "succeeded" and not run.promoted
        assert "another run became champion meanwhile" in run.message
        assert kit.store.champion_id(TASK) == "other-run" and not kit.run(run.id).promoted


def test_an_interrupted_run_is_recorded_and_a_rerun_reuses_its_snapshot(tmp_path, monkeypatch):
    config = make_project(tmp_path / "p")
    with open_project(config) as kit:
        fill(kit, tmp_path)

        def interrupt():
            raise KeyboardInterrupt

        with monkeypatch.context() as patch:
            _compile_then(patch, interrupt)
            with OpenAIServer(good_answer) as server, pytest.raises(KeyboardInterrupt):
                kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        (stopped,) = kit.runs(TASK)
        assert stopped.status == "interrupted" and stopped.finished_at and kit.champion(TASK) is None
        with OpenAIServer(good_answer) as server:
            run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        assert run.status == "succeeded" and run.promoted and run.snapshot == stopped.snapshot
        assert len(kit.store.list_snapshots()) == 1 and [r.status for r in kit.runs(TASK)] == ["interrupted",
                                                                                                "succeeded"]


def test_ctrl_c_after_the_result_is_stored_keeps_the_succeeded_run(tmp_path, monkeypatch):
    """An interrupt while the champion is being set (after the run was stored as succeeded) stops the command,
    but does not overwrite the stored result with an empty "interrupted" record."""
    config = make_project(tmp_path / "p")
    with open_project(config) as kit:
        fill(kit, tmp_path)

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(kit.store, "set_champion", interrupted)
        with OpenAIServer(good_answer) as server, pytest.raises(KeyboardInterrupt):
            kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        (listed,) = kit.runs(TASK)
        run = kit.run(listed.id)
        assert run.status == "succeeded" and run.score is not None and run.results


def test_ctrl_c_during_the_optimize_command_exits_130_and_says_the_run_is_recorded(tmp_path, monkeypatch):
    from dspy_trainkit.optimization import runs

    config = make_project(tmp_path / "p")
    with open_project(config) as kit:
        fill(kit, tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "_execute", interrupted)
    monkeypatch.chdir(tmp_path / "p")
    with dspy.context(lm=dspy.utils.DummyLM([])):
        result = CliRunner().invoke(cli, ["optimize", "--task", TASK, "--program", PROGRAM, "--metric", METRIC])
    assert result.exit_code == 130, result.output
    assert "interrupted while optimizing task problems; the run is recorded as interrupted" in result.output
    assert "Traceback" not in result.output and "Aborted" not in result.output
    with open_project(config) as kit:
        assert [r.status for r in kit.runs(TASK)] == ["interrupted"]


def test_issue_path_with_template_data_dummy_lm_and_the_cli_over_the_loopback_server(tmp_path, monkeypatch):
    """not ready -> `template` synthesis (no LM) -> ready -> optimize -> saved program loads and answers; once
    from Python with DummyLM, once through the commands with the loopback server as [lm.program]."""
    config = make_project(tmp_path / "api")
    with open_project(config) as kit:
        assert kit.readiness(TASK)[0].verdict == "not ready"
        assert kit.synthesize(TASK, "template", 39, seed=1).accepted == 39
        assert kit.readiness(TASK)[0].verdict == "ready"
        answer = {"problem": "What is 1/3 + 1/3? Give the answer in lowest terms.",
                  "solution": "Add the numerators: 1 + 1 = 2, giving 2/3", "answer": "2/3"}
        run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=dspy.utils.DummyLM([answer] * 500))
        assert run.promoted and run.score == 100.0 and all(kit.get(i).source == "synthetic" for i in run.demo_ids)
        with dspy.context(lm=dspy.utils.DummyLM([answer])):
            assert kit.program(TASK)(domain="math", topic="fractions", difficulty="easy").answer == "2/3"

    monkeypatch.setenv("LOOPBACK_KEY", "loopback-test-key")
    with OpenAIServer(good_answer) as server:
        make_project(tmp_path / "cli", extra=(
            f"[lm.program]\nmodel = \"openai/test-model\"\napi_base = \"{server.url}\"\ncache = false\n"
            "api_key_env = \"LOOPBACK_KEY\"\n"))
        monkeypatch.chdir(tmp_path / "cli")
        runner = CliRunner()
        assert runner.invoke(cli, ["init"]).exit_code == 0
        assert runner.invoke(cli, ["ready", "--task", TASK]).exit_code == 3
        made = runner.invoke(cli, ["synthesize", "--task", TASK, "--strategy", "template", "--count", "39",
                                   "--seed", "1"])
        assert made.exit_code == 0, made.output
        assert runner.invoke(cli, ["ready", "--task", TASK]).exit_code == 0
        result = runner.invoke(cli, ["optimize", "--task", TASK, "--program", PROGRAM, "--metric", METRIC,
                                     "--json"])
        assert result.exit_code == 0, result.output
        run = json.loads(result.stdout)
        assert run["promoted"] and run["score"] == 100.0 and server.counts["requests"] > 0
        history = json.loads(runner.invoke(cli, ["runs", "--json"]).stdout)
        assert [(r["id"], r["snapshot"], r["champion"]) for r in history] == [(run["id"], run["snapshot"], True)]
        import pipeline

        loaded = pipeline.ProblemGenerator()
        loaded.load(run["program_path"])
        with dspy.context(lm=make_lm(server)):
            assert loaded(domain="physics", topic="energy", difficulty="easy").answer == "42"


def test_narrow_quality_read_matches_the_default(store_url):
    from dspy_trainkit.store import ExampleQuery, Store

    with tk.open(store_url) as kit:
        for i in range(5):
            kit.add(task="qa", inputs={"question": f"q{i}?"}, outputs={"answer": str(i)}, domain=f"d{i % 2}")
        query = ExampleQuery(task="qa")
        narrow = sorted(kit.store.iter_qualities(query), key=repr)
        assert len(narrow) == 5 and narrow == sorted(Store.iter_qualities(kit.store, query), key=repr)
        assert {d for d, _ in narrow} == {"d0", "d1"}


def test_a_run_whose_process_was_killed_is_recorded_as_interrupted(store_url):
    import subprocess
    import sys

    from dspy_trainkit.optimization.records import Run
    from dspy_trainkit.workers import new_owner

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = new_owner().split(":")[0]
    with tk.open(store_url) as kit:
        killed = Run(task="qa", optimizer="bootstrap", owner=f"{host}:{child.pid}:gone")
        alive = Run(task="qa", optimizer="bootstrap", owner=new_owner())  # this process: still running
        kit.store.save_run(killed.record())
        kit.store.save_run(alive.record())
        statuses = {run.id: run.status for run in kit.runs("qa")}
        assert statuses == {killed.id: "interrupted", alive.id: "running"}
        assert "ended without finishing" in kit.run(killed.id).message
        assert kit.store.get_run(killed.id)["status"] == "interrupted"  # recorded, not only shown


def test_runs_shows_the_champions_latest_score_after_it_was_scored_again(project, tmp_path, monkeypatch):
    kit = project
    fill(kit, tmp_path)
    with OpenAIServer(bad_answer) as server:
        first = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
    fill(kit, tmp_path, {("physics", "energy", "medium"): 3, ("math", "fractions", "easy"): 3}, start=100,
         name="more.jsonl")
    with OpenAIServer(good_answer) as server:  # a new dev set: the champion is scored again, and keeps 100.0
        second = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
    assert second.champion_score == 100.0 and not second.promoted
    current = kit.champion(TASK)
    assert current.id == first.id and current.score == first.score  # its own measurement stays
    assert current.latest_score == 100.0 and current.rescored["run"] == second.id
    monkeypatch.chdir(Path(kit.settings.project_dir))
    text = CliRunner().invoke(cli, ["runs"]).output
    row = next(line for line in text.splitlines() if first.id[-8:] in line)
    assert row.startswith("*") and f"100.0 (re-scored by {second.id[-8:]}; was 66.7)" in row
    listed = json.loads(CliRunner().invoke(cli, ["runs", "--json"]).stdout)
    assert [r["latest_score"] for r in listed if r["champion"]] == [100.0]
    detail = CliRunner().invoke(cli, ["runs", "--run", first.id[-8:]]).output
    assert f"re-scored: 100.0 by run {second.id[-8:]}" in detail
    with OpenAIServer(good_answer) as server:  # the same new dev set, metric and LM: that score counts
        third = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server), snapshot=second.snapshot)
    assert not third.results_for("champion") and third.champion_score == 100.0 and not third.promoted


#: dev_fraction 0.5 over DATA: 1 dev example in each of the 9 math cells, 2 in each physics cell: 13 dev.
CAPPED = "[optimize]\ndev_fraction = 0.5\nmax_dev = 4\n"


def test_max_dev_caps_the_dev_set_by_cell_and_the_lm_calls_are_said_first(tmp_path):
    config = make_project(tmp_path / "p", extra=CAPPED)
    with open_project(config) as kit, OpenAIServer(good_answer) as server:
        fill(kit, tmp_path)
        plan = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server), dry_run=True)
        assert server.counts["requests"] == 0 and not kit.runs() and not kit.store.list_snapshots()
        assert (len(plan.dev), plan.dev_available, len(plan.train)) == (4, 13, 11)
        estimate = plan.estimate  # baseline 4, bootstrap 4 (every trace passes) to 11, evaluate 4, no champion
        assert (estimate.baseline, estimate.compile, estimate.evaluate, estimate.champion) == (4, (4, 11), 4, 0)
        assert estimate.describe().startswith("about 12 to 19 LM calls")
        said = []
        run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server), progress=said.append)
        assert server.counts["requests"] == 12 and estimate.describe() in said
        assert said.index(estimate.describe()) < said.index("baseline")
    assert len(run.dev_ids) == 4 and run.settings["dev_available"] == 13 and run.settings["max_dev"] == 4
    assert len(run.results_for("baseline")) == 4 and len(run.train_ids) == 11  # left-out dev is not trained on
    dev = [kit.get(i) for i in run.dev_ids]
    assert len({ex.domain for ex in dev}) == 2  # math (9 of 13) and physics (4 of 13) both keep a share
    assert run.dev_ids == plan.dev_ids  # the dry run's split is the run's


def test_cap_stratified_keeps_each_cells_share_deterministically():
    from dspy_trainkit.models import Example
    from dspy_trainkit.optimization.plan import cap_stratified

    examples = [Example(task="t", inputs={"q": f"{cell}{n}"}, outputs={"a": "x"}, domain=cell)
                for cell, count in (("a", 60), ("b", 30), ("c", 10)) for n in range(count)]
    capped = cap_stratified(examples, 10, seed=0)
    assert [ex.domain for ex in capped].count("a") == 6 and len(capped) == 10
    assert [ex.domain for ex in capped].count("c") == 1
    assert capped == cap_stratified(list(reversed(examples)), 10, seed=0)[::-1]  # order-independent choice
    assert capped != cap_stratified(examples, 10, seed=1)
    assert cap_stratified(examples, 0, seed=0) == examples and cap_stratified(examples, 500, seed=0) == examples


def test_optimize_dry_run_command_says_the_lm_calls_and_records_nothing(tmp_path, monkeypatch):
    config = make_project(tmp_path / "p", extra=CAPPED + f'program = "{PROGRAM}"\nmetric = "{METRIC}"\n\n'
                          '[lm.program]\nmodel = "openai/test-model"\napi_base = "http://127.0.0.1:9"\n')
    with open_project(config) as kit:
        fill(kit, tmp_path)
    monkeypatch.chdir(tmp_path / "p")
    monkeypatch.setenv("TRAINKIT_DISABLE_PLUGINS", ",".join(QUALITY_PLUGINS))
    result = CliRunner().invoke(cli, ["optimize", "--task", TASK, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "optimize problems with bootstrap",
        "  snapshot a new snapshot of the accepted examples: 11 train, 0 validation, 4 dev (of 13; max_dev 4); "
        "LM openai/test-model",
        "  about 12 to 19 LM calls (baseline 4, compile 4 to 11, evaluate 4, champion 0)",
        "  dry run: no LM was called, no snapshot taken, nothing recorded"]
    wide = json.loads(CliRunner().invoke(cli, ["optimize", "--task", TASK, "--dry-run", "--max-dev", "0",
                                               "--json"]).stdout)
    assert (wide["dev"], wide["dev_available"], wide["lm_calls"]["least"]) == (13, 13, 30)
    too_few = CliRunner().invoke(cli, ["optimize", "--task", TASK, "--dry-run", "--max-dev", "1"])
    assert too_few.exit_code == 1 and too_few.output.startswith("Error: max_dev 1 (--max-dev, or max_dev in")
    assert "below min_dev 2" in too_few.output and "Traceback" not in too_few.output
    with open_project(config) as kit:
        assert not kit.runs() and not kit.store.list_snapshots()
