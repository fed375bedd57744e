"""`trainkit impact`: exact on constructed snapshot pairs and runs, and like for like when dev sets differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS
from optimize_support import dspy_cache

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.effectiveness.signals import ExampleValue
from dspy_trainkit.optimization.records import ExampleResult, Run
from dspy_trainkit.testing import FewShotLearner, OpenAIServer, make_lm

TOML = """[tasks.qa]
signature = "question -> answer"
"""


def qa(n: int, domain: str, topic: str) -> dict:
    return {"task": "qa", "inputs": {"question": f"what is {n} + {n}?"}, "outputs": {"answer": str(2 * n)},
            "domain": domain, "topic": topic, "difficulty": "easy"}


@pytest.fixture
def kit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trainkit.toml").write_text(TOML, encoding="utf-8")
    with tk.open(disable=QUALITY_PLUGINS) as opened:
        yield opened


def test_data_change_is_exact_per_cell(kit):
    kit.add_many([qa(n, "math", "add") for n in range(4)] + [qa(n, "math", "sub") for n in range(10, 13)])
    kit.snapshot("A")
    by_n = {int(e.inputs["question"].split()[2]): e for e in kit.examples(task="qa")}
    kit.add_many([qa(n, "math", "add") for n in (20, 21)])
    kit.set_status("archived", ids=[by_n[10].id])
    kit.edit(by_n[1].id, outputs={"answer": "2 (one plus one)"})
    kit.snapshot("B")
    report = kit.impact("qa", "A", "B")
    data = report.data
    assert len(data["added"]) == 2 and data["removed"] == [by_n[10].id] and data["changed"] == [by_n[1].id]
    assert data["unchanged"] == 5
    assert data["cells"] == [{"domain": "math", "topic": "add", "difficulty": "easy", "added": 2, "removed": 0,
                              "changed": 1},
                             {"domain": "math", "topic": "sub", "difficulty": "easy", "added": 0, "removed": 1,
                              "changed": 0}]
    assert report.scores is None and report.flips == {"fixed": [], "broken": []}
    kit.store.save_values("qa", [ExampleValue(task="qa", example_id=by_n[10].id, value=-4.0, stderr=1.0,
                                              observations=5),
                                 ExampleValue(task="qa", example_id=by_n[2].id, value=9.0, stderr=1.0,
                                              observations=5)])
    valued = kit.impact("qa", "A", "B").valued_changes
    assert valued == [{"example_id": by_n[10].id, "change": "removed", "value": -4.0, "stderr": 1.0,
                       "observations": 5}]  # the unchanged example's value is not a change's


def test_runs_on_the_same_dev_set_compare_their_stored_results_exactly(kit):
    def run(scores: dict[str, float]) -> Run:
        made = Run(task="qa", optimizer="bootstrap", status="succeeded", dev_ids=list(scores),
                   results=[ExampleResult(example_id=i, phase="optimized", score=s) for i, s in scores.items()])
        kit.store.save_run(made.record(), [r.to_dict() for r in made.results], [])
        return made

    a = run({"d1": 1.0, "d2": 0.0, "d3": 0.0, "d4": 1.0})
    b = run({"d1": 1.0, "d2": 1.0, "d3": 1.0, "d4": 0.0})
    report = kit.impact("qa", a.id, b.id[-8:])
    assert report.scores == {"dev_examples": 4, "a": 50.0, "b": 75.0, "change": 25.0,
                             "how": "stored results (same dev set)"}
    assert report.flips == {"fixed": [{"example_id": "d2", "from": 0.0, "to": 1.0},
                                      {"example_id": "d3", "from": 0.0, "to": 1.0}],
                            "broken": [{"example_id": "d4", "from": 1.0, "to": 0.0}]}
    result = CliRunner().invoke(cli, ["impact", "--task", "qa", "--from", a.id, "--to", b.id])
    assert result.exit_code == 0, result.output
    assert "scores on 4 common dev example(s) (stored results (same dev set)): 50.0 -> 75.0 (+25.0); 2 fixed, " \
           "1 broken" in result.stdout
    data = json.loads(CliRunner().invoke(cli, ["impact", "--task", "qa", "--from", a.id, "--to", b.id,
                                               "--json"]).stdout)
    assert data["scores"]["change"] == 25.0
    missing = CliRunner().invoke(cli, ["impact", "--task", "qa", "--from", "nosuch", "--to", b.id])
    assert missing.exit_code == 1 and "neither a snapshot nor an optimization run" in missing.output


PROGRAM = '''
import dspy


def program():
    return dspy.Predict("question -> answer")


def exact(example, prediction, trace=None):
    return float(str(getattr(prediction, "answer", "")).strip() == str(example.answer).strip())
'''


def test_runs_on_different_dev_sets_are_compared_on_bs_dev_set(kit, tmp_path):
    (tmp_path / "impact_program.py").write_text(PROGRAM, encoding="utf-8")
    import sys

    sys.path.insert(0, str(tmp_path))

    def truth(inputs):
        n = int(inputs["question"].split()[2])
        return {"answer": str(2 * n)}

    kit.add_many([qa(n, "math", "add") for n in range(12)])
    kit.snapshot("A")
    kit.add_many([qa(n, "math", "add") for n in range(12, 24)])
    kit.snapshot("B")
    with dspy_cache(None), OpenAIServer(FewShotLearner(truth, base=0.5, gain=0.1, harm=0.3)) as server:
        lm = make_lm(server)
        options = {"program": "impact_program:program", "metric": "impact_program:exact", "optimizer": "labeled",
                   "lm": lm}
        run_a = kit.optimize("qa", snapshot="A", **options)
        run_b = kit.optimize("qa", snapshot="B", **options)
        assert set(run_a.dev_ids) != set(run_b.dev_ids)
        report = kit.impact("qa", "A", "B", lm=lm)
    assert report.a["run"] == run_a.id and report.b["run"] == run_b.id
    assert report.scores["how"] == f"run {run_a.id[-8:]} scored again on run {run_b.id[-8:]}'s dev set"
    assert report.scores["dev_examples"] == len(run_b.dev_ids)
    assert report.scores["b"] == pytest.approx(run_b.score)  # B's own results, on its own dev set
    assert len(report.data["added"]) == 12
    sys.path.remove(str(tmp_path))
    assert Path(run_a.program_path).is_file()


def test_a_comparison_that_fails_keeps_the_data_change_and_says_why(kit):
    """Runs on different dev sets whose program cannot be scored again (its factory is gone): the data change
    between their snapshots is still reported, the failure is named, and the command exits non-zero."""
    kit.add_many([qa(n, "math", "add") for n in range(4)])
    kit.snapshot("A")
    kit.add_many([qa(n, "math", "sub") for n in range(10, 13)])
    kit.snapshot("B")
    runs = []
    for snapshot, dev in (("A", ["d1", "d2"]), ("B", ["d3", "d4"])):
        made = Run(task="qa", optimizer="bootstrap", status="succeeded", snapshot=snapshot, dev_ids=dev,
                   program="no_such_module_here:program",
                   results=[ExampleResult(example_id=i, phase="optimized", score=1.0) for i in dev])
        kit.store.save_run(made.record(), [r.to_dict() for r in made.results], [])
        runs.append(made)
    report = kit.impact("qa", runs[0].id, runs[1].id)
    assert len(report.data["added"]) == 3 and report.data["unchanged"] == 4
    assert report.scores is None and "no_such_module_here" in report.scores_error
    result = CliRunner().invoke(cli, ["impact", "--task", "qa", "--from", runs[0].id, "--to", runs[1].id])
    assert result.exit_code == 1
    assert "qa: " in result.stdout and "3 added, 0 removed, 0 edited, 4 unchanged" in result.stdout
    assert "scores: not compared (see the error below)" in result.stdout
    assert "the programs were not compared:" in result.stderr and "no_such_module_here" in result.stderr
    shown = CliRunner().invoke(cli, ["impact", "--task", "qa", "--from", runs[0].id, "--to", runs[1].id, "--json"])
    assert shown.exit_code == 1 and json.loads(shown.stdout)["data"]["unchanged"] == 4
