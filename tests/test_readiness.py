"""Readiness: counts per task, domain and cell against the optimizer's minimums, the dev set the split will
really give, optional packages and needs, next steps that are enough when followed; `[optimize]` settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from optimize_support import TASK, cell_records, import_generated, make_project, open_project

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.lifecycle import snapshots

STEP = re.compile(r"^bootstrap (\d+) more (easy|medium|hard) (.+) problems in (math|physics)$")


def follow(steps: list[str]) -> dict[tuple[str, str, str], int]:
    """The cells and counts the 'bootstrap N more ...' steps ask for."""
    wanted = {}
    for step in steps:
        match = STEP.match(step)
        if match:
            count, difficulty, topic, domain = match.groups()
            wanted[(domain, topic, difficulty)] = int(count)
    return wanted


def test_empty_task_is_not_ready_and_following_the_next_steps_makes_it_ready(tmp_path):
    config = make_project(tmp_path / "p")
    with open_project(config) as kit:
        overall, *domains = kit.readiness(TASK)
        assert overall.verdict == "not ready" and overall.domain is None and overall.accepted == 0
        assert overall.needed == 10 and overall.optimizer == "bootstrap"
        assert any("0 accepted examples, bootstrap needs 10" in p for p in overall.problems)
        assert any("dev examples" in p for p in overall.problems)
        assert [d.domain for d in domains] == ["math", "physics"] and not any(d.ready for d in domains)
        wanted = follow(overall.next_steps)
        assert sum(wanted.values()) >= 10 and any("trainkit bootstrap --task problems" in s for s in overall.next_steps)
        # the steps name cells the task defines, and following them exactly is enough
        defined = set(kit.settings.task(TASK).cells())
        assert set(wanted) <= defined
        import_generated(kit, tmp_path, cell_records(wanted))
        overall, *domains = kit.readiness(TASK)
        assert overall.ready, overall.problems
        assert overall.accepted == sum(wanted.values())
        assert overall.next_steps == ["run `trainkit optimize --task problems --optimizer bootstrap --program "
                                      "PKG.MODULE:FACTORY --metric PKG.MODULE:FUNCTION` (set program and metric in "
                                      "[optimize] of trainkit.toml to leave them out)"]


def test_dev_count_is_what_the_split_gives(tmp_path):
    config = make_project(tmp_path / "p")
    with open_project(config) as kit:
        import_generated(kit, tmp_path, cell_records({("math", "fractions", "easy"): 7,
                                                      ("math", "fractions", "hard"): 2,
                                                      ("physics", "energy", "easy"): 3}))
        overall = kit.readiness(TASK)[0]
        kit.snapshot("s1", task=TASK)
        _, dev = snapshots.split(kit, "s1", dev_fraction=0.2, seed=0, task=TASK)
        assert overall.dev == len(dev) == 2  # round(1.4) + round(0.4) + round(0.6)
        assert overall.accepted == 12 and overall.ready
        cells = {(c["domain"], c["topic"], c["difficulty"]): c["accepted"] for c in overall.cells}
        assert cells[("math", "fractions", "easy")] == 7 and cells[("physics", "kinematics", "medium")] == 0
        assert overall.quality["scored"] + overall.quality["unscored"] == 12
        math, physics = kit.readiness(TASK)[1:]
        assert math.quality["scored"] + math.quality["unscored"] == 9
        assert physics.quality["scored"] + physics.quality["unscored"] == 3


def test_optimizer_minimums_packages_and_reflection_lm(tmp_path):
    config = make_project(tmp_path / "p", extra="[optimize]\nmin_examples = { random-search = 20 }\n")
    with open_project(config) as kit:
        import_generated(kit, tmp_path, cell_records({("math", "fractions", "easy"): 12}))
        assert kit.readiness(TASK, optimizer="bootstrap")[0].ready
        search = kit.readiness(TASK, optimizer="random-search")[0]
        assert not search.ready and search.needed == 20
        assert "12 accepted examples, random-search needs 20" in search.problems
        mipro = kit.readiness(TASK, optimizer="mipro")[0]  # optuna is not installed here
        assert any("optuna" in p for p in mipro.problems) and any("pip install optuna" in s for s in mipro.next_steps)
        gepa = kit.readiness(TASK, optimizer="gepa")[0]
        assert "optimizer gepa needs a reflection LM" in gepa.problems
        assert any("[lm.reflection]" in s for s in gepa.next_steps)


def test_min_per_cell_and_domains(tmp_path):
    config = make_project(tmp_path / "p", extra="[tasks.problems.optimize]\nmin_per_cell = 2\n")
    with open_project(config) as kit:
        import_generated(kit, tmp_path, cell_records({cell: 3 for cell in kit.settings.task(TASK).cells()
                                                      if cell[0] == "math"}))
        overall, math, physics = kit.readiness(TASK)
        assert math.ready and not physics.ready and not overall.ready
        assert "domain physics has no accepted examples" in physics.problems
        assert follow(physics.next_steps) == {("physics", t, d): 2 for t in ("kinematics", "energy")
                                              for d in ("easy", "medium")}
        assert any("4 cell(s) hold fewer than min_per_cell = 2" in p for p in overall.problems)


def test_ready_command_exit_codes_and_json(tmp_path, monkeypatch):
    config = make_project(tmp_path / "p")
    open_project(config).close()  # creates the store
    monkeypatch.chdir(tmp_path / "p")
    runner = CliRunner()
    result = runner.invoke(cli, ["ready", "--task", TASK])
    assert result.exit_code == 3, result.output
    assert "task problems" in result.output and "NOT READY for bootstrap" in result.output
    assert "next: bootstrap" in result.output
    with open_project(config) as kit:
        import_generated(kit, tmp_path, cell_records({("math", "fractions", "easy"): 12}))
    result = runner.invoke(cli, ["ready", "--task", TASK, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data[0]["verdict"] == "ready" and data[0]["accepted"] == 12 and data[0]["dev"] == 2
    assert [d["domain"] for d in data] == [None, "math", "physics"]
    assert runner.invoke(cli, ["ready", "--task", TASK, "--optimizer", "mipro"]).exit_code == 3
    assert runner.invoke(cli, ["runs", "--task", TASK]).output.startswith("no optimization runs yet")
    bad = runner.invoke(cli, ["ready", "--optimizer", "nope"])
    assert bad.exit_code == 2
    for command in (["ready", "--task", "problemz"], ["watch", "--once", "--task", "problemz"],
                    ["runs", "--task", "problemz"]):
        typo = runner.invoke(cli, command)
        assert typo.exit_code == 1 and "unknown task 'problemz'" in typo.output and "known tasks: problems" in \
            typo.output, typo.output


def test_next_steps_are_the_same_in_every_process_and_name_what_optimize_needs(tmp_path):
    config = make_project(tmp_path / "p")  # the example sets no [optimize] program or metric
    cells = {("math", t, lvl): 1 for t in ("fractions", "percentages", "linear equations")
             for lvl in ("easy", "medium", "hard")}
    cells.update({("physics", "energy", "easy"): 1, ("physics", "kinematics", "easy"): 1})
    with open_project(config) as kit:  # 11 accepted, but no cell gives a dev example: many cells tie
        import_generated(kit, tmp_path, cell_records(cells))
    runs = set()
    for hash_seed in ("1", "2", "3", "4", "5"):  # set order follows the string hash seed of the process
        done = subprocess.run([str(Path(sys.executable).parent / "trainkit"), "ready", "--task", TASK, "--json"],
                              cwd=tmp_path / "p", env={**os.environ, "PYTHONHASHSEED": hash_seed},
                              capture_output=True, text=True, check=False)
        assert done.returncode == 3, done.stderr
        runs.add(tuple(json.loads(done.stdout)[0]["next_steps"]))
    assert len(runs) == 1, runs
    # the cheapest cells for the dev set, in the task's cell order
    assert list(runs)[0][:2] == ("bootstrap 2 more easy fractions problems in math",
                                 "bootstrap 2 more medium fractions problems in math")
    with open_project(config) as kit:
        import_generated(kit, tmp_path, cell_records({("math", "fractions", "easy"): 12}, start=100), "more.jsonl")
        [step] = kit.readiness(TASK)[0].next_steps
    assert step == ("run `trainkit optimize --task problems --optimizer bootstrap --program PKG.MODULE:FACTORY "
                    "--metric PKG.MODULE:FUNCTION` (set program and metric in [optimize] of trainkit.toml to "
                    "leave them out)")


def test_optimize_settings_are_read_and_checked(tmp_path):
    config = make_project(tmp_path / "p", extra=(
        "[optimize]\noptimizer = \"random-search\"\nmargin = 2.5\nmin_examples = { bootstrap = 20 }\n"
        "fallback = \"labeled\"\n\n[tasks.problems.optimize]\nmin_examples = { labeled = 3 }\ndev_fraction = 0.3\n"))
    settings = tk.load_settings(config)
    cfg = settings.optimize_for(TASK)
    assert cfg.optimizer == "random-search" and cfg.margin == 2.5 and cfg.fallback == "labeled"
    assert cfg.dev_fraction == 0.3 and cfg.minimum("bootstrap") == 20 and cfg.minimum("labeled") == 3
    assert cfg.minimum("mipro") == 200 and settings.optimize_for("other").dev_fraction == 0.2
    for n, (extra, message) in enumerate((
                           ("[optimize]\nmargin = 300\n", "optimize.margin: must be a number of points"),
                           ("[optimize]\nmin_dev = -1\n", "optimize.min_dev: must be a whole number >= 0"),
                           ("[optimize]\nval_fraction = 1\n", "optimize.val_fraction: must be a number above 0"),
                           ("[optimize]\noptimizer = \"fast\"\n", "optimize.optimizer: 'fast' is not one of"),
                           ("[optimize]\nmin_examples = { quick = 3 }\n", "optimize.min_examples.quick: unknown key"),
                           ("[tasks.problems.optimize]\nmetric = \"nocolon\"\n", "must be an import path"),
                           # a signature string is no import path, though it may hold a ':'
                           ("[optimize]\nprogram = \"question -> answer: str\"\n",
                            "optimize.program: must be an import path"),
                           ("[optimize]\nfallback = \"none\"\n", "optimize.fallback"))):
        bad = make_project(tmp_path / f"bad{n}", extra=extra)
        with pytest.raises(tk.ConfigError, match=re.escape(message)) as info:
            tk.load_settings(bad)
        assert re.search(r"trainkit\.toml:\d+:", str(info.value))


class _ScoreByNumber:
    """Scores each problem by its practice number (1..n) / 10, so the quality distribution is known."""

    @tk.hookimpl
    def score(self, examples, context):
        return {i: {"made_up": min(1.0, int(ex.outputs["problem"].split()[1]) / 10)} for i, ex in enumerate(examples)}


def test_quality_distribution_per_task_and_domain(tmp_path):
    from helpers import QUALITY_PLUGINS

    config = make_project(tmp_path / "p")
    with tk.open(config=config, disable=QUALITY_PLUGINS, plugins=[("score_by_number", _ScoreByNumber())]) as kit:
        import_generated(kit, tmp_path, cell_records({("math", "fractions", "easy"): 5,
                                                      ("physics", "energy", "easy"): 3}))
        overall, math, physics = kit.readiness(TASK)  # min_quality 0.5 rejected practice 1-4
        assert overall.accepted == 4
        assert overall.quality == {"scored": 4, "unscored": 0, "mean": 0.65, "min": 0.5, "p25": 0.575,
                                   "median": 0.65, "p75": 0.725, "max": 0.8}
        assert (math.quality["min"], math.quality["max"]) == (0.5, 0.5)
        assert (physics.quality["min"], physics.quality["max"]) == (0.6, 0.8)
        cell = next(c for c in overall.cells if c["topic"] == "energy" and c["difficulty"] == "easy")
        assert cell["mean_quality"] == 0.7
