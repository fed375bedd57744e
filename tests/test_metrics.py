"""Prometheus metrics computed from the store: a scrape parses with prometheus_client's own parser on both
backends, its values move when data is imported, alerts open and a task is optimized; the textfile is written
whole; `trainkit metrics serve` answers over HTTP; the shipped alert rules parse and name only real metrics."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from optimize_support import (
    METRIC,
    PROGRAM,
    TASK,
    cell_records,
    dspy_cache,
    good_answer,
    import_generated,
    make_project,
    open_project,
)
from prometheus_client.parser import text_string_to_metric_families

from dspy_trainkit.cli.main import cli
from dspy_trainkit.operations import instruments
from dspy_trainkit.operations.metrics import METRIC_NAMES, render
from dspy_trainkit.optimization.records import Run
from dspy_trainkit.testing import OpenAIServer, make_lm

ROOT = Path(__file__).resolve().parent.parent
#: the 9 math cells, 2 examples each, and two physics cells: enough for the example task's optimizer
DATA = {**{("math", t, lvl): 2 for t in ("fractions", "percentages", "linear equations")
           for lvl in ("easy", "medium", "hard")},
        ("physics", "kinematics", "easy"): 3, ("physics", "energy", "easy"): 3}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape as {(name, sorted labels): value}, through prometheus_client's parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scrape: dict, name: str, **labels: str) -> float | None:
    return scrape.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def project(tmp_path, store_url):
    config = make_project(tmp_path / "project", store_url)
    with open_project(config) as kit:
        yield kit


def test_scrape_parses_and_moves_with_imports_alerts_and_runs(project, tmp_path):
    kit = project
    before = samples(render(kit))
    assert value(before, "trainkit_examples", task=TASK, status="accepted", source="imported") is None
    assert value(before, "trainkit_metrics_section_up", section="examples") == 1
    import_generated(kit, tmp_path, cell_records(DATA))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**cell_records({("math", "fractions", "easy"): 1}, start=500)[0],
                               "outputs": {"problem": "", "solution": "", "answer": ""}}) + "\n")
    kit.import_files([bad])
    after = samples(render(kit))
    assert value(after, "trainkit_examples", task=TASK, status="accepted", source="imported") == 24
    assert value(after, "trainkit_examples", task=TASK, status="rejected", source="imported") == 1
    assert value(after, "trainkit_intake_received_total", task=TASK, source="imported") == 25
    assert any(name == "trainkit_rejection_findings" and dict(labels)["task"] == TASK and v > 0
               for (name, labels), v in after.items())
    assert value(after, "trainkit_task_ready", task=TASK) == 1
    # a failed run opens an alert; both show
    kit.store.save_run(Run(task=TASK, optimizer="bootstrap", status="failed", error="LM unreachable").record())
    kit.check_alerts([TASK])
    alerted = samples(render(kit))
    assert value(alerted, "trainkit_optimization_runs", task=TASK, status="failed") == 1
    assert value(alerted, "trainkit_alerts_open", task=TASK, rule="run-failed", severity="critical",
                 status="open") == 1
    assert all(v == 1 for (name, _), v in alerted.items() if name == "trainkit_metrics_section_up")


def test_optimizing_sets_the_champion_score(tmp_path):
    config = make_project(tmp_path / "project", f"sqlite:///{tmp_path / 'store.db'}")
    with open_project(config) as kit, dspy_cache(None):
        import_generated(kit, tmp_path, cell_records(DATA))
        assert value(samples(render(kit)), "trainkit_champion_score", task=TASK) is None
        with OpenAIServer(good_answer) as server:
            run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        scrape = samples(render(kit))
    assert run.promoted
    assert value(scrape, "trainkit_champion_score", task=TASK) == run.score
    assert value(scrape, "trainkit_optimization_runs", task=TASK, status="succeeded") == 1


def test_textfile_and_backup_age(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "notes.txt").write_text("not a backup")
    out = tmp_path / "textfile" / "trainkit.prom"
    out.parent.mkdir()
    assert runner.invoke(cli, ["metrics", "--textfile", str(out), "--backup-dir", str(backups)]).exit_code == 0
    none_yet = samples(out.read_text())
    assert value(none_yet, "trainkit_backup_age_seconds") == float("inf")  # a foreign file is not a backup
    assert value(none_yet, "trainkit_backup_newest_timestamp_seconds") == 0
    assert runner.invoke(cli, ["backup", "--dir", str(backups), "--quiet"]).exit_code == 0
    result = runner.invoke(cli, ["metrics", "--textfile", str(out), "--backup-dir", str(backups)])
    assert result.exit_code == 0, result.output
    scrape = samples(out.read_text())
    assert 0 <= value(scrape, "trainkit_backup_age_seconds") < 60
    assert time.time() - 60 < value(scrape, "trainkit_backup_newest_timestamp_seconds") <= time.time()
    assert value(scrape, "trainkit_collector_spill_files") == 0
    assert [p.name for p in out.parent.iterdir()] == ["trainkit.prom"]  # no temporary file left beside it
    missing = runner.invoke(cli, ["metrics", "--textfile", str(tmp_path / "nowhere" / "x.prom")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_serve_answers_on_loopback(tmp_path):
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    process = subprocess.Popen([sys.executable, "-m", "dspy_trainkit", "metrics", "serve", "--port", "0"],
                               cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert match, line
        with urllib.request.urlopen(match.group(0), timeout=30) as response:
            text = response.read().decode()
        assert value(samples(text), "trainkit_metrics_section_up", section="examples") == 1
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_alert_rules_parse_and_name_only_exposed_metrics():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in re.findall(r"\btrainkit_[a-z_]+", expr)}
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    process = {f"{name}{suffix}" for name in instruments.NAMES for suffix in suffixes}
    assert used and used <= set(METRIC_NAMES) | process
    assert used & process  # the process counters have rules too
    # every built-in effectiveness alert rule (docs/effectiveness.md's table) has a Prometheus rule
    table = (ROOT / "docs" / "effectiveness.md").read_text().split("## Alerts", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.M))
    mirrored = {m for expr in exprs for m in re.findall(r'rule="([a-z-]+)"', expr)}
    assert documented and documented == mirrored


def test_metric_names_list_what_a_scrape_exposes(tmp_path):
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    backups = tmp_path / "b"
    backups.mkdir()
    result = CliRunner().invoke(cli, ["metrics", "--backup-dir", str(backups)])
    assert result.exit_code == 0, result.output
    exposed = {s.name for f in text_string_to_metric_families(result.stdout) for s in f.samples}
    declared = {f.name for f in text_string_to_metric_families(result.stdout)}
    assert exposed <= set(METRIC_NAMES)
    assert {n.removesuffix("_total") for n in METRIC_NAMES} == {n.removesuffix("_total") for n in declared}


def _process_scrape(kit) -> dict:
    return samples(render(kit))  # render adds this process's counters (instruments) by default


def _delta(after: dict, before: dict, name: str, **labels: str) -> float:
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


def test_process_counters_move_with_import_collect_lm_calls_and_optimize(tmp_path):
    """The counters only a working process sees, through prometheus_client's parser: intake by outcome and
    rejection code with its batch time, the collector's records, queue, drops and spills, LM requests,
    latency, retries and errors by class, tokens, and optimizations by outcome."""
    from dspy_trainkit.collection import Collector
    from dspy_trainkit.generation.lm import check_lm
    from dspy_trainkit.testing import Faults, rate_limited

    config = make_project(tmp_path / "project", f"sqlite:///{tmp_path / 'store.db'}")
    with open_project(config) as kit, dspy_cache(None):
        start = _process_scrape(kit)
        import_generated(kit, tmp_path, cell_records(DATA))
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps({**cell_records({("math", "fractions", "easy"): 1}, start=500)[0],
                                   "outputs": {"problem": "", "solution": "", "answer": ""}}) + "\n"
                       + "not json\n")
        kit.import_files([bad])
        imported = _process_scrape(kit)
        assert _delta(imported, start, "trainkit_intake_records_total", task=TASK, source="imported",
                      outcome="accepted") == 24
        assert _delta(imported, start, "trainkit_intake_records_total", task=TASK, source="imported",
                      outcome="rejected") == 1
        assert sum(v for (name, labels), v in imported.items() if name == "trainkit_intake_records_total"
                   and dict(labels)["outcome"] == "invalid") - sum(
            v for (name, labels), v in start.items() if name == "trainkit_intake_records_total"
            and dict(labels)["outcome"] == "invalid") == 1
        codes = {dict(labels)["code"]: v - (start.get((name, labels)) or 0) for (name, labels), v in imported.items()
                 if name == "trainkit_intake_rejections_total" and dict(labels)["task"] == TASK}
        # counters are per process: another test in this process may have counted other codes before
        assert codes.get("empty-value", 0) >= 1 and all(v >= 0 for v in codes.values()), codes
        assert _delta(imported, start, "trainkit_intake_batch_duration_seconds_count") >= 2
        assert _delta(imported, start, "trainkit_intake_batch_duration_seconds_sum") > 0

        record = cell_records({("physics", "energy", "easy"): 1}, start=900)[0]
        assert kit.collect(TASK, record["inputs"], record["outputs"], domain="physics", topic="energy",
                           difficulty="easy")
        assert kit.collection.flush(timeout=60)
        collected = _process_scrape(kit)
        assert _delta(collected, imported, "trainkit_collector_records_total", outcome="submitted") == 1
        assert _delta(collected, imported, "trainkit_collector_records_total", outcome="written") == 1
        assert _delta(collected, imported, "trainkit_intake_records_total", task=TASK, source="collected",
                      outcome="accepted") == 1
        # a collector whose writer never runs: the second record finds the queue full (a drop), and closing
        # saves the queued one to a spill file
        # the gauge is per process: a collector another test left behind may still hold records, so compare
        # against the depth just before
        gc.collect()
        queued_before = value(_process_scrape(kit), "trainkit_collector_queue_depth")
        stuck = Collector(kit, max_queue=1)
        stuck._ensure_thread = lambda: None
        assert stuck.submit(TASK, record["inputs"], record["outputs"])
        assert value(_process_scrape(kit), "trainkit_collector_queue_depth") - queued_before == 1
        assert not stuck.submit(TASK, record["inputs"], record["outputs"])
        stuck.close(timeout=0)
        lossy = _process_scrape(kit)
        assert _delta(lossy, collected, "trainkit_collector_records_total", outcome="dropped") == 1
        assert _delta(lossy, collected, "trainkit_collector_records_total", outcome="spilled") == 1
        assert value(lossy, "trainkit_collector_queue_depth") - queued_before == 0

        with OpenAIServer(good_answer, faults=Faults(schedule={1: rate_limited(retry_after=0)})) as server:
            lm = make_lm(server)
            check_lm(lm)
            called = _process_scrape(kit)
            model = lm.model
            assert _delta(called, lossy, "trainkit_lm_requests_total", model=model) == 2
            assert _delta(called, lossy, "trainkit_lm_errors_total", model=model, reason="rate_limit") == 1
            assert _delta(called, lossy, "trainkit_lm_retries_total", model=model, reason="rate_limit") == 1
            assert _delta(called, lossy, "trainkit_lm_items_total", model=model, outcome="succeeded") == 1
            assert _delta(called, lossy, "trainkit_lm_request_duration_seconds_count", model=model,
                          outcome="ok") == 1
            assert _delta(called, lossy, "trainkit_lm_request_duration_seconds_count", model=model,
                          outcome="error") == 1
            assert _delta(called, lossy, "trainkit_lm_tokens_total", model=model, kind="prompt") > 0
            run = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=make_lm(server))
        optimized = _process_scrape(kit)
    assert _delta(optimized, called, "trainkit_optimizations_total", task=TASK,
                  outcome="promoted" if run.promoted else "not_promoted") == 1
    assert _delta(optimized, called, "trainkit_optimization_duration_seconds_count", task=TASK) == 1
    assert value(optimized, "trainkit_optimization_runs", task=TASK, status="succeeded") == 1  # the store's view


def test_watch_serves_process_and_store_metrics(tmp_path):
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    process = subprocess.Popen([sys.executable, "-m", "dspy_trainkit", "watch", "--interval", "1h",
                                "--metrics-port", "0"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert match, line
        with urllib.request.urlopen(match.group(0), timeout=30) as response:
            families = {f.name for f in text_string_to_metric_families(response.read().decode())}
        assert {"trainkit_metrics_section_up", "trainkit_optimizations", "trainkit_lm_requests",
                "trainkit_collector_queue_depth"} <= families
    finally:
        process.terminate()
        process.wait(timeout=30)
