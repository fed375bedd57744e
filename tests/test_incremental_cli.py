"""`trainkit watch` (--once exit codes and --json, --dry-run, the loop stopped by Ctrl-C) and `trainkit runs
--plot` (HTML with one point per run; PNG without matplotlib is one clear error), with DummyLM."""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser

import dspy
import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS
from incremental_program import dummy_lm, record

import dspy_trainkit as tk
from dspy_trainkit import load_settings
from dspy_trainkit.cli.main import cli
from dspy_trainkit.optimization import triggers

TOML = """
[plugins]
disable = [{disabled}]

[tasks.qa]
inputs = ["question"]
outputs = ["answer"]

[optimize]
optimizer = "labeled"
program = "incremental_program:QA"
metric = "incremental_program:exact"

[optimize.triggers]
new_accepted = 5
"""


@pytest.fixture
def project(tmp_path):
    disabled = ", ".join(f'"{name}"' for name in QUALITY_PLUGINS)
    (tmp_path / "trainkit.toml").write_text(TOML.format(disabled=disabled))
    return tmp_path


def add(project, numbers, **options):
    with tk.open(settings=load_settings(env={}, cwd=project)) as kit:
        kit.add_many([record(i, **options) for i in numbers])


def trainkit(*args, lm=True):
    runner = CliRunner()
    if lm:
        with dspy.context(lm=dummy_lm()):
            return runner.invoke(cli, list(args), catch_exceptions=False)
    return runner.invoke(cli, list(args), catch_exceptions=False)


def test_watch_once_json_runs_what_is_due_and_reports_states(project):
    add(project, range(3))
    first = trainkit("watch", "--once", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    [check] = data["checks"]
    assert (check["task"], check["state"], check["ready"], check["due"]) == ("qa", "collecting", False, False)
    assert check["next_steps"] and data["results"] == []

    add(project, range(3, 10))
    second = trainkit("watch", "--once", "--json")
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    [result] = data["results"]
    assert result["status"] == "succeeded" and result["promoted"] and result["hits"][0]["trigger"] == "on_ready"

    add(project, range(4), poisoned=True)
    after = json.loads(trainkit("watch", "--dry-run", "--json").stdout)
    [check] = after["checks"]
    assert (check["state"], check["champion"], check["due"]) == ("optimized", result["run_id"], False)
    assert check["observation"]["new_accepted"] == 4


def test_watch_once_exits_1_when_a_reoptimization_fails(project):
    add(project, range(10))
    failed = trainkit("watch", "--once", "--json", "--program", "no_such_module:factory")
    assert failed.exit_code == 1
    [result] = json.loads(failed.stdout)["results"]
    assert result["status"] == "failed" and "no_such_module" in result["error"]
    text = trainkit("watch", "--once")  # within retry_after: waits instead of failing again
    assert text.exit_code == 0
    assert "waiting: the last attempt failed" in text.output
    retried = trainkit("watch", "--once", "--json", "--retry-after", "0")  # no wait: the config's program runs
    assert retried.exit_code == 0
    assert [r["status"] for r in json.loads(retried.stdout)["results"]] == ["succeeded"]


def test_watch_json_stays_valid_json_while_dspy_prints_its_progress(project):
    add(project, range(20))  # BootstrapFewShot print()s "Bootstrapped N full traces ..." while it compiles
    once = trainkit("watch", "--once", "--json", "--optimizer", "bootstrap")
    assert once.exit_code == 0, once.output
    [result] = json.loads(once.stdout)["results"]
    assert result["status"] == "succeeded"
    assert "Bootstrapped" not in once.output


def test_watch_loop_json_lines_stay_valid_while_dspy_prints(project, monkeypatch):
    add(project, range(20))

    def interrupted(self, seen, timeout, stop):
        raise KeyboardInterrupt

    monkeypatch.setattr(triggers.ChangeMarks, "wait", interrupted)
    result = trainkit("watch", "--json", "--interval", "5m", "--optimizer", "bootstrap")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.strip().splitlines()
    assert [r["status"] for r in json.loads(line)["results"]] == ["succeeded"]


def test_watch_text_output_says_state_and_next_steps(project):
    add(project, range(2))
    result = trainkit("watch", "--once", lm=False)
    assert result.exit_code == 0
    assert "task qa: collecting, not ready" in result.output
    assert "next:" in result.output


def test_watch_refuses_a_bad_interval(project):
    result = CliRunner().invoke(cli, ["watch", "--interval", "soon"])
    assert result.exit_code == 2
    assert "'soon' is not a duration" in result.output


def test_watch_loop_runs_a_step_and_stops_cleanly_on_ctrl_c(project, monkeypatch):
    add(project, range(10))

    def interrupted(self, seen, timeout, stop):
        raise KeyboardInterrupt

    monkeypatch.setattr(triggers.ChangeMarks, "wait", interrupted)
    result = trainkit("watch", "--json", "--interval", "5m")
    assert result.exit_code == 0
    [line] = result.stdout.strip().splitlines()
    step = json.loads(line)
    assert [r["status"] for r in step["results"]] == ["succeeded"]
    assert "Traceback" not in result.output


class Circles(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "circle" and "point" in attrs.get("class", ""):
            self.found.append(attrs)


def test_runs_plot_draws_one_point_per_run_with_its_scores(project):
    add(project, range(10))
    assert trainkit("watch", "--once").exit_code == 0
    add(project, range(5), poisoned=True)
    assert trainkit("watch", "--once").exit_code == 0
    listed = json.loads(trainkit("runs", "--json", "--plot", str(project / "trend.html")).stdout)
    parser = Circles()
    parser.feed((project / "trend.html").read_text(encoding="utf-8"))
    optimized = {c["data-run"]: c for c in parser.found if c["data-kind"] == "optimized"}
    baseline = {c["data-run"]: c for c in parser.found if c["data-kind"] == "baseline"}
    assert set(optimized) == set(baseline) == {r["id"] for r in listed}
    for run in listed:
        assert float(optimized[run["id"]]["data-value"]) == run["score"]
        assert float(baseline[run["id"]]["data-value"]) == run["baseline_score"]
        assert optimized[run["id"]]["data-champion"] == str(run["champion"]).lower()
    assert [r["champion"] for r in listed] == [True, False]  # the worse challenger did not take over


def test_runs_plot_png_without_matplotlib_is_one_clear_error(project, monkeypatch):
    add(project, range(10))
    assert trainkit("watch", "--once").exit_code == 0
    for name in ("matplotlib", "matplotlib.figure"):  # as if not installed
        monkeypatch.setitem(sys.modules, name, None)
    result = CliRunner().invoke(cli, ["runs", "--plot", str(project / "trend.png")])
    assert result.exit_code == 1
    assert "PNG plots need matplotlib" in result.output and "dspy-trainkit[plot]" in result.output
    assert "Traceback" not in result.output
    assert not (project / "trend.png").exists()


def test_ready_shows_the_collecting_then_optimized_state(project):
    add(project, range(10))
    before = CliRunner().invoke(cli, ["ready", "--json", "--task", "qa"])
    [task_level] = [r for r in json.loads(before.stdout) if r["domain"] is None]
    assert (task_level["ready"], task_level["state"]) == (True, "collecting")
    assert "state: collecting" in CliRunner().invoke(cli, ["ready", "--task", "qa"]).output
    assert trainkit("watch", "--once").exit_code == 0
    after = CliRunner().invoke(cli, ["ready", "--json", "--task", "qa"])
    [task_level] = [r for r in json.loads(after.stdout) if r["domain"] is None]
    assert task_level["state"] == "optimized"


def test_watch_over_real_http_records_an_lm_outage_then_recovers(project):
    from dspy_trainkit.testing import OpenAIServer, by_inputs, dspy_reply, make_lm, server_error

    add(project, range(10))
    with OpenAIServer(lambda _body: server_error()) as down, dspy.context(lm=make_lm(down)):
        failed = CliRunner().invoke(cli, ["watch", "--once"])
    assert failed.exit_code == 1
    assert "  failed: the program produced no prediction" in failed.output and "Traceback" not in failed.output
    assert "re-optimizing task qa failed" not in failed.output  # printed once, not logged as well
    with tk.open(settings=load_settings(env={}, cwd=project)) as kit:
        assert [r.status for r in kit.runs("qa")] == ["failed"] and kit.champion("qa") is None

    answers = by_inputs([({"question": f"question {i:03d}"}, dspy_reply({"answer": f"answer {i:03d}"}))
                         for i in range(10)])
    with OpenAIServer(answers) as up, dspy.context(lm=make_lm(up)):
        waiting = CliRunner().invoke(cli, ["watch", "--once", "--json"])
        assert waiting.exit_code == 0 and up.counts["requests"] == 0  # within --retry-after: no LM call
        assert "the last attempt failed" in json.loads(waiting.stdout)["checks"][0]["blocked"]
        recovered = CliRunner().invoke(cli, ["watch", "--once", "--json", "--retry-after", "0"])
        assert up.counts["requests"] > 0
    assert recovered.exit_code == 0, recovered.output
    [result] = json.loads(recovered.stdout)["results"]
    assert result["status"] == "succeeded" and result["promoted"] and result["score"] == 100.0


def test_ctrl_c_during_a_run_exits_130_and_the_run_is_recorded_as_interrupted(project, monkeypatch):
    from dspy_trainkit.optimization import runs

    add(project, range(10))

    def interrupted_compile(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "_execute", interrupted_compile)
    result = trainkit("watch", "--interval", "5m")
    assert result.exit_code == 130
    assert "interrupted while optimizing task qa" in result.output and "Traceback" not in result.output
    with tk.open(settings=load_settings(env={}, cwd=project)) as kit:
        assert [r.status for r in kit.runs("qa")] == ["interrupted"]
    once = trainkit("watch", "--once")
    assert once.exit_code == 130
