"""The example pipeline (examples/problem_generation) end to end: a real `dspy.LM` over HTTP against the loopback
server with scripted answers, and `dspy.utils.DummyLM`; collection through the DSPy callback into the store.

The quality plugins other than basic_checks are developed separately and may or may not be active, so the
tests that load every plugin check the decision rules (each stored example's status follows from its findings,
quality and the collection mode) and only the finding codes they control; the test that loads basic_checks
alone, plus a scorer of its own, checks exact statuses.
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dspy_trainkit as tk
from dspy_trainkit.testing import OpenAIServer, by_inputs, dspy_reply, make_lm, malformed_reply

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "problem_generation"
TASK = "problems"
TOPICS = ["fractions", "kinematics"]  # cells: math/fractions/{easy,medium,hard}, physics/kinematics/{easy,medium}

CORRECT_EASY = {
    "problem": "Maria ate 1/4 of a pizza and her brother ate 2/4 of the same pizza. What fraction of the pizza "
               "did they eat together?",
    "solution": "Both fractions have the denominator 4, so add the numerators: 1/4 + 2/4 = 3/4.",
    "answer": "3/4",
}
CORRECT_MEDIUM = {
    "problem": "A cake recipe needs 2/3 of a cup of sugar. How much sugar is needed to bake half of the recipe?",
    "solution": "Halve the fraction: 1/2 of 2/3 is 2/6, and 2/6 simplifies to 1/3. So 1/3 of a cup is needed.",
    "answer": "1/3",
}
NOT_REACHED = {  # the solution ends at 7/12, the answer says 2/3
    "problem": "Compute the difference 5/6 - 1/4 and write the result as a fraction in lowest terms.",
    "solution": "Use the common denominator 12: 5/6 is 10/12 and 1/4 is 3/12, so 10/12 - 3/12 = 7/12.",
    "answer": "2/3",
}
EMPTY_ANSWER = {
    "problem": "A car travels 120 km in 2 hours at a constant speed. What is its speed in km/h?",
    "solution": "Speed is distance divided by time: 120 km divided by 2 h gives 60 km/h.",
    "answer": "",
}


def scripted_answers() -> Any:
    """The loopback server's answers by cell; the malformed one fails every adapter DSPy tries."""
    return by_inputs([
        ({"topic": "fractions", "difficulty": "easy"}, dspy_reply(CORRECT_EASY)),
        ({"topic": "fractions", "difficulty": "medium"}, dspy_reply(CORRECT_MEDIUM)),
        ({"topic": "fractions", "difficulty": "hard"}, dspy_reply(NOT_REACHED)),
        ({"topic": "kinematics", "difficulty": "easy"}, dspy_reply(EMPTY_ANSWER)),
        ({"topic": "kinematics", "difficulty": "medium"}, malformed_reply()),
    ])


# ---- fixtures ---------------------------------------------------------------------------------------------------

@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The example's generate_batch module (its folder on sys.path, as when it runs as a script)."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "true")
    return importlib.import_module("generate_batch")


@pytest.fixture(autouse=True)
def reset_dspy() -> Iterator[None]:
    yield
    import dspy

    dspy.configure(lm=None, callbacks=[])


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example's trainkit.toml (so its store is in tmp_path), without the LLM judge."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(EXAMPLE_DIR / "trainkit.toml", project / "trainkit.toml")
    monkeypatch.setenv("TRAINKIT_DISABLE_PLUGINS", "llm_judge")
    return project / "trainkit.toml"


def set_mode(config: Path, mode: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert 'collection_mode = "automatic"' in text
    config.write_text(text.replace('collection_mode = "automatic"', f'collection_mode = "{mode}"'), encoding="utf-8")


def stored(config: Path) -> dict[tuple[str, str], tk.Example]:
    with tk.open(config=config) as kit:
        return {(ex.topic, ex.difficulty): ex for ex in kit.examples(task=TASK)}


def active_checkers(config: Path) -> set[str]:
    """Loaded plugins that validate or score (the others are not written yet, or not loaded)."""
    with tk.open(config=config) as kit:
        return {name for name, info in kit.pm.infos.items()
                if info.status == "loaded" and {"validate", "score"} & set(info.hooks)}


def codes(ex: tk.Example, severity: str | None = None) -> set[str]:
    return {f.code for f in ex.findings if severity is None or f.severity == severity}


def check_decisions(examples: list[tk.Example], mode: str, min_quality: float) -> None:
    """Every stored example's status follows from its findings, its quality and the collection mode."""
    for ex in examples:
        errors, warnings = codes(ex, "error"), codes(ex, "warning")
        where = f"{ex.topic}/{ex.difficulty}: status {ex.status}, findings {[f.to_dict() for f in ex.findings]}"
        if errors:
            assert ex.status == "rejected", where
        elif mode == "manual" or warnings:
            assert ex.status == "candidate", where
        else:
            assert ex.status == "accepted", where
            assert ex.quality is None or ex.quality >= min_quality, where
        if ex.quality is not None and ex.quality < min_quality:
            assert "below-threshold" in errors, where


class FixedScorer:
    """A scorer the test controls: fractions/medium scores below the example's min_quality (0.5)."""

    @tk.hookimpl
    def score(self, examples: list[tk.Example], context: Any) -> dict[int, dict[str, float]]:
        return {i: {"test_quality": 0.3 if (ex.topic, ex.difficulty) == ("fractions", "medium") else 0.9}
                for i, ex in enumerate(examples)}


def check_common(examples: dict[tuple[str, str], tk.Example]) -> None:
    """What holds whatever quality plugins are active."""
    assert set(examples) == {("fractions", "easy"), ("fractions", "medium"), ("fractions", "hard"),
                             ("kinematics", "easy")}, "the malformed reply made no example"
    for (topic, difficulty), ex in examples.items():
        assert ex.source == "collected"
        assert ex.domain == ("math" if topic == "fractions" else "physics")
        assert ex.inputs == {"domain": ex.domain, "topic": topic, "difficulty": difficulty}
        assert set(ex.outputs) == {"problem", "solution", "answer"}
        assert ex.provenance.get("origin") == "pipeline"
    empty = examples[("kinematics", "easy")]
    assert empty.status == "rejected"
    assert any(f.code == "empty-value" and f.field == "outputs.answer" and f.plugin == "basic_checks"
               for f in empty.findings)
    assert examples[("fractions", "easy")].outputs == CORRECT_EASY


# ---- over HTTP ----------------------------------------------------------------------------------------------------

def test_automatic_mode_over_http_with_basic_checks_and_a_scorer(example: Any, config: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINKIT_LOAD_PLUGINS", "basic_checks")
    real_open = tk.open
    monkeypatch.setattr(example.tk, "open", lambda *a, **kw: real_open(*a, plugins=[("fixed", FixedScorer())], **kw))

    with OpenAIServer(scripted_answers()) as server:
        summary = example.run(config, make_lm(server), topics=TOPICS)
        assert summary["cells"] == 5 and summary["calls"] == 5
        assert summary["succeeded"] == 4 and summary["failed"] == 1
        assert server.counts["malformed"] >= 1 and not server.errors
        assert all(body["model"] == "test-model" for body in server.requests)

        assert summary["collection"]["submitted"] == 4
        assert summary["collection"]["written"] == 4
        assert summary["collection"]["accepted"] == 2 and summary["collection"]["rejected"] == 2
        assert summary["store"]["by_status"] == {"accepted": 2, "rejected": 2}

        examples = stored(config)
        check_common(examples)
        check_decisions(list(examples.values()), "automatic", 0.5)
        easy, medium, hard = (examples[("fractions", d)] for d in ("easy", "medium", "hard"))
        assert easy.status == "accepted" and easy.scores == {"test_quality": 0.9} and easy.quality == 0.9
        assert easy.provenance["scorers"]["test_quality"]["plugin"] == "fixed"
        assert medium.status == "rejected" and codes(medium, "error") == {"below-threshold"}
        assert medium.quality == 0.3
        # basic checks cannot see that the solution never reaches the answer (the consistency plugin can)
        assert hard.status == "accepted"
        assert examples[("kinematics", "easy")].quality is None  # rejected before scoring

        # the same answers again: nothing new is stored, the collector counts duplicates
        again = example.run(config, make_lm(server), topics=TOPICS)
    assert again["succeeded"] == 4
    assert again["collection"]["duplicates"] == 4 and again["collection"]["written"] == 0
    assert again["store"]["total"] == 4
    with tk.open(config=config) as kit:
        assert kit.count(task=TASK) == 4


def test_automatic_mode_over_http_with_all_quality_plugins(example: Any, config: Path) -> None:
    checkers = active_checkers(config)
    with OpenAIServer(scripted_answers()) as server:
        summary = example.run(config, make_lm(server), topics=TOPICS)
        assert summary["succeeded"] == 4 and summary["failed"] == 1
        examples = stored(config)
        check_common(examples)
        check_decisions(list(examples.values()), "automatic", 0.5)
        hard = examples[("fractions", "hard")]
        if "consistency" in checkers:
            assert hard.status != "accepted"
            assert "answer-not-reached" in codes(hard), [f.to_dict() for f in hard.findings]
        if checkers == {"basic_checks"}:  # nothing else judges: the complete ones are accepted
            assert {k for k, ex in examples.items() if ex.status == "accepted"} == {
                ("fractions", "easy"), ("fractions", "medium"), ("fractions", "hard")}

        again = example.run(config, make_lm(server), topics=TOPICS)
    assert again["collection"]["duplicates"] == 4 and again["collection"]["written"] == 0
    assert stored(config).keys() == examples.keys()
    with tk.open(config=config) as kit:
        assert kit.count(task=TASK) == 4


def test_manual_mode_keeps_everything_not_rejected_for_review(example: Any, config: Path) -> None:
    set_mode(config, "manual")
    checkers = active_checkers(config)
    with OpenAIServer(scripted_answers()) as server:
        summary = example.run(config, make_lm(server), topics=TOPICS)
    assert summary["collection"]["accepted"] == 0
    examples = stored(config)
    check_common(examples)
    check_decisions(list(examples.values()), "manual", 0.5)
    assert not [ex for ex in examples.values() if ex.status == "accepted"]
    for ex in examples.values():
        assert ex.status == ("rejected" if codes(ex, "error") else "candidate")
    if checkers == {"basic_checks"}:
        assert summary["store"]["by_status"] == {"candidate": 3, "rejected": 1}


def test_command_line_against_the_loopback_server(example: Any, config: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--config", str(config), "--loopback", "--topics", "fractions", "--json"]
    assert example.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["calls"] == summary["succeeded"] == 3
    assert summary["collection"]["submitted"] == 3
    assert summary["store"]["total"] == summary["collection"]["written"] == 3
    assert example.main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["collection"]["duplicates"] == 3 and again["store"]["total"] == 3
    assert example.main(["--config", str(config), "--loopback", "--topics", "fractions"]) == 0
    assert "store sqlite:///" in capsys.readouterr().out


def test_grid_follows_the_task_settings(example: Any, config: Path) -> None:
    settings = tk.load_settings(config).task(TASK)
    cells = example.grid(settings)
    assert ("math", "linear equations", "hard") in cells
    assert ("physics", "kinematics", "medium") in cells
    assert ("physics", "kinematics", "hard") not in cells  # physics sets its own difficulties
    assert len(cells) == 3 * 3 + 2 * 2
    assert example.grid(settings, ["energy"]) == [("physics", "energy", "easy"), ("physics", "energy", "medium")]


# ---- with DummyLM -------------------------------------------------------------------------------------------------

def test_pipeline_with_dummy_lm(example: Any, config: Path) -> None:
    from dspy.utils import DummyLM

    answers = [CORRECT_EASY, CORRECT_MEDIUM, {**CORRECT_EASY, "problem": CORRECT_EASY["problem"] + " ", "answer": " "}]
    summary = example.run(config, DummyLM(answers), topics=["fractions"])
    assert summary["calls"] == summary["succeeded"] == 3
    assert summary["collection"]["written"] == 3
    examples = stored(config)
    assert set(examples) == {("fractions", "easy"), ("fractions", "medium"), ("fractions", "hard")}
    check_decisions(list(examples.values()), "automatic", 0.5)
    assert examples[("fractions", "hard")].status == "rejected"
    assert "empty-value" in codes(examples[("fractions", "hard")], "error")
    assert examples[("fractions", "easy")].outputs == CORRECT_EASY

    again = example.run(config, DummyLM(answers), topics=["fractions"])
    assert again["collection"]["duplicates"] == 3 and again["collection"]["written"] == 0
    with tk.open(config=config) as kit:
        assert kit.count(task=TASK) == 3

