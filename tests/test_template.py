"""The `template` strategy: a verified, balanced dataset for the example problem task with no LM.

The example task (examples/problem_generation/trainkit.toml) has 13 cells: math x 3 topics x 3 levels and
physics x 2 topics x 2 levels. No `[lm]` table is configured in these tests, so any LM use would fail.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
from dspy_trainkit_consistency import Rules, check_example
from dspy_trainkit_template import BUILTIN, Made, Template, answer_value, evaluate, fmt
from dspy_trainkit_template.strategy import level_of

import dspy_trainkit as tk
from dspy_trainkit.errors import ConfigError

EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "problem_generation" / "trainkit.toml"
CELLS = 13


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(EXAMPLE_CONFIG, folder / "trainkit.toml")
    return folder


def open_project(folder: Path, name: str = "store.db", extra: str = "") -> tk.Kit:
    if extra:
        with (folder / "trainkit.toml").open("a", encoding="utf-8") as fh:
            fh.write("\n" + extra + "\n")
    return tk.open(f"sqlite:///{folder / name}", config=folder / "trainkit.toml")


def test_no_lm_is_configured_for_the_example_task(project: Path) -> None:
    with open_project(project) as kit:
        assert kit.settings.lm_for("problems", "generation").model is None
        assert len(kit.settings.task("problems").cells()) == CELLS


def test_template_dataset_is_verified_balanced_and_all_accepted(project: Path) -> None:
    per_cell = 8
    with open_project(project) as kit:
        report = kit.synthesize("problems", "template", CELLS * per_cell, seed=7)
        assert report.made == CELLS * per_cell and report.failures == 0
        assert report.accepted == CELLS * per_cell
        assert report.rejected == report.candidate == report.duplicates == report.invalid == 0
        stored = list(kit.examples(task="problems"))
    cells = Counter((ex.domain, ex.topic, ex.difficulty) for ex in stored)
    assert set(cells) == _cells(project) and set(cells.values()) == {per_cell}  # every cell, equally
    rules = Rules({})
    by_name = {t.name: t for t in BUILTIN}
    for ex in stored:
        assert ex.status == "accepted" and ex.source == "synthetic"
        assert not [f for f in ex.findings if f.severity in ("error", "warning")]
        assert ex.inputs == {"domain": ex.domain, "topic": ex.topic, "difficulty": ex.difficulty}
        assert set(ex.outputs) == {"problem", "solution", "answer"}
        # the answer, checked again by computation, and by the consistency validator
        template = by_name[ex.metadata["template"]]
        params = {k: v for k, v in ex.metadata["params"].items()}
        assert template.verify(params, answer_value(ex.outputs["answer"]))
        assert check_example(ex, rules) == []
        assert ex.provenance["strategy"] == "template" and ex.provenance["random_seed"] == 7
        assert ex.metadata["verified"] is True


def _cells(folder: Path) -> set[tuple[str | None, str | None, str | None]]:
    with tk.open(f"sqlite:///{folder / 'cells.db'}", config=folder / "trainkit.toml") as kit:
        return set(kit.settings.task("problems").cells())


def test_count_not_divisible_by_cells_gives_the_first_cells_one_more(project: Path) -> None:
    with open_project(project) as kit:
        report = kit.synthesize("problems", "template", CELLS * 2 + 3, seed=1)
        counts = Counter((ex.domain, ex.topic, ex.difficulty) for ex in kit.examples(task="problems"))
    assert report.accepted == CELLS * 2 + 3
    first = kit.settings.task("problems").cells()[:3]
    assert {counts[c] for c in first} == {3}
    assert sorted(counts.values()) == [2] * (CELLS - 3) + [3] * 3
    assert report.diversity["min_per_cell"] == 2 and report.diversity["max_per_cell"] == 3
    assert report.diversity["cells_covered"] == CELLS and report.diversity["coverage"] == 1.0


def test_same_seed_same_data_other_seed_other_data_and_rerun_stores_nothing(project: Path) -> None:
    def hashes(name: str, seed: int) -> list[str]:
        with open_project(project, name) as kit:
            kit.synthesize("problems", "template", 39, seed=seed)
            return sorted(ex.content_hash for ex in kit.examples(task="problems"))

    first, again, other = hashes("a.db", 5), hashes("b.db", 5), hashes("c.db", 6)
    assert first == again and len(first) == 39
    assert len(set(first) & set(other)) < 5
    with open_project(project, "a.db") as kit:
        rerun = kit.synthesize("problems", "template", 39, seed=5)
        assert rerun.made == 39 and rerun.duplicates == 39 and rerun.accepted == 0
        assert kit.count(task="problems") == 39
        bigger = kit.synthesize("problems", "template", 52, seed=5)  # the same sequence, extended
        assert bigger.duplicates == 39 and bigger.accepted == 13
        assert kit.count(task="problems") == 52


def test_selection_narrows_the_cells_and_dry_run_stores_nothing(project: Path) -> None:
    with open_project(project) as kit:
        report = kit.synthesize("problems", "template", 6, where=["topic=linear equations"], difficulty="hard",
                                dry_run=True)
        assert report.dry_run and report.accepted == 6 and kit.count() == 0
        assert report.diversity["cells_total"] == 1
        report = kit.synthesize("problems", "template", 6, domain="physics")
        assert {(ex.domain, ex.topic) for ex in kit.examples()} <= {("physics", "kinematics"), ("physics", "energy")}
        assert report.diversity["cells_total"] == 4 and report.accepted == 6


def test_cells_without_a_template_are_noted_and_a_task_without_cells_is_an_error(project: Path) -> None:
    extra = ('[tasks.mixed]\nsignature = "domain, topic, difficulty -> problem, solution, answer"\n'
             'topics = ["fractions", "poetry"]\ndifficulties = ["easy"]\n[tasks.mixed.domains.math]\n'
             '[tasks.bare]\nsignature = "question -> answer"\n')
    with open_project(project, extra=extra) as kit:
        report = kit.synthesize("mixed", "template", 4)
        assert report.accepted == 4 and {ex.topic for ex in kit.examples(task="mixed")} == {"fractions"}
        assert any("'poetry'" in note for note in report.notes)
        with pytest.raises(ConfigError, match="no topic x difficulty cells"):
            kit.synthesize("bare", "template", 4)


def test_template_fields_map_onto_a_task_with_other_field_names(project: Path) -> None:
    extra = ('[tasks.qa]\nsignature = "question, level -> answer"\ntopics = ["percentages"]\n'
             'difficulties = ["easy", "hard"]\n[plugin.template.tasks.qa]\n'
             'fields = { problem = "question", difficulty = "level" }\n')
    with open_project(project, extra=extra) as kit:
        report = kit.synthesize("qa", "template", 4)
        examples = list(kit.examples(task="qa"))
    assert report.accepted == 4
    for ex in examples:
        assert set(ex.inputs) == {"question", "level"} and set(ex.outputs) == {"answer"}
        assert ex.inputs["level"] == ex.difficulty


def test_a_task_whose_fields_the_templates_cannot_fill_is_a_clear_error(project: Path) -> None:
    extra = '[tasks.qa]\nsignature = "question -> answer"\ntopics = ["percentages"]\ndifficulties = ["easy"]\n'
    with open_project(project, extra=extra) as kit, pytest.raises(ConfigError, match="cannot fill"):
        kit.synthesize("qa", "template", 2)


USER_TEMPLATES = '''
from fractions import Fraction
from dspy_trainkit_template import Made, Template


def make(rng, level):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return Made(f"What is the ratio total of {a} and {b}?", f"Add them: {a} + {b} = {a + b}.", str(a + b),
                {"a": a, "b": b})


def wrong(rng, level):
    a = rng.randint(2, 40)
    return Made(f"Double {a}: what is it?", f"Two times {a} is {2 * a}.", str(2 * a + 1), {"a": a})


TEMPLATES = [Template("ratio-sum", "ratios", make, lambda p, answer: p["a"] + p["b"] == answer)]
BROKEN = Template("broken", "doubling", wrong, lambda p, answer: 2 * p["a"] == answer)
'''


def test_user_templates_from_settings_and_a_failed_check_is_counted_not_stored(project: Path) -> None:
    (project / "my_templates.py").write_text(USER_TEMPLATES, encoding="utf-8")
    extra = ('[tasks.custom]\nsignature = "domain, topic, difficulty -> problem, solution, answer"\n'
             'topics = ["ratios", "doubling"]\ndifficulties = ["easy", "hard"]\n[tasks.custom.domains.math]\n'
             '[plugin.template]\ntemplates = ["my_templates:TEMPLATES", "my_templates:BROKEN"]\nbuiltin = false\n')
    with open_project(project, extra=extra) as kit:
        report = kit.synthesize("custom", "template", 8, seed=3)
        stored = list(kit.examples(task="custom"))
    assert report.made == 4 and report.accepted == 4
    assert report.failures == 4 and report.failures_by_reason == {"check-failed": 4}
    assert "its check rejects" in report.failure_samples[0]["message"]
    assert {ex.topic for ex in stored} == {"ratios"}


def test_bad_template_settings_are_config_errors(project: Path) -> None:
    with open_project(project, extra='[plugin.template]\ntemplates = ["nowhere_module:X"]\n') as kit:
        with pytest.raises(ConfigError, match=r"'nowhere_module:X': cannot import it \(No module named"):
            kit.synthesize("problems", "template", 2)
        with pytest.raises(ConfigError, match="unknown option 'colour'"):
            kit.synthesize("problems", "template", 2, options={"colour": "red"})


@pytest.mark.parametrize("template", BUILTIN, ids=lambda t: t.name)
def test_every_builtin_template_verifies_and_passes_consistency_at_every_level(template: Template) -> None:
    rules = Rules({})
    for level in range(3):
        rng = random.Random(f"check:{template.name}:{level}")
        for _ in range(150):
            made = template.make(rng, level)
            value = answer_value(made.answer)
            assert value is not None and template.verify(made.params, value), made
            example = tk.Example(task="problems", inputs={"domain": "math", "topic": template.topic,
                                                          "difficulty": "easy"},
                                 outputs={"problem": made.problem, "solution": made.solution,
                                          "answer": made.answer})
            assert check_example(example, rules) == [], made


def test_verifiers_reject_a_wrong_answer() -> None:
    for template in BUILTIN:
        made: Made = template.make(random.Random(1), 1)
        value = answer_value(made.answer)
        assert template.verify(made.params, value)
        assert not template.verify(made.params, value + 1)


def test_numbers_and_levels() -> None:
    assert fmt(Fraction(5, 2)) == "2.5" and fmt(Fraction(1, 3)) == "1/3" and fmt(Fraction(6, 3)) == "2"
    assert fmt(Fraction(3, 4), fraction=True) == "3/4"
    assert answer_value("x = -4") == -4 and answer_value("$1,200") == 1200 and answer_value("7/12") == Fraction(7, 12)
    assert answer_value("12.5 m/s") == Fraction(25, 2) and answer_value("none") is None
    assert evaluate("(a + b) * c - d / e", a=1, b=2, c=3, d=8, e=4) == 7
    with pytest.raises(ValueError):
        evaluate("__import__('os')")
    assert level_of("easy", ("easy", "medium"), {}) == 0 and level_of("medium", ("easy", "medium"), {}) == 1
    assert level_of("tier3", ("tier1", "tier2", "tier3"), {}) == 2
    assert level_of("tier2", ("tier1", "tier2", "tier3"), {}) == 1
    assert level_of("foundation", ("foundation", "higher"), {"foundation": 0}) == 0
