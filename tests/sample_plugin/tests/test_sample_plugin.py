"""Tests of the sample plugin as an installed distribution (run by the tox env `external-plugin`).

They check what a plugin author would: the distribution's metadata and entry point, each hook on its own, and the
plugin taking part in a real kit and in the real command line. When the distribution is not installed (a plain
`pytest` run of the whole project) the module is skipped, unless TRAINKIT_REQUIRE_SAMPLE_PLUGIN=1 (set by tox)
makes a missing plugin a failure.
"""

from __future__ import annotations

import importlib.metadata
import json
import os

import pytest

try:
    DIST = importlib.metadata.distribution("trainkit-sample-plugin")
except importlib.metadata.PackageNotFoundError:
    if os.environ.get("TRAINKIT_REQUIRE_SAMPLE_PLUGIN") == "1":
        raise RuntimeError("trainkit-sample-plugin is not installed, but TRAINKIT_REQUIRE_SAMPLE_PLUGIN=1") from None
    pytest.skip("trainkit-sample-plugin is not installed (tox -e external-plugin installs it)",
                allow_module_level=True)

import trainkit_sample_plugin as sample  # noqa: E402

import dspy_trainkit as tk  # noqa: E402
from dspy_trainkit.testing import run_cli  # noqa: E402


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("TRAINKIT_") and name != "TRAINKIT_REQUIRE_SAMPLE_PLUGIN":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    sample.SEEN_EVENTS.clear()


def example(answer: str, **fields):
    return tk.Example(task="qa", inputs={"question": "What is 2+2?"}, outputs={"answer": answer}, **fields)


def test_distribution_metadata_and_entry_point():
    assert DIST.version == "0.3.0"
    eps = [ep for ep in DIST.entry_points if ep.group == "dspy_trainkit"]
    assert [(ep.name, ep.value) for ep in eps] == [("sample", "trainkit_sample_plugin")]
    assert eps[0].load() is sample


def test_discovered_and_loaded_under_its_entry_point_name(trainkit_kit):
    pm = trainkit_kit(plugins=["sample"]).pm
    info = {i.name: i for i in pm.plugin_infos()}["sample"]
    assert info.status == "loaded"
    assert info.version == "0.3.0"
    assert info.distribution == "trainkit-sample-plugin"
    assert info.builtin is False
    assert info.hooks == ("import_format", "on_data_changed", "register_commands", "score", "validate")
    assert pm.get_plugin("sample") is sample
    # the hermetic kit loads only what it is told (and the store)
    assert {i.name for i in pm.plugin_infos() if i.status == "loaded"} == {"sample", "sqlstore"}


def test_hermetic_kit_runs_intake_with_only_the_named_plugins(trainkit_kit):
    kit = trainkit_kit(plugins=["sample"], toml='[tasks.qa]\nsignature = "question -> answer"\n')
    stored = kit.add(example("TODO"))
    assert [f.plugin for f in stored.findings] == ["sample"]  # no basic_checks, no other validator
    assert set(stored.scores) == {"sample_length"}


def test_validate_warns_about_todo_only():
    found = sample.validate([example("4"), example("TODO: check"), example("done")], context=None)
    assert list(found) == [1]
    (finding,) = found[1]
    assert (finding.severity, finding.code) == ("warning", "sample-todo")


def test_score_grows_with_output_length_and_stays_in_range():
    scores = sample.score([example(""), example("x" * 50), example("x" * 1000)], context=None)
    assert scores == {0: {"sample_length": 0.0}, 1: {"sample_length": 0.25}, 2: {"sample_length": 1.0}}


def test_takes_part_in_intake_and_hears_about_changes(tmp_path):
    with tk.open("sqlite:///" + str(tmp_path / "kit.db")) as kit:
        todo = kit.add(example("TODO later"))
        assert todo.status == "candidate"
        assert [(f.code, f.plugin) for f in todo.findings] == [("sample-todo", "sample")]
        assert todo.scores["sample_length"] == pytest.approx(len("TODO later") / 200)
        assert todo.provenance["scorers"]["sample_length"] == {"plugin": "sample", "version": "0.3.0"}
        fine = kit.add(example("4"))
        assert fine.status == "accepted"
        assert not fine.findings
    assert sample.SEEN_EVENTS == ["added", "added"]


def test_disabled_plugin_takes_no_part(tmp_path):
    with tk.open("sqlite:///" + str(tmp_path / "kit.db"), disable=["sample"]) as kit:
        stored = kit.add(example("TODO later"))
        assert {i.name: i.status for i in kit.pm.plugin_infos()}["sample"] == "disabled"
    assert stored.status == "accepted"
    assert "sample_length" not in stored.scores
    assert sample.SEEN_EVENTS == []


def test_cli_lists_plugin_and_runs_its_command(tmp_path):
    result = run_cli(["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["sample"]["status"] == "loaded"
    assert listed["sample"]["version"] == "0.3.0"

    assert run_cli(["init"]).exit_code == 0
    result = run_cli(["add", "-t", "qa", "-i", "question=2+2?", "-o", "answer=4"])
    assert result.exit_code == 0, result.output
    result = run_cli(["sample-hello"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["hello from sample", "examples: 1"]
    assert "sample-hello" in run_cli(["--help"]).stdout
