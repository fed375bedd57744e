"""The built-in scorers coherence, relevance, accuracy and llm_judge: each dimension on good and bad examples,
settings per task and domain, overall quality and thresholds through intake, provenance, and switching off.

Every kit here is opened with the other quality plugins disabled, so a test sees only the scorer it is about
(and does not depend on the other plugins being present or finished).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import dspy_trainkit_accuracy as accuracy
import dspy_trainkit_coherence as coherence
import dspy_trainkit_llm_judge as llm_judge
import dspy_trainkit_relevance as relevance
import pytest

import dspy_trainkit as tk
from dspy_trainkit import Example, load_settings
from dspy_trainkit.assessment import weighted_quality

QUALITY_PLUGINS = ("lengths", "consistency", "pii", "neardup", "coherence", "relevance", "accuracy", "llm_judge")
VERSION = "0.1.0"

CLEAN = ("To add fractions with different denominators, first find a common denominator. Then rewrite each "
         "fraction with that denominator and add the numerators. Finally, simplify the result if you can.")
BROKEN = ("the answer is the answer is the answer is the answer is the answer is the answer is (because we "
          "add the numbers and then we")


def open_kit(tmp_path, toml: str = "", *, only: tuple[str, ...] = (), plugins=(), label_words: bool = True
             ) -> tk.Kit:
    """A kit in tmp_path with `toml` as its settings and, of the quality plugins, only `only` loaded.
    `label_words` turns on relevance by label names (off by default in the plugin), which most tests here use."""
    toml = textwrap.dedent(toml)
    if label_words and "label_words" not in toml:
        toml = (toml.replace("[plugin.relevance]\n", "[plugin.relevance]\nlabel_words = true\n")
                if "[plugin.relevance]\n" in toml else toml + "\n[plugin.relevance]\nlabel_words = true\n")
    (tmp_path / "trainkit.toml").write_text(toml)
    settings = load_settings(env={}, cwd=tmp_path)
    return tk.open(settings=settings, plugins=plugins, disable=[p for p in QUALITY_PLUGINS if p not in only])


def record(answer, question="What is 2 + 3?", task="qa", **labels) -> dict:
    outputs = answer if isinstance(answer, dict) else {"answer": answer}
    return {"task": task, "inputs": {"question": question}, "outputs": outputs, **labels}


def example(answer, question="What is 2 + 3?", task="qa", **labels) -> Example:
    return Example(**record(answer, question, task, **labels))


def scored(kit: tk.Kit, records: list[dict]) -> list[Example]:
    """Add the records and return them as stored, in the order given."""
    report = kit.add_many(records)
    assert report.problems == [] and report.stored == len(records), report
    return [kit.get(i) for i in report.ids]


# ---- coherence -------------------------------------------------------------------------------------------

def test_coherence_ranks_a_clean_text_above_a_repetitive_truncated_one(tmp_path):
    with open_kit(tmp_path, only=("coherence",)) as kit:
        clean, broken = scored(kit, [record(CLEAN), record(BROKEN)])
    assert clean.scores == {"coherence": 1.0}
    assert 0.0 <= broken.scores["coherence"] < 0.6
    assert clean.provenance["scorers"] == {"coherence": {"plugin": "coherence", "version": VERSION}}


@pytest.mark.parametrize(("bad", "good"), [
    ("The sum (of both parts is eleven and that is all there is to say about it.",
     "The sum (of both parts) is eleven and that is all there is to say about it."),
    ('He said "stop and then left the room without another word to anyone there.',
     'He said "stop" and then left the room without another word to anyone there.'),
    ("ADD THE TWO NUMBERS AND WRITE DOWN THE RESULT.", "Add the two numbers and write down the result."),
    ("First add the two numbers together, and then we...", "The sequence continues 2, 4, 8, ..."),
    ("First add the two numbers together and then divide the result by the number of", "Steps:\n1) add\n2) divide"),
    ("Steps: (first add, then divide :)", "Steps: (first add, then divide) (see step 2) :)"),
    ("To solve it add three and four. To solve it add three and four. To solve it add three and four.",
     "To solve it add three and four. Then check the sum against the total. The answer is seven."),
])
def test_coherence_heuristics_each_lower_the_score(bad, good):
    bad_parts, good_parts = coherence.parts(example(bad), None), coherence.parts(example(good), None)
    assert good_parts == {"repetition": 1.0, "structure": 1.0}
    assert min(bad_parts.values()) < 1.0 and max(bad_parts.values()) <= 1.0


def test_coherence_penalises_an_output_that_only_repeats_the_input():
    parrot = coherence.parts(example("Please compute two plus three", question="Please compute two plus three"),
                             None)
    assert parrot["repetition"] == 0.0


def test_coherence_gives_no_score_without_output_text(tmp_path):
    with open_kit(tmp_path, only=("coherence",)) as kit:
        numeric, = scored(kit, [record(5)])
    assert numeric.scores == {} and numeric.quality is None


def _answers(n: int, words: int) -> list[dict]:
    return [record(f"Answer {i} uses " + " ".join(f"part{j}" for j in range(words)) + ".", question=f"q{i}")
            for i in range(n)]


def test_coherence_length_uses_the_task_norm_only_with_20_accepted_examples(tmp_path):
    short, long = ("The answer is five, since two and three make five.",
                   " ".join(f"Item{i} goes with item{i + 1}." for i in range(100)))
    with open_kit(tmp_path, only=("coherence",)) as kit:
        scored(kit, _answers(19, 8))
        assert coherence.task_norm(kit, "qa", coherence.read_options(kit, "qa", None)) is None
        few = scored(kit, [record(short), record(long)])
    assert [ex.scores["coherence"] for ex in few] == [1.0, 1.0]  # 19 stored: the length part is left out
    with open_kit(tmp_path, only=("coherence",)) as kit:  # the 20th accepted example, in a kit of its own:
        scored(kit, [record("Answer 19 uses part0 part1.", question="q19")])  # the norm was computed before
    with open_kit(tmp_path, only=("coherence",)) as kit:
        norm_short, norm_long = scored(kit, [record(short + " Done."), record(long + " Done.")])
        assert coherence._norms[kit]["qa"] is not None
        assert norm_short.scores["coherence"] > norm_long.scores["coherence"]
        assert norm_long.scores["coherence"] == pytest.approx(2 / 3)  # repetition 1, structure 1, length 0


def test_coherence_norm_is_computed_once_per_kit_and_task(tmp_path, monkeypatch):
    calls = []
    with open_kit(tmp_path, only=("coherence",)) as kit:
        real = kit.examples
        monkeypatch.setattr(kit, "examples", lambda **f: calls.append(f) or real(**f))
        kit.add_many(_answers(30, 8))
        kit.add_many([record(CLEAN), record(CLEAN + " More."), record("Five.", task="other")])
    assert [c["task"] for c in calls] == ["qa", "other"]
    assert all(c["status"] == "accepted" for c in calls)


def test_coherence_length_score_follows_tukey_fences():
    norm = (2.0, 3.0, 1.0)
    assert coherence.length_score(2.5, norm) == 1.0
    assert coherence.length_score(4.5, norm) == 1.0  # on the upper fence
    assert coherence.length_score(5.25, norm) == pytest.approx(0.5)
    assert coherence.length_score(6.0, norm) == 0.0
    assert coherence.length_score(-1.0, norm) == 0.0


def test_coherence_part_weights_per_domain(tmp_path):
    toml = """
    [plugin.coherence.tasks.qa.domains.chants]
    weights = { repetition = 0 }
    """
    with open_kit(tmp_path, toml, only=("coherence",)) as kit:
        chant, other = scored(kit, [record("Go team go. Go team go. Go team go. Go team go.", domain="chants"),
                                    record("Go team go. Go team go. Go team go. Go team go.", question="x",
                                           domain="prose")])
    assert chant.scores["coherence"] == 1.0 and other.scores["coherence"] == 0.625


def test_coherence_bad_settings_name_the_key(tmp_path):
    with open_kit(tmp_path, "[plugin.coherence]\nlength_min = 5\n", only=("coherence",)) as kit:
        with pytest.raises(tk.ConfigError, match=r"\[plugin.coherence\].*unknown key 'length_min'"):
            kit.add_many([record(CLEAN)])
        assert kit.count() == 0


# ---- relevance -------------------------------------------------------------------------------------------

def test_relevance_rewards_the_topic_words_with_light_stemming(tmp_path):
    with open_kit(tmp_path, only=("relevance",)) as kit:
        on, off = scored(kit, [record("Add the two fractions.", topic="adding_fractions"),
                               record("The triangle has three sides.", topic="adding_fractions")])
    assert on.scores == {"relevance": 1.0}  # "add" ~ "adding", "fractions" ~ "fraction"
    assert off.scores == {"relevance": 0.0}
    assert on.provenance["scorers"] == {"relevance": {"plugin": "relevance", "version": VERSION}}


def test_relevance_keywords_count_phrases_up_to_min_hits(tmp_path):
    toml = """
    [plugin.relevance]
    keywords = { fractions = ["numerator", "common denominator", "simplify"] }
    """
    texts = ["Find a common denominator, then add each numerator.", "Add each numerator.",
             "The denominator is what matters.", "Paint the fence."]
    with open_kit(tmp_path, toml, only=("relevance",)) as kit:
        found = scored(kit, [record(text, question=f"q{i}", topic="fractions") for i, text in enumerate(texts)])
    assert [ex.scores["relevance"] for ex in found] == [1.0, 0.5, 0.0, 0.0]


def test_relevance_needs_a_label_and_falls_back_to_the_domain(tmp_path):
    with open_kit(tmp_path, only=("relevance",)) as kit:
        unlabelled, domain_only, with_both = scored(kit, [
            record("Geometry is about shapes."), record("Geometry is about shapes.", question="a", domain="geometry"),
            record("Geometry is about shapes.", question="b", domain="geometry", topic="probability")])
    assert unlabelled.scores == {} and unlabelled.quality is None
    assert domain_only.scores == {"relevance": 1.0}
    assert with_both.scores == {"relevance": 0.0}  # the topic, the more specific label, decides


def test_relevance_ignores_hint_fields_that_only_repeat_labels(tmp_path):
    hinted = {"task": "gen", "topic": "fractions", "difficulty": "easy",
              "inputs": {"topic_hint": "fractions", "difficulty_hint": "easy"},
              "outputs": {"problem": "A train leaves at noon. When does it arrive?"}}
    with open_kit(tmp_path, only=("relevance",)) as kit:
        ex, = scored(kit, [hinted])
    assert ex.scores == {"relevance": 0.0}
    fields = relevance.example_terms(Example(**hinted), ["topic_hint"], frozenset())
    assert fields == {"fraction"}  # named fields are used as they are


def test_relevance_keywords_per_task_and_domain(tmp_path):
    toml = """
    [plugin.relevance]
    keywords = { basics = ["sum"] }
    [plugin.relevance.tasks.qa.domains.geometry]
    keywords = { basics = ["angle"] }
    """
    with open_kit(tmp_path, toml, only=("relevance",)) as kit:
        arith, geo = scored(kit, [record("Take the sum.", topic="basics", domain="arithmetic"),
                                  record("Take the sum.", question="q2", topic="basics", domain="geometry")])
    assert arith.scores["relevance"] == 1.0 and geo.scores["relevance"] == 0.0


def test_relevance_stemmer_is_consistent():
    assert {relevance.stem(w) for w in ("fraction", "fractions")} == {"fraction"}
    assert {relevance.stem(w) for w in ("solve", "solving", "solved", "solves")} == {"solv"}
    assert relevance.stem("probabilities") == relevance.stem("probability")
    assert relevance.label_terms("systems_of-linear equations") == {"system", "linear", "equation"}


# ---- accuracy --------------------------------------------------------------------------------------------

NUMERIC = """
[plugin.accuracy.tasks.qa]
verifier = "numeric"
"""


def test_numeric_verifier_scores_right_and_wrong_answers(tmp_path):
    records = [record("5"), record("6", question="What is 2 + 4?"), record("The answer is 7.", question="3 + 4 = ?"),
               record("seven", question="What is 3 + 5?"), record("0.33", question="What is 1 / 3?"),
               record("12", question="How many eggs are in a dozen?")]
    with open_kit(tmp_path, NUMERIC, only=("accuracy",)) as kit:
        found = scored(kit, records)
    assert [ex.scores.get("accuracy") for ex in found] == [1.0, 1.0, 1.0, 0.0, 1.0, None]
    assert found[0].provenance["scorers"] == {"accuracy": {"plugin": "accuracy", "version": VERSION}}


@pytest.mark.parametrize(("text", "value"), [
    ("2 + 3 * 4", 14.0), ("(1/2 + 1/4)", 0.75), ("-3 + 5", 2.0), ("2^10", 1024.0), ("6 × 7", 42.0),
    ("1/0", None), ("2 ** 1000000", None), ("__import__('os').system('true')", None), ("[1, 2]", None),
    ("2 if 1 else 3", None), ("True + 1", None), ("1e308 * 10", None), ("x + 1", None), ("(-8) ** (1/3)", None),
])
def test_evaluate_only_computes_arithmetic(text, value):
    assert accuracy.evaluate(text) == value


@pytest.mark.parametrize(("question", "value"), [
    ("What is 12 / 4?", 3.0), ("Compute -3 + 5.", 2.0), ("Solve 3x + 2 = 11", None),
    ("On 2024-05-01 Ann had 3 + 4 apples", 7.0), ("What is 2 + 3 or 4 * 5?", None), ("How old is Bob?", None),
])
def test_find_expression_takes_the_one_expression_in_a_text(question, value):
    assert accuracy.find_expression(question) == value


def test_numeric_verifier_options_fields_and_tolerance(tmp_path):
    toml = """
    [plugin.accuracy.tasks.qa]
    verifier = "numeric"
    answer_field = "result"
    search_fields = ["problem"]
    tolerance = 0.01
    """
    records = [record({"problem": "What is 10 / 3?", "result": "3.34"}, question="q1"),
               record({"problem": "Nothing to compute", "result": "1"}, question="What is 1 + 0?"),
               {"task": "qa", "inputs": {"expression": "6 * 7"}, "outputs": {"result": 42}}]
    with open_kit(tmp_path, toml, only=("accuracy",)) as kit:
        found = scored(kit, records)
    assert [ex.scores.get("accuracy") for ex in found] == [1.0, None, 1.0]


def test_verifier_per_task_and_domain(tmp_path):
    toml = """
    [plugin.accuracy]
    verifier = "numeric"
    [plugin.accuracy.tasks.qa.domains.trivia]
    verifier = "off"
    [plugin.accuracy.tasks.other]
    answer_field = "result"
    """
    records = [record("5"), record("5", question="2 + 3?", domain="trivia"), record({"result": "5"}, task="other")]
    with open_kit(tmp_path, toml, only=("accuracy",)) as kit:
        found = scored(kit, records)
    assert [ex.scores.get("accuracy") for ex in found] == [1.0, None, 1.0]


def _write_verifier(tmp_path, monkeypatch, name: str, body: str) -> str:
    """A verifier module in the project folder, which is not on sys.path (the plugin must add it)."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(accuracy, "_loaded", {})
    return name


def test_custom_verifier_is_imported_from_the_project_folder(tmp_path, monkeypatch):
    module = _write_verifier(tmp_path, monkeypatch, "tk_checks_ok", """
        def check(example):
            answer = example.outputs["answer"]
            if answer == "?":
                return None
            return 0.25 if answer == "close" else answer == "right"
    """)
    toml = f'[plugin.accuracy.tasks.qa]\nverifier = "{module}:check"\n'
    with open_kit(tmp_path, toml, only=("accuracy",)) as kit:
        found = scored(kit, [record("right"), record("wrong"), record("close"), record("?"),
                             record("right", task="other")])
    assert [ex.scores.get("accuracy") for ex in found] == [1.0, 0.0, 0.25, None, None]
    assert str(tmp_path) in sys.path


def test_a_verifier_that_raises_stops_the_batch_naming_verifier_and_example(tmp_path, monkeypatch):
    module = _write_verifier(tmp_path, monkeypatch, "tk_checks_bad", """
        def check(example):
            return 1 / len(example.outputs["answer"].strip("!"))
    """)
    toml = f'[plugin.accuracy.tasks.qa]\nverifier = "{module}:check"\n'
    with open_kit(tmp_path, toml, only=("accuracy",)) as kit:
        bad = Example(**record("!!!"))
        with pytest.raises(tk.PluginError) as failure:
            kit.add_many([record("fine"), bad])
        message = str(failure.value)
        assert failure.value.plugin == "accuracy"
        assert f"verifier '{module}:check' raised ZeroDivisionError" in message
        assert bad.id in message and f"{module}.py:3" in message
        assert kit.count() == 0  # the batch was not written


@pytest.mark.parametrize(("spec", "expected"), [
    ("no_colon_here", "expected \"numeric\" or an import path"),
    ("tk_no_such_module:check", "cannot import 'tk_no_such_module'"),
    ("tk_checks_attr:missing", "has no function 'missing'"),
])
def test_bad_verifier_settings_are_clear_errors(tmp_path, monkeypatch, spec, expected):
    _write_verifier(tmp_path, monkeypatch, "tk_checks_attr", "def check(example):\n    return 1\n")
    with open_kit(tmp_path, f'[plugin.accuracy.tasks.qa]\nverifier = "{spec}"\n', only=("accuracy",)) as kit:
        with pytest.raises(tk.ConfigError, match=r"\[plugin.accuracy\]") as failure:
            kit.add_many([record("5")])
    assert expected in str(failure.value)


def test_a_verifier_returning_a_non_score_is_an_error(tmp_path, monkeypatch):
    module = _write_verifier(tmp_path, monkeypatch, "tk_checks_two", "def check(example):\n    return 2\n")
    with open_kit(tmp_path, f'[plugin.accuracy.tasks.qa]\nverifier = "{module}:check"\n', only=("accuracy",)) as kit:
        with pytest.raises(tk.PluginError, match=r"returned 2 for example .*number in 0..1, True/False, or None"):
            kit.add_many([record("5")])


# ---- llm_judge -------------------------------------------------------------------------------------------

JUDGE = """
[plugin.llm_judge]
model = "openai/gpt-4o-mini"
"""


def dummy_judge(monkeypatch, answers: list[dict]) -> list:
    """Make the judge use a DummyLM with `answers`; returns the list of LMs made (one per kit)."""
    from dspy.utils import DummyLM

    made = []

    def make_lm(options):
        made.append(DummyLM(answers))
        return made[-1]

    monkeypatch.setattr(llm_judge, "make_lm", make_lm)
    return made


def verdict(score, correct=True, reason="fine"):
    return {"reasoning": "checked the arithmetic", "correct": correct, "score": score, "reason": reason}


def test_judge_is_off_without_a_model_and_imports_nothing(tmp_path):
    with open_kit(tmp_path, only=("llm_judge",)) as kit:
        assert llm_judge.score([example("5")], kit) is None
        ex, = scored(kit, [record("5")])
    assert ex.scores == {}


@pytest.mark.slow
def test_judge_off_never_imports_dspy(tmp_path):
    script = f"""
        import sys
        from pathlib import Path
        import dspy_trainkit as tk
        from dspy_trainkit import load_settings
        kit = tk.open(settings=load_settings(env={{}}, cwd=Path(sys.argv[1])),
                      disable={[p for p in QUALITY_PLUGINS if p != "llm_judge"]!r})
        report = kit.add_many([{{"task": "qa", "inputs": {{"q": "2+3?"}}, "outputs": {{"a": "5"}}}}])
        assert report.stored == 1, report
        assert "llm_judge" in kit.pm.infos and kit.pm.infos["llm_judge"].status == "loaded"
        print(sorted(m for m in ("dspy", "litellm") if m in sys.modules))
    """
    (tmp_path / "trainkit.toml").write_text("")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_judge_scores_with_its_own_lm_and_leaves_the_users_lm_and_callbacks_alone(tmp_path, monkeypatch):
    import dspy
    from dspy.utils import DummyLM
    from dspy.utils.callback import BaseCallback

    class Spy(BaseCallback):  # what a pipeline's callback (trainkit's collection callback) would see
        calls: list = []

        def on_module_start(self, call_id, instance, inputs):
            self.calls.append(type(instance).__name__)

    made = dummy_judge(monkeypatch, [verdict(0.9), verdict(0.2, correct=False)])
    users_lm = DummyLM([{"answer": "never asked"}])
    with open_kit(tmp_path, JUDGE, only=("llm_judge",)) as kit, dspy.context(lm=users_lm, callbacks=[Spy()]):
        good, bad = scored(kit, [record("5"), record("7", question="What is 2 + 2?")])
        assert dspy.settings.lm is users_lm
    assert (good.scores, bad.scores) == ({"judge": 0.9}, {"judge": 0.2})
    assert Spy.calls == []
    assert good.provenance["scorers"] == {"judge": {"plugin": "llm_judge", "version": VERSION}}
    assert len(made) == 1 and len(made[0].history) == 2 and users_lm.history == []
    prompt = made[0].history[0]["messages"][-1]["content"]
    assert "What is 2 + 3?" in prompt and "Task 'qa'" in prompt


def test_judge_falls_back_to_correct_when_the_score_is_out_of_range():
    prediction = type("P", (), {"score": 8.0, "correct": False})()
    assert llm_judge.judged_score(prediction) == 0.0
    prediction.correct = "maybe"
    with pytest.raises(ValueError, match="expected a score in 0..1"):
        llm_judge.judged_score(prediction)


def test_judge_failures_leave_the_score_out_and_warn(tmp_path, monkeypatch, caplog):
    dummy_judge(monkeypatch, [verdict(1.0)])  # one answer for three examples: the DummyLM runs out
    records = [record("5"), record("6", question="What is 3 + 3?"), record("7", question="What is 3 + 4?")]
    with caplog.at_level(logging.WARNING), open_kit(tmp_path, JUDGE, only=("llm_judge",)) as kit:
        found = scored(kit, records)
    assert [ex.scores for ex in found] == [{"judge": 1.0}, {}, {}]
    assert [ex.status for ex in found] == ["accepted"] * 3  # an LM problem neither rejects nor blocks data
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("was not judged" in w for w in warnings)
    assert found[1].id in warnings[0]


def test_judge_stops_sending_after_max_failures_in_a_row(tmp_path, monkeypatch, caplog):
    dummy_judge(monkeypatch, [])
    calls = []

    def down(program, lm, example, description):
        calls.append(example.id)
        raise ConnectionError("judge server unreachable")

    monkeypatch.setattr(llm_judge, "judge_one", down)
    records = [record(str(i), question=f"q{i}") for i in range(10)]
    with caplog.at_level(logging.WARNING), open_kit(tmp_path, JUDGE + "max_failures = 3\n",
                                                    only=("llm_judge",)) as kit:
        report = kit.add_many(records)
    assert report.accepted == 10 and len(calls) == 3
    assert "3 failures in a row; the other 7 examples of this batch were not sent" in caplog.text
    assert "ConnectionError: judge server unreachable" in caplog.text


def test_judge_threads_and_per_task_model(tmp_path, monkeypatch):
    made = dummy_judge(monkeypatch, [{"correct": True, "score": 0.5, "reason": "ok"}] * 6)
    toml = """
    [plugin.llm_judge.tasks.qa]
    model = "openai/gpt-4o-mini"
    num_threads = 3
    chain_of_thought = false
    description = "Answer arithmetic questions."
    """
    toml += """
    [plugin.llm_judge.tasks.qa.domains.private]
    model = "off"
    """
    records = [record(str(i), question=f"q{i}", topic="sums") for i in range(5)] + [
        record("5", task="unjudged"), record("5", question="secret", domain="private")]
    with open_kit(tmp_path, toml, only=("llm_judge",)) as kit:
        found = scored(kit, records)
    assert [ex.scores.get("judge") for ex in found] == [0.5] * 5 + [None, None]
    prompts = [call["messages"][-1]["content"] for call in made[0].history]
    assert len(prompts) == 5 and all("Answer arithmetic questions.\nLabels: topic=sums" in p for p in prompts)
    assert not any("reasoning" in call["messages"][0]["content"] for call in made[0].history)  # dspy.Predict


def test_judge_reads_the_api_key_from_the_named_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("TK_JUDGE_KEY", raising=False)
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP", raising=False)
    options = {**llm_judge.DEFAULTS, "model": "openai/gpt-4o-mini", "api_key_env": "TK_JUDGE_KEY",
               "api_base": "http://127.0.0.1:9/v1"}
    with pytest.raises(tk.ConfigError, match="environment variable TK_JUDGE_KEY is not set"):
        llm_judge.make_lm(options)
    monkeypatch.setenv("TK_JUDGE_KEY", "sk-test")
    lm = llm_judge.make_lm(options)
    assert lm.model == "openai/gpt-4o-mini" and lm.kwargs["api_key"] == "sk-test"
    assert lm.kwargs["api_base"] == "http://127.0.0.1:9/v1" and lm.kwargs["temperature"] == 0.0
    assert __import__("os").environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "true"
    (tmp_path / "sub").mkdir()
    toml = JUDGE + 'api_key_env = "TK_JUDGE_UNSET"\n'
    with open_kit(tmp_path / "sub", toml, only=("llm_judge",)) as kit:
        with pytest.raises(tk.ConfigError, match=r"\[plugin.llm_judge\].*TK_JUDGE_UNSET is not set"):
            kit.add_many([record("5")])


def test_judge_bad_settings_name_the_key(tmp_path):
    with open_kit(tmp_path, JUDGE + "temperature = 'hot'\n", only=("llm_judge",)) as kit:
        with pytest.raises(tk.ConfigError, match=r"\[plugin.llm_judge\] temperature .*a number in 0..2"):
            kit.add_many([record("5")])


# ---- together: overall quality, thresholds, provenance, switching off ------------------------------------

ALL = ("coherence", "relevance", "accuracy", "llm_judge")


def test_weights_per_task_and_domain_combine_into_quality(tmp_path, monkeypatch):
    dummy_judge(monkeypatch, [verdict(0.5)] * 4)
    toml = NUMERIC + JUDGE + """
    [tasks.qa.weights]
    accuracy = 2
    judge = 1
    [tasks.qa.domains.exam.weights]
    accuracy = 5
    """
    records = [record("The answer is 6.", topic="addition", domain="school"),
               record("The answer is 6.", question="What is 2 + 4?", topic="addition", domain="exam")]
    with open_kit(tmp_path, toml, only=ALL) as kit:
        wrong, right = scored(kit, records)
    assert set(wrong.scores) == {"coherence", "relevance", "accuracy", "judge"}
    assert wrong.scores["accuracy"] == 0.0 and right.scores["accuracy"] == 1.0
    assert wrong.quality == weighted_quality(wrong.scores, {"accuracy": 2, "judge": 1})
    assert right.quality == weighted_quality(right.scores, {"accuracy": 5, "judge": 1})
    expected = (2 * 0.0 + 0.5 + wrong.scores["coherence"] + wrong.scores["relevance"]) / 5
    assert wrong.quality == pytest.approx(expected)
    assert right.quality > wrong.quality
    assert right.provenance["scorers"] == {dim: {"plugin": plugin, "version": VERSION} for dim, plugin in (
        ("coherence", "coherence"), ("relevance", "relevance"), ("accuracy", "accuracy"), ("judge", "llm_judge"))}


def test_min_quality_per_task_and_domain_rejects_below_threshold(tmp_path):
    toml = NUMERIC + """
    [tasks.qa]
    min_quality = 0.8
    [tasks.qa.weights]
    accuracy = 3
    [tasks.qa.domains.practice]
    min_quality = 0.5
    """
    records = [record("5"), record("4", question="What is 2 + 1?"),
               record("4", question="What is 3 + 3?", domain="practice")]
    with open_kit(tmp_path, toml, only=("coherence", "accuracy")) as kit:
        right, wrong, practice = scored(kit, records)
    assert (right.status, right.quality) == ("accepted", 1.0)
    assert wrong.status == "rejected" and wrong.quality == 0.25  # (3 * 0 + 1 * 1) / 4
    assert [f.code for f in wrong.findings] == ["below-threshold"]
    assert practice.status == "rejected"  # 0.25 < 0.5 in the practice domain too
    with open_kit(tmp_path, toml.replace("min_quality = 0.5", "min_quality = 0.2"),
                  only=("coherence", "accuracy")) as kit:
        lenient, = scored(kit, [record("4", question="What is 4 + 4?", domain="practice")])
    assert lenient.status == "accepted" and lenient.quality == 0.25


@pytest.mark.parametrize("off", ALL)
def test_each_scorer_can_be_switched_off(tmp_path, monkeypatch, off):
    dummy_judge(monkeypatch, [verdict(0.5)])
    with open_kit(tmp_path, NUMERIC + JUDGE, only=tuple(p for p in ALL if p != off)) as kit:
        ex, = scored(kit, [record("5", topic="addition")])
        assert kit.pm.infos[off].status == "disabled"
    dimension = {"llm_judge": "judge"}.get(off, off)
    assert dimension not in ex.scores and dimension not in ex.provenance["scorers"]
    assert set(ex.scores) == {"coherence", "relevance", "accuracy", "judge"} - {dimension}


def test_rescore_uses_new_verifier_settings(tmp_path):
    with open_kit(tmp_path, only=("accuracy",)) as kit:
        ex, = scored(kit, [record("6")])
    assert ex.scores == {}
    with open_kit(tmp_path, NUMERIC, only=("accuracy",)) as kit:
        assert kit.rescore() == 1
        assert kit.get(ex.id).scores == {"accuracy": 0.0}


def test_relevance_by_default_scores_only_labels_with_keywords(tmp_path):
    toml = '[plugin.relevance]\nkeywords = { fractions = ["numerator", "denominator"] }\n'
    with open_kit(tmp_path, toml, only=("relevance",), label_words=False) as kit:
        kit.add_many([record("7/8", question="Which numerator and denominator give 7/8?", topic="fractions"),
                      record("56", question="What is 7 * 8?", topic="arithmetic")])
        by_topic = {ex.topic: ex.scores for ex in kit.examples()}
    assert by_topic["fractions"]["relevance"] == 1.0
    assert "relevance" not in by_topic["arithmetic"]  # no keywords, no name-based guess


@pytest.mark.parametrize("text", ["a a a a a a", "a,a,a,a,a,a", "ab ab ab ab", "x.x.x.x.x", "1 1 1 1 1 1 1",
                                  "a a a a a", "é é é é é é", "aa aa aa aa aa aa", "no. no. no."])
def test_coherence_repetition_of_short_texts_is_what_counting_gives(text):
    """repeated_share skips tokenising texts under 11 characters (six words, the fewest it counts, need 11):
    the share it gives is the one counting the trigrams and sentences gives."""
    words = tuple(coherence.tokens(text).words)
    total = len(words) - 2
    expected = 1.0 - len(set(zip(words, words[1:], words[2:], strict=False))) / total if total >= 4 else 0.0
    if total >= 4:
        flat = text.lower().replace("\n", ". ").replace("! ", ". ").replace("? ", ". ")
        sentences = [s for s in (p.strip(" .") for p in flat.split(". ")) if s.count(" ") >= 2]
        if len(sentences) >= 2:
            expected = max(expected, 1.0 - len(set(sentences)) / len(sentences))
    assert coherence.repeated_share(text) == expected
    assert (total >= 4) == (len(text) >= 11 and total >= 4)  # a text with four trigrams is 11 characters or more
