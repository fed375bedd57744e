"""What an outside review of the effectiveness commands found, kept fixed: valuing from a run of another task,
pooled re-runs inflating confidence, values for examples no longer accepted, one-character recommendation ids,
webhook settings that leaked their token, and a failing alert channel silencing the others."""

from __future__ import annotations

import logging

import dspy_trainkit_alert_channels as channels
import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.effectiveness.evidence import _pool
from dspy_trainkit.optimization.records import Run

TOML = '[tasks.qa]\nsignature = "question -> answer"\n[tasks.other]\nsignature = "question -> answer"\n'


@pytest.fixture
def kit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trainkit.toml").write_text(TOML, encoding="utf-8")
    with tk.open(disable=QUALITY_PLUGINS) as opened:
        opened.add_many([{"task": "qa", "inputs": {"question": f"q{n}?"}, "outputs": {"answer": str(n)}}
                         for n in range(8)])
        yield opened


def stored_run(kit, task: str, ids: list[str], *, status: str = "succeeded", metric: str = "m:exact") -> Run:
    """A random-search run whose candidates show pairs of `ids`; a candidate showing ids[0] scores 40 lower."""
    run = Run(task=task, optimizer="random-search", status=status, val_ids=["v1", "v2"], metric=metric)
    candidates = [{"seed": n, "score": 80.0 - (40.0 if ids[0] in pair else 0.0) + n % 3, "demo_ids": list(pair),
                   "subscores": []}
                  for n, pair in enumerate((ids[i % len(ids)], ids[(i + 1) % len(ids)]) for i in range(24))]
    kit.store.save_run(run.record(), [], candidates)
    return run


def test_value_from_a_run_of_another_task_or_a_failed_one_is_refused_and_writes_nothing(kit):
    ids = [e.id for e in kit.examples(task="qa")]
    stored_run(kit, "qa", ids)
    assert kit.value("qa").values
    before = [(v.example_id, v.value) for v in kit.values("qa")]
    for other in (stored_run(kit, "other", ids), stored_run(kit, "qa", ids, status="failed")):
        with pytest.raises(tk.TrainkitError, match="from one of its successful runs"):
            kit.value("qa", run=other.id)
    assert [(v.example_id, v.value) for v in kit.values("qa")] == before


def test_a_rerun_with_identical_candidates_is_counted_once_and_another_metric_is_its_own_pool(kit):
    ids = [e.id for e in kit.examples(task="qa")]
    first = stored_run(kit, "qa", ids)
    once = {v.example_id: v for v in kit.value("qa").values}
    stored_run(kit, "qa", ids)  # the same candidates again: a cached re-run
    again = {v.example_id: v for v in kit.value("qa").values}
    assert {i: (v.value, v.observations) for i, v in again.items()} == {i: (v.value, v.observations)
                                                                         for i, v in once.items()}
    other_metric = stored_run(kit, "qa", ids, metric="m:lenient")
    runs = [r for r in kit.store.list_runs("qa") if r["id"] in (first.id, other_metric.id)]
    pools = _pool(runs, iter(kit.store.iter_candidates("qa")))
    assert len(pools) == 2 and all(len(p.candidates) == 24 for p in pools)


def test_only_accepted_examples_are_valued(kit):
    ids = [e.id for e in kit.examples(task="qa")]
    stored_run(kit, "qa", ids)
    kit.set_status("rejected", ids=[ids[0]], reason="wrong label")
    valued = {v.example_id for v in kit.value("qa").values}
    assert ids[0] not in valued and ids[1] in valued


def test_recommendation_ids_need_four_characters(kit):
    with pytest.raises(tk.TrainkitError, match="at least 4 characters"):
        kit.apply_recommendation("qa", "5")
    result = CliRunner().invoke(cli, ["recommend", "--task", "qa", "--apply", "a"])
    assert result.exit_code == 1 and "at least 4 characters" in result.output


def test_a_webhook_setting_that_is_not_a_url_is_refused_without_showing_it(caplog):
    with caplog.at_level(logging.ERROR):
        assert channels.post("hooks.slack.com/services/T000/B000/SECRETTOKEN", {"id": "a"}, timeout=1, retries=2) \
            is False
        assert channels.post("http://127.0.0.1:99999/hook/SECRET2", {"id": "b"}, timeout=1, retries=0) is False
    assert "SECRETTOKEN" not in caplog.text and "SECRET2" not in caplog.text
    assert "not an http(s) URL" in caplog.text


def test_a_channel_that_cannot_write_its_file_does_not_stop_the_webhook(tmp_path, monkeypatch, caplog):
    posted = []
    monkeypatch.setattr(channels, "post", lambda url, payload, **kw: posted.append(payload["id"]) or True)

    class Context:
        settings = type("S", (), {"project_dir": tmp_path})()

        @staticmethod
        def plugin_settings(name, task=None, domain=None):
            return {"jsonl": "/proc/cannot/alerts.jsonl", "webhook": "https://example.invalid/hook"}

    alert = type("A", (), {"id": "x1", "severity": "warning", "title": "t", "message": "m",
                           "to_dict": lambda self: {"id": "x1"}})()
    with caplog.at_level(logging.ERROR):
        channels.on_alert(alert, Context())
    assert posted == ["x1"] and "not written to /proc/cannot/alerts.jsonl" in caplog.text
