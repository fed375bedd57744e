"""Synthesis: the strategy registry, LM strategies (loopback server and DummyLM), near-duplicates among
generated data, the max_synthetic_ratio cap (SQLite and PostgreSQL), the synthetic share in stats, diversity
metrics, and the `trainkit synthesize` command's exit codes and JSON.

LM traffic goes to the loopback OpenAI-compatible server or to `dspy.utils.DummyLM`; the DSPy cache is off
(`cache = false` in the LM settings; DummyLM does not cache).
"""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit import hookimpl
from dspy_trainkit.cli.main import cli
from dspy_trainkit.errors import PluginError, TrainkitError
from dspy_trainkit.generation.diversity import DiversityCounter, coverage, distinct_n
from dspy_trainkit.testing import Faults, OpenAIServer, dspy_reply, input_fields, malformed_reply, server_error

dspy = pytest.importorskip("dspy")

TASK = '''
[tasks.problems]
signature = "domain, topic, difficulty -> problem, solution, answer"
topics = ["fractions", "percentages", "linear equations"]
difficulties = ["easy", "medium", "hard"]
[tasks.problems.domains.math]
'''
SEEDS = [
    ("fractions", "medium", "What is 1/4 + 1/2 of a pizza eaten by Ana and Ben together?",
     "Use quarters: 1/4 + 2/4 = 3/4.", "3/4"),
    ("percentages", "medium", "A coat costs $80 and is reduced by 25%. What does it cost now?",
     "25% of 80 is 20, and 80 - 20 = 60.", "$60"),
    ("linear equations", "easy", "Solve for x: x + 7 = 19.", "Subtract 7 from both sides: x = 12.", "x = 12"),
    ("fractions", "hard", "Compute (2/3) × (9/4) - 1/2 and simplify the result fully.",
     "(2 × 9)/(3 × 4) = 18/12 = 3/2, and 3/2 - 1/2 = 1.", "1"),
]


def write_config(folder: Path, extra: str = "") -> Path:
    path = folder / "trainkit.toml"
    path.write_text(f'[store]\nurl = "sqlite:///store.db"\n{TASK}\n{extra}\n', encoding="utf-8")
    return path


def add_seeds(kit: tk.Kit, source: str = "manual") -> list[tk.Example]:
    records = [{"task": "problems", "source": source, "domain": "math", "topic": topic, "difficulty": level,
                "inputs": {"domain": "math", "topic": topic, "difficulty": level},
                "outputs": {"problem": problem, "solution": solution, "answer": answer}}
               for topic, level, problem, solution, answer in SEEDS]
    report = kit.add_many(records)
    assert report.accepted == len(SEEDS), report
    return list(kit.examples(task="problems", status="accepted"))


def counting_responder(fail_on: str | None = None):
    """Answers every rewrite with a new, self-consistent problem; `fail_on` in the original problem makes a
    malformed answer instead."""
    numbers = itertools.count(1)
    lock = threading.Lock()
    words = ["orchard", "library", "stadium", "harbour", "bakery", "museum", "garden", "factory", "airport",
             "market", "village", "castle"]

    def respond(body):
        fields = input_fields(body)
        if fail_on and fail_on in fields.get("original_problem", ""):
            return malformed_reply()
        with lock:
            n = next(numbers)
        place = words[n % len(words)]
        return dspy_reply({"problem": f"At the {place} there are {n * 7} visitors in {n} groups of equal size "
                                      f"({fields.get('request', '')[:20]!r}). How many are in each group?",
                           "solution": f"Divide the visitors by the groups: {n * 7} ÷ {n} = 7 per group "
                                       f"(case {n}).",
                           "answer": "7"})

    return respond


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TK_TEST_KEY", "loopback-key")


def lm_table(server: OpenAIServer, **overrides) -> str:
    values = {"model": '"openai/test-model"', "api_base": f'"{server.url}"', "api_key_env": '"TK_TEST_KEY"',
              "cache": "false", "retries": "0", "timeout": "5", "concurrency": "4"}
    values.update({k: str(v) for k, v in overrides.items()})
    return "[lm.generation]\n" + "\n".join(f"{k} = {v}" for k, v in values.items())


# ---- the registry -------------------------------------------------------------------------------------------

def test_unknown_strategy_lists_the_known_ones(tmp_path: Path) -> None:
    with tk.open(config=write_config(tmp_path)) as kit, pytest.raises(TrainkitError) as caught:
        kit.synthesize("problems", "nope", 3)
    message = str(caught.value)
    assert "unknown synthesis strategy 'nope'" in message
    for name in ("easier", "harder", "paraphrase", "persona", "template", "topic-transfer"):
        assert name in message


class NoDescription:
    name = "bare"
    needs_lm = False

    def generate(self, seeds, count, context):
        return []


class BadPlugin:
    @hookimpl
    def synthesize(self, register):
        register(NoDescription())


def test_a_bad_registration_names_the_plugin(tmp_path: Path) -> None:
    with tk.open(config=write_config(tmp_path), plugins=[("badstrategy", BadPlugin())]) as kit:
        with pytest.raises(PluginError, match="'badstrategy' made a bad registration.*one-line `description`"):
            kit.synthesize("problems", "template", 1)


class Exploding:
    name = "exploding"
    description = "raises"
    needs_lm = False
    needs_seeds = False

    def generate(self, seeds, count, context):
        yield {"inputs": {"domain": "math", "topic": "fractions", "difficulty": "easy"},
               "outputs": {"problem": "What is 1 + 1?", "solution": "1 + 1 = 2.", "answer": "2"}}
        raise RuntimeError("boom")


class ExplodingPlugin:
    @hookimpl
    def synthesize(self, register):
        register(Exploding())


def test_a_strategy_that_raises_is_a_plugin_error_naming_it(tmp_path: Path) -> None:
    with tk.open(config=write_config(tmp_path), plugins=[("exploder", ExplodingPlugin())]) as kit:
        with pytest.raises(PluginError, match="plugin 'exploder' failed in strategy 'exploding': RuntimeError"):
            kit.synthesize("problems", "exploding", 3)


# ---- LM strategies over the loopback server -------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["paraphrase", "harder", "easier", "topic-transfer", "persona"])
def test_lm_strategy_outputs_land_with_parent_provenance(tmp_path: Path, key: None, strategy: str) -> None:
    with OpenAIServer(counting_responder()) as server:
        with tk.open(config=write_config(tmp_path, lm_table(server))) as kit:
            seeds = {ex.id: ex for ex in add_seeds(kit)}
            report = kit.synthesize("problems", strategy, 4, seed=2)
            made = [kit.get(i) for i in report.ids]
        requests = [input_fields(body) for body in server.requests]
    assert report.failures == 0 and report.made == 4 and report.accepted == 4, report
    assert report.model == "openai/test-model" and report.lm["calls"] >= 4
    assert report.parents == len({ex.provenance["parent"] for ex in made}) >= 2
    rewrite_requests = [r for r in requests if "request" in r]
    assert len(rewrite_requests) == 4  # plus the one check call before the work
    assert {r["original_problem"] for r in rewrite_requests} <= {s[2] for s in SEEDS}
    levels = ["easy", "medium", "hard"]
    for ex in made:
        parent = seeds[ex.provenance["parent"]]
        assert ex.source == "synthetic" and ex.provenance["strategy"] == strategy
        assert ex.provenance["model"] == "openai/test-model"
        assert ex.inputs == {"domain": ex.domain, "topic": ex.topic, "difficulty": ex.difficulty}
        assert ex.domain == parent.domain
        if strategy == "harder":
            assert levels.index(ex.difficulty) == levels.index(parent.difficulty) + 1 and ex.topic == parent.topic
            assert ex.provenance["changed"] == {"difficulty": [parent.difficulty, ex.difficulty]}
        elif strategy == "easier":
            assert levels.index(ex.difficulty) == levels.index(parent.difficulty) - 1 and ex.topic == parent.topic
        elif strategy == "topic-transfer":
            assert ex.topic != parent.topic and ex.difficulty == parent.difficulty
            assert ex.topic in ("fractions", "percentages", "linear equations")
        else:
            assert (ex.topic, ex.difficulty) == (parent.topic, parent.difficulty)
        if strategy == "persona":
            assert ex.provenance["persona"]
    if strategy == "harder":  # the seeds already at the top level were skipped, and the report says so
        assert any("skipped" in note for note in report.notes)


def test_malformed_answers_and_server_errors_are_counted_not_raised(tmp_path: Path, key: None) -> None:
    faults = Faults(schedule={3: server_error()})  # request 1 is the LM check
    with OpenAIServer(counting_responder(fail_on="pizza"), faults=faults) as server:
        with tk.open(config=write_config(tmp_path, lm_table(server, concurrency=1))) as kit:
            add_seeds(kit)
            report = kit.synthesize("problems", "paraphrase", 8, seed=1)
    assert report.made + report.failures == 8
    assert report.failures_by_reason.get("malformed", 0) >= 1
    assert report.failures_by_reason.get("server_error") == 1
    assert report.made >= 4 and report.accepted + report.rejected == report.made and report.invalid == 0
    sample = next(s for s in report.failure_samples if s["reason"] == "malformed")
    assert sample["parent"] is not None


def test_an_unreachable_lm_is_one_clear_error_before_any_work(tmp_path: Path, key: None) -> None:
    extra = ('[lm.generation]\nmodel = "openai/test-model"\napi_base = "http://127.0.0.1:9/v1"\n'
             'api_key_env = "TK_TEST_KEY"\nretries = 0\ntimeout = 2\ncache = false\n')
    with tk.open(config=write_config(tmp_path, extra)) as kit:
        add_seeds(kit)
        with pytest.raises(tk.TrainkitError, match="cannot be used"):
            kit.synthesize("problems", "paraphrase", 2)
        assert kit.count(source="synthetic") == 0


# ---- DummyLM: near-duplicates, no usable seeds ---------------------------------------------------------------

def test_paraphrases_too_close_to_the_seed_or_to_each_other_are_rejected(tmp_path: Path) -> None:
    # the one-word copy of the coat seed is 0.82 similar (its labels and solution count too): threshold 0.8
    config = "[lm.generation]\nconcurrency = 1\nretries = 0\n[plugin.neardup]\nthreshold = 0.8\n"
    with tk.open(config=write_config(tmp_path, config)) as kit:
        seeds = add_seeds(kit)
        by_problem = {ex.outputs["problem"]: ex for ex in seeds}
        coat = next(ex for p, ex in by_problem.items() if "coat" in p)
        # 1: the coat seed with one word changed; 2 and 3: a new problem, then the same new problem reworded
        fresh = ("A bicycle shop sells 45 bicycles on Monday and 30 more on Tuesday morning before lunch. How "
                 "many bicycles did the shop sell over the two days?")
        answers = [
            {"problem": coat.outputs["problem"].replace("coat", "jacket"),
             "solution": coat.outputs["solution"], "answer": coat.outputs["answer"]},
            {"problem": fresh, "solution": "Add the two days: 45 + 30 = 75.", "answer": "75"},
            {"problem": fresh.replace("sells", "sold"), "solution": "Add the two days: 45 + 30 = 75.",
             "answer": "75"},
        ]
        report = kit.synthesize("problems", "paraphrase", 3, seed=0, lm=dspy.utils.DummyLM(answers),
                                ids=[coat.id, seeds[0].id, seeds[1].id])
        rejected = [kit.get(i) for i in report.ids if kit.get(i).status == "rejected"]
    assert report.made == 3
    assert report.rejected_by_reason == {"near-duplicate": 2}
    assert report.accepted == 1 and report.rejected == 2
    messages = sorted(f.message for ex in rejected for f in ex.findings if f.code == "near-duplicate")
    assert f"stored example {coat.id}" in messages[0] or f"stored example {coat.id}" in messages[1]
    assert any("in this batch" in m for m in messages)  # the reworded fresh one, against the earlier candidate


def test_no_usable_seed_is_a_clear_error(tmp_path: Path) -> None:
    with tk.open(config=write_config(tmp_path)) as kit:
        add_seeds(kit)
        with pytest.raises(TrainkitError, match="none of the 1 seed example.*top of the difficulty scale"):
            kit.synthesize("problems", "harder", 2, difficulty="hard", lm=dspy.utils.DummyLM([{}]))
        with pytest.raises(TrainkitError, match="needs seed examples and none match"):
            kit.synthesize("problems", "paraphrase", 2, topic="geometry", lm=dspy.utils.DummyLM([{}]))
        with pytest.raises(TrainkitError, match="option steps = 0"):
            kit.synthesize("problems", "easier", 2, options={"steps": 0}, lm=dspy.utils.DummyLM([{}]))
        with pytest.raises(TrainkitError) as raised:  # more steps than the scale has: not "already at the top"
            kit.synthesize("problems", "harder", 2, options={"steps": 5}, lm=dspy.utils.DummyLM([{}]))
        assert str(raised.value) == ("strategy 'harder': option steps = 5 exceeds the difficulty scale, which allows "
                                     "at most 2 step(s) (the task's levels: math: easy, medium, hard); use a smaller "
                                     "--option steps")
        report = kit.synthesize("problems", "harder", 1, options={"steps": 2}, difficulty="easy", dry_run=True,
                                lm=dspy.utils.DummyLM([{"problem": "Solve 3x + 4 = 19 and then check by substituting.",
                                                        "solution": "3x = 15, so x = 5.", "answer": "x = 5"}]))
        assert report.made == 1  # the full scale is still allowed


def test_topic_transfer_option_limits_targets_and_checks_names(tmp_path: Path) -> None:
    answers = [{"problem": f"Find {n}% of 200 in the shop number {n}?", "solution": f"{n}/100 × 200 = {2 * n}.",
                "answer": str(2 * n)} for n in (10, 20, 30)]
    with tk.open(config=write_config(tmp_path, "[lm.generation]\nconcurrency = 1\n")) as kit:
        add_seeds(kit)
        report = kit.synthesize("problems", "topic-transfer", 3, topic="fractions",
                                options={"topics": ["percentages"]}, lm=dspy.utils.DummyLM(answers))
        assert {kit.get(i).topic for i in report.ids} == {"percentages"}
        with pytest.raises(TrainkitError, match="'poetry', which is not a topic"):
            kit.synthesize("problems", "topic-transfer", 1, options={"topics": ["poetry"]},
                           lm=dspy.utils.DummyLM([{}]))


# ---- max_synthetic_ratio and the synthetic share ---------------------------------------------------------------

def test_max_synthetic_ratio_holds_the_excess_as_candidates(store_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, "").read_text().replace(
        "[tasks.problems.domains.math]", "max_synthetic_ratio = 0.5\n[tasks.problems.domains.math]")
    (tmp_path / "trainkit.toml").write_text(config, encoding="utf-8")
    with tk.open(store_url, config=tmp_path / "trainkit.toml") as kit:
        add_seeds(kit)  # 4 real accepted examples
        dry = kit.synthesize("problems", "template", 9, seed=4, dry_run=True)  # counted by intake, not read back
        assert dry.candidate == 5 and dry.held == 5
        report = kit.synthesize("problems", "template", 9, seed=4)
        assert report.made == 9 and report.accepted == 4 and report.candidate == 5 and report.held == 5
        held = list(kit.examples(task="problems", source="synthetic", status="candidate"))
        assert len(held) == 5
        finding = next(f for f in held[0].findings if f.code == "synthetic-cap")
        assert finding.severity == "warning" and "max_synthetic_ratio 0.5" in finding.message
        share = {(r["task"], r["domain"]): r for r in kit.stats()["synthetic_share"]}
        assert share[("problems", None)] == {"task": "problems", "domain": None, "synthetic": 4, "real": 4,
                                             "ratio": 0.5, "cap": 0.5}
        # real data in the same batch counts first, so it makes room for synthetic examples before it
        mixed = [{"task": "problems", "source": "synthetic", "domain": "math", "topic": "fractions",
                  "difficulty": "easy", "inputs": {"domain": "math", "topic": "fractions", "difficulty": "easy"},
                  "outputs": {"problem": "What is 2/9 + 5/9 of the cake?", "solution": "2 + 5 = 7, so 7/9.",
                              "answer": "7/9"}},
                 {"task": "problems", "source": "imported", "domain": "math", "topic": "percentages",
                  "difficulty": "easy", "inputs": {"domain": "math", "topic": "percentages", "difficulty": "easy"},
                  "outputs": {"problem": "What is 10% of 70 apples in the crate?", "solution": "70 ÷ 10 = 7.",
                              "answer": "7"}}]
        result = kit.add_many(mixed)
        assert result.accepted == 2
        assert kit.stats()["synthetic_share"][0]["ratio"] == 0.5


def test_without_a_cap_everything_is_accepted_and_stats_shows_the_ratio(tmp_path: Path) -> None:
    with tk.open(config=write_config(tmp_path)) as kit:
        add_seeds(kit)
        kit.synthesize("problems", "template", 12, seed=4)
        rows = kit.stats()["synthetic_share"]
    assert rows[0] == {"task": "problems", "domain": None, "synthetic": 12, "real": 4, "ratio": 0.75, "cap": None}
    assert rows[1]["domain"] == "math" and rows[1]["synthetic"] == 12


# ---- diversity ---------------------------------------------------------------------------------------------

def test_distinct_n_and_coverage() -> None:
    assert distinct_n(["a b c", "a b d"], 1) == round(4 / 6, 4)
    assert distinct_n(["a b c", "a b d"], 2) == round(3 / 4, 4)
    assert distinct_n([], 2) is None
    assert distinct_n(["Paris.", "paris"], 1) == 0.5  # one word, as the near-duplicate check cuts words
    cells = [("m", "t1", "easy"), ("m", "t1", "hard"), ("m", "t2", "easy")]
    result = coverage({cells[0]: 2, cells[2]: 1, ("x", "y", "z"): 4}, cells)
    assert result["cells_covered"] == 2 and result["coverage"] == round(2 / 3, 4)
    assert result["min_per_cell"] == 0 and result["max_per_cell"] == 2 and result["outside_cells"] == 4
    counter = DiversityCounter(cells=cells)
    counter.add({"q": "same words here"}, {"a": "1"}, cells[0])
    counter.add({"q": "same words here"}, {"a": "1"}, cells[0])
    metrics = counter.metrics()
    assert metrics["distinct_1"] == 0.5 and metrics["examples"] == 2 and metrics["cells_covered"] == 1


# ---- the command ---------------------------------------------------------------------------------------------

def run(folder: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(folder / "trainkit.toml"), *args], catch_exceptions=False)


def test_cli_template_json_rerun_and_list(tmp_path: Path) -> None:
    write_config(tmp_path)
    assert run(tmp_path, "init").exit_code == 0
    result = run(tmp_path, "synthesize", "-t", "problems", "-s", "template", "-n", "9", "--seed", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["made"] == 9 and data["accepted"] == 9 and data["diversity"]["cells_covered"] == 9
    again = json.loads(run(tmp_path, "synthesize", "-t", "problems", "-s", "template", "-n", "9", "--seed", "2",
                           "--json").output)
    assert again["duplicates"] == 9 and again["accepted"] == 0
    text = run(tmp_path, "synthesize", "-t", "problems", "-s", "template", "-n", "2", "--from",
               "topic='linear equations' and difficulty=hard", "--dry-run")
    assert text.exit_code == 0 and "would store: accepted 2" in text.output
    listed = json.loads(run(tmp_path, "synthesize", "--list", "--json").output)
    assert {row["name"] for row in listed} >= {"template", "paraphrase", "harder", "easier", "topic-transfer",
                                                "persona"}
    stats = run(tmp_path, "stats", "-t", "problems")
    assert "accepted synthetic/real:" in stats.output


def test_cli_errors_and_exit_codes(tmp_path: Path, key: None) -> None:
    write_config(tmp_path, "[plugin.neardup]\nthreshold = 0.3\n")
    run(tmp_path, "init")
    unknown = run(tmp_path, "synthesize", "-t", "problems", "-s", "nope", "-n", "2")
    assert unknown.exit_code == 1 and "known strategies: easier, harder" in unknown.output
    assert run(tmp_path, "synthesize", "-t", "problems", "-s", "template").exit_code == 2  # no --count
    no_model = run(tmp_path, "synthesize", "-t", "problems", "-s", "paraphrase", "-n", "2")
    assert no_model.exit_code == 1 and "no model is set" in no_model.output
    rejected = run(tmp_path, "synthesize", "-t", "problems", "-s", "template", "-n", "18", "--json")
    assert rejected.exit_code == 3  # near-duplicates at the low threshold
    assert json.loads(rejected.output)["rejected_by_reason"]["near-duplicate"] >= 1


def test_cli_exit_4_when_some_could_not_be_made(tmp_path: Path, key: None) -> None:
    with OpenAIServer(counting_responder(fail_on="pizza")) as server:
        write_config(tmp_path, lm_table(server))
        run(tmp_path, "init")
        with tk.open(config=tmp_path / "trainkit.toml") as kit:
            add_seeds(kit)
        result = run(tmp_path, "synthesize", "-t", "problems", "-s", "paraphrase", "-n", "4")
    assert result.exit_code == 4, result.output
    assert "could not make 1: malformed 1" in result.output
    assert "made 3 of 4" in result.output


def test_a_task_with_its_own_request_field_keeps_it_apart_from_the_rewrite_request(tmp_path: Path) -> None:
    extra = '[tasks.support]\nsignature = "request -> reply"\n[lm.generation]\nconcurrency = 1\n'
    with tk.open(config=write_config(tmp_path, extra)) as kit:
        seed = kit.add(task="support", inputs={"request": "My parcel from last week never arrived at my flat."},
                       outputs={"reply": "Sorry to hear that; we have sent a replacement parcel today."})
        lm = dspy.utils.DummyLM([{"request": "The package I ordered seven days ago has not reached my home yet.",
                                  "reply": "Apologies: a new package is on its way to you as of this morning."}])
        report = kit.synthesize("support", "paraphrase", 1, lm=lm)
        made = kit.get(report.ids[0])
    assert report.accepted == 1 and made.provenance["parent"] == seed.id
    assert made.inputs == {"request": "The package I ordered seven days ago has not reached my home yet."}


def test_coverage_counts_the_cells_examples_land_in_not_the_seeds_cells(tmp_path: Path) -> None:
    """`harder` from the easy seeds makes medium examples: coverage is over the task's cells, so the medium
    cell counts as covered and nothing is outside the cells."""
    answers = [{"problem": f"Solve for x: {n}x + 3 = {n * 5 + 3}, then check the answer by substituting it back.",
                "solution": f"Subtract 3 and divide by {n}: x = 5.", "answer": "x = 5"} for n in (2, 3)]
    with tk.open(config=write_config(tmp_path, "[lm.generation]\nconcurrency = 1\n")) as kit:
        add_seeds(kit)
        report = kit.synthesize("problems", "harder", 2, difficulty="easy", lm=dspy.utils.DummyLM(answers))
    assert report.accepted == 2, report
    diversity = report.diversity
    assert (diversity["cells_total"], diversity["cells_covered"], diversity["outside_cells"]) == (9, 1, 0)
    assert diversity["coverage"] == round(1 / 9, 4)
    (medium,) = [c for c in diversity["by_cell"] if c["count"]]
    assert (medium["topic"], medium["difficulty"], medium["count"]) == ("linear equations", "medium", 2)


def test_cli_unknown_task_is_one_error(tmp_path: Path) -> None:
    write_config(tmp_path)
    run(tmp_path, "init")
    result = run(tmp_path, "synthesize", "-t", "problem", "-s", "paraphrase", "-n", "2")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: unknown task 'problem': not declared in the settings ([tasks.problem]) and no examples stored; "
        "known tasks: problems"]
