"""Budgeted valuation runs (dspy_trainkit.effectiveness.sampling) against the simulated few-shot learner: a
valuation alone ranks planted mislabels at the bottom, resumes after its worker is killed without repeating a
finished candidate's calls, is shared by two workers on PostgreSQL without overlap, and never looks like an
optimization run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS
from optimize_support import dspy_cache
from test_effectiveness import PROGRAM, TOML, auc, records, truth, with_fixed_ids

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.effectiveness.sampling import candidates_id, design, slot_demos
from dspy_trainkit.testing import FewShotLearner, OpenAIServer, make_lm
from dspy_trainkit.testing.openai_server import demonstrations

SPEC = {"program": "sums_program:program", "metric": "sums_program:exact"}


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "trainkit.toml").write_text(TOML, encoding="utf-8")
    (tmp_path / "sums_program.py").write_text(PROGRAM, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _learner() -> FewShotLearner:
    return FewShotLearner(truth, base=0.55, gain=0.04, harm=0.3)


def _demo_key(body) -> tuple:
    """What identifies a candidate in a request: the demos it shows (each candidate's set differs)."""
    return tuple(sorted(inputs["question"] for inputs, _outputs in demonstrations(body)))


def test_design_shows_every_pool_example_evenly_and_never_a_validation_example():
    ids = [f"e{n:03d}" for n in range(60)]
    config = design(ids, demos=6, val_size=10, seed=0)
    assert len(config["val_ids"]) == 10 and not set(config["val_ids"]) & set(config["pool"])
    shown = [i for n in range(50) for i in slot_demos(config, n)]
    counts = {i: shown.count(i) for i in config["pool"]}
    # 50 candidates x 6 demos over a pool of 50: six times each, give or take the one a candidate straddling
    # two permutations drops as a repeat (independent draws would range from about 1 to 11)
    assert set(counts.values()) <= {5, 6} and sum(counts.values()) >= 290
    assert slot_demos(config, 7) == slot_demos(design(ids, demos=6, val_size=10, seed=0), 7)  # deterministic
    with pytest.raises(tk.ConfigError, match="lower --val-size or --demos"):
        design(ids[:8], demos=6, val_size=3, seed=0)


def test_a_valuation_alone_ranks_planted_mislabels_at_the_bottom(project):
    planted = set(range(0, 60, 6))
    with dspy_cache(None), OpenAIServer(_learner()) as server, \
            tk.open(config=project / "trainkit.toml", disable=QUALITY_PLUGINS) as kit:
        kit.add_many(with_fixed_ids(records(60, planted)))
        dry = kit.valuation_run("sums", budget=50, demos=6, val_size=10, dry_run=True)
        assert (dry.lm_calls, dry.remaining, dry.pool, dry.validation) == (500, 50, 50, 10)
        assert dry.expected_inclusions == 6.0
        assert server.counts["requests"] == 0 and kit.store.plan_info(dry.plan) is None  # a dry run writes nothing
        ran = kit.valuation_run("sums", budget=50, demos=6, val_size=10, lm=make_lm(server), **SPEC)
        assert (ran.evaluated, ran.failed, ran.remaining, ran.lm_calls) == (50, 0, 0, 500)
        assert server.counts["requests"] == 500
        again = kit.valuation_run("sums", budget=50, demos=6, val_size=10, lm=make_lm(server), **SPEC)
        assert (again.done_before, again.evaluated, server.counts["requests"]) == (50, 0, 500)  # nothing repeated
        report = kit.value("sums")
        assert (report.runs, report.valuations, report.candidates) == (0, 1, 50)
        by_n = {kit.get(v.example_id).metadata["n"]: v for v in report.values}
        val_n = {kit.get(i).metadata["n"] for i in kit.store.plan_info(ran.plan)["config"]["val_ids"]}
        assert not set(by_n) & val_n and len(by_n) == 50  # every pool example valued, no validation one
        bad = [v.value for n, v in by_n.items() if n in planted]
        good = [v.value for n, v in by_n.items() if n not in planted]
        # measured over design seeds 0-4 on this setup: AUC 0.96, 0.95, 0.99, 0.96, 0.98 (7-10 planted in the pool:
        # which examples fall in the pool depends on their random ids); 0.85 is the bar of the random-search test:
        # clearly separated, with room for the design's draw
        assert len(bad) >= 6 and auc(bad, good) >= 0.85, (auc(bad, good), sorted(bad))
        # not an optimization run: no run, no champion, no weak spots, and recommend does not ask to re-run
        assert kit.runs("sums") == [] and kit.store.champion_id("sums") is None
        assert kit.weak_spots("sums").run is None
        assert "run-failed" not in {a.rule for a in kit.check_alerts(tasks=["sums"]).raised}


def test_cli_budget_dry_run_and_run(project):
    with dspy_cache(None), OpenAIServer(_learner()) as server:
        with tk.open(config=project / "trainkit.toml", disable=QUALITY_PLUGINS) as kit:
            kit.add_many(records(30, set()))
        (project / "trainkit.toml").write_text(
            TOML + f'\n[lm.program]\nmodel = "openai/{server.model}"\napi_base = "{server.url}"\n'
            'api_key_env = "TK_TEST_KEY"\nretries = 0\n', encoding="utf-8")
        os.environ["TK_TEST_KEY"] = "loopback"
        try:
            runner = CliRunner()
            dry = runner.invoke(cli, ["value", "--task", "sums", "--budget", "8", "--val-size", "5", "--dry-run",
                                      "--program", SPEC["program"], "--metric", SPEC["metric"]])
            assert dry.exit_code == 0, dry.output
            assert dry.stdout.startswith("--budget would evaluate 8 program(s) (0 done before) on 5 validation "
                                         "example(s): 40 program call(s); 25 example(s) as demos, 4 per program")
            data = json.loads(runner.invoke(cli, ["value", "--task", "sums", "--budget", "8", "--val-size", "5",
                                                  "--dry-run", "--json"]).stdout)
            assert data["lm_calls"] == 40 and data["valuation"]["remaining"] == 8
            done = runner.invoke(cli, ["value", "--task", "sums", "--budget", "8", "--val-size", "5", "--program",
                                       SPEC["program"], "--metric", SPEC["metric"]])
            assert done.exit_code == 0, done.output
            assert "8 program(s) evaluated now, 0 before, 0 failed, 0 left; 40 LM call(s)" in done.stderr
            assert "of 0 run(s) and 1 valuation(s)" in done.stdout
            assert server.counts["requests"] == 40
            resumed = json.loads(runner.invoke(cli, ["value", "--task", "sums", "--budget", "8", "--val-size", "5",
                                                     "--program", SPEC["program"], "--metric", SPEC["metric"],
                                                     "--json"]).stdout)
            assert resumed["valuation_run"]["done_before"] == 8 and resumed["valuation_run"]["evaluated"] == 0
            assert resumed["valuations"] == 1 and server.counts["requests"] == 40
            tiny = runner.invoke(cli, ["value", "--task", "sums", "--budget", "3", "--val-size", "25", "--demos", "6"])
            assert tiny.exit_code == 1 and "lower --val-size or --demos" in tiny.output
            assert "Traceback" not in tiny.output
        finally:
            del os.environ["TK_TEST_KEY"]


CHILD = textwrap.dedent('''
    import sys
    sys.path.insert(0, ".")
    import dspy_trainkit as tk
    from dspy_trainkit.testing.openai_server import OpenAIServer
    import dspy
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    lm = dspy.LM("openai/test-model", api_base=sys.argv[1], api_key="k", cache=False, num_retries=0)
    with tk.open(config="trainkit.toml", disable=DISABLED) as kit:
        kit.valuation_run("sums", budget=24, demos=4, val_size=6, lm=lm, concurrency=2,
                          program="sums_program:program", metric="sums_program:exact")
''').replace("DISABLED", repr(QUALITY_PLUGINS))


def test_a_killed_worker_resumes_without_repeating_finished_candidates(project):
    """SIGKILL a worker process mid-way; the resumed run evaluates exactly the candidates not stored, so no
    finished candidate's calls are made twice."""
    with tk.open(config=project / "trainkit.toml", disable=QUALITY_PLUGINS) as kit:
        kit.add_many(records(40, set(range(0, 40, 6))))
    (project / "child.py").write_text(CHILD, encoding="utf-8")
    with dspy_cache(None), OpenAIServer(_learner(), latency=0.02) as server, \
            tk.open(config=project / "trainkit.toml", disable=QUALITY_PLUGINS) as kit:
        plan = kit.valuation_run("sums", budget=24, demos=4, val_size=6, dry_run=True)
        child = subprocess.Popen([sys.executable, "child.py", server.url], cwd=project)
        try:
            deadline = time.monotonic() + 120
            while len(kit.store.candidate_positions(plan.candidates_id)) < 6 and child.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(30)
        stored_at_kill = kit.store.candidate_positions(plan.candidates_id)
        assert 6 <= len(stored_at_kill) < 24
        config = kit.store.plan_info(plan.plan)["config"]
        finished = {tuple(sorted(kit.get(i).inputs["question"] for i in slot_demos(config, n)))
                    for n in stored_at_kill}
        before = len(server.requests)
        resumed = kit.valuation_run("sums", budget=24, demos=4, val_size=6, lm=make_lm(server), **SPEC)
        after = server.requests[before:]
        assert not {_demo_key(body) for body in after} & finished  # no finished candidate evaluated again
        assert len(after) == (24 - len(stored_at_kill)) * 6 == resumed.lm_calls
        assert resumed.done_before == len(stored_at_kill) and resumed.remaining == 0
        assert kit.store.candidate_positions(plan.candidates_id) == set(range(24))
        assert kit.store.slot_counts(plan.plan) == {"done": 24}


def test_two_workers_on_postgres_share_one_valuation(postgres_schema_url, project):
    with tk.open(postgres_schema_url, disable=QUALITY_PLUGINS) as kit:
        kit.add_many(records(40, set()))
    reports = {}
    start = threading.Barrier(2)

    with dspy_cache(None), OpenAIServer(_learner(), latency=0.01) as server:
        def worker(name: str) -> None:
            with tk.open(postgres_schema_url, disable=QUALITY_PLUGINS) as kit:
                start.wait()
                reports[name] = kit.valuation_run("sums", budget=30, demos=4, val_size=6, lm=make_lm(server),
                                                  concurrency=2, **SPEC)

        threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert server.counts["requests"] == 30 * 6  # every candidate evaluated once, by one of the two
    assert reports["w0"].evaluated + reports["w1"].evaluated == 30
    assert reports["w0"].evaluated and reports["w1"].evaluated  # both really worked
    with tk.open(postgres_schema_url, disable=QUALITY_PLUGINS) as kit:
        assert kit.store.candidate_positions(candidates_id(reports["w0"].plan)) == set(range(30))
        assert kit.value("sums").candidates == 30


#: Clean held-out questions the champions are scored on before and after (see the bar at the end).
HELD_OUT = 300


def test_rejecting_what_recommend_flags_does_not_make_the_champion_worse(project):
    """The issue's end-to-end check: optimize on data with planted mislabels, value (a valuation run), reject
    what `recommend` flags, optimize again; the champion must not get worse on a clean held-out set."""
    import dspy
    import sums_program

    from dspy_trainkit.optimization.champions import load_saved

    (project / "trainkit.toml").write_text(TOML.replace("num_candidates = 40", "num_candidates = 8"),
                                           encoding="utf-8")
    planted = set(range(0, 60, 6))
    learner = _learner()
    rng = __import__("random").Random(99)
    held_out = [dspy.Example(question=f"Held {n}: what is {a} + {b}?", answer=str(a + b)).with_inputs("question")
                for n, (a, b) in enumerate((rng.randint(10, 99), rng.randint(10, 99)) for _ in range(HELD_OUT))]

    def champion_program(kit):
        found = kit.champion("sums")  # no champion yet: the unoptimized program is what the task has
        return load_saved(sums_program.program, found) if found else sums_program.program()

    def held_out_score(program, lm) -> float:
        with dspy.context(lm=lm):
            result = dspy.Evaluate(devset=held_out, metric=sums_program.exact, num_threads=8, max_errors=0)(program)
        return result.score / 100

    def true_accuracy(program) -> float:
        """The learner's accuracy with the program's demos: its expected score on any clean held-out set."""
        demos = [d for p in program.predictors() for d in p.demos]
        wrong = sum(1 for d in demos if truth({"question": d["question"]})["answer"] != str(d["answer"]).strip())
        return learner.accuracy(len(demos) - wrong, wrong)

    with dspy_cache(None), OpenAIServer(learner) as server, \
            tk.open(config=project / "trainkit.toml", disable=QUALITY_PLUGINS) as kit:
        lm = make_lm(server)
        kit.add_many(with_fixed_ids(records(60, planted)))
        kit.optimize("sums", lm=lm, **SPEC)
        before = champion_program(kit)
        kit.valuation_run("sums", budget=40, demos=6, val_size=10, lm=lm, **SPEC)
        kit.value("sums")
        (flagged,) = [r for r in kit.recommend("sums") if r.kind == "review-harmful-demos"]
        named = {kit.get(i).metadata["n"] for i in flagged.example_ids}
        # at least twice the base rate of planted examples (1 in 6); measured 7/16 to 8/10 over runs
        assert len(named & planted) >= len(named) / 3, sorted(named)
        kit.set_status("rejected", ids=list(flagged.example_ids), actor="tester",
                       reason=f"recommendation {flagged.id}")
        kit.optimize("sums", lm=lm, **SPEC)
        after = champion_program(kit)
        # Noise-free: the learner's accuracy for the champion's demos cannot drop (measured over five seeds:
        # 0.55 or 0.79 before, 0.79 after). On the held-out examples the scores are a sample of that accuracy,
        # drawn afresh for each set of demos: with 100 of them two programs of equal accuracy differed by 0.06
        # (one standard error of the difference), so the bar of 0.12 failed about one run in 40 (CI: 0.82 -> 0.67
        # at equal accuracy). With 300 the standard error is 0.033 and the bar is 3.6 of them (measured with
        # 100: 0.59 -> 0.76, 0.59 -> 0.88, 0.78 -> 0.78, 0.82 -> 0.82, 0.59 -> 0.71).
        assert true_accuracy(after) >= true_accuracy(before)
        assert held_out_score(after, lm) >= held_out_score(before, lm) - 0.12
