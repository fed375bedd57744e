"""Alerts: every built-in rule fires on a constructed case, once per condition (later checks update it), and is
resolved when the condition is gone; channels deliver new alerts to the log, a JSONL file and a webhook that
may be slow or failing.

Time is the rules' `now()`: tests add "earlier" examples, note the moment, add "recent" ones, and move the
rules' clock so that the window starts at that moment.
"""

from __future__ import annotations

import http.server
import json
import threading
import time

import dspy_trainkit_alert_channels as channels
import dspy_trainkit_alerts as rules
import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.optimization.records import Run
from dspy_trainkit.testing import hermetic_kit

WINDOW = 1000.0
TOML = f"""[tasks.qa]
signature = "question -> answer"

[plugin.alerts]
window = {WINDOW}
min_records = 10
stall_after = 3600
"""


class Judge:
    """Rejects answers "bad", marks answers starting "dup" as near-duplicates, scores quality from the answer
    "q=0.9" form."""

    @tk.hookimpl
    def validate(self, examples, context):
        found = {}
        for i, ex in enumerate(examples):
            answer = ex.outputs.get("answer", "")
            if answer == "bad":
                found[i] = [tk.Finding(severity="error", code="bad", message="bad answer")]
            elif answer.startswith("dup"):
                found[i] = [tk.Finding(severity="warning", code="near-duplicate", message="like another")]
        return found

    @tk.hookimpl
    def score(self, examples, context):
        return {i: {"made_up": float(ex.outputs["answer"][2:])} for i, ex in enumerate(examples)
                if ex.outputs.get("answer", "").startswith("q=")}


def qa(n: int, answer: str, source: str = "collected") -> dict:
    return {"task": "qa", "inputs": {"question": f"question {n} {time.time_ns()}"}, "outputs": {"answer": answer},
            "source": source}


@pytest.fixture
def kit(tmp_path):
    with hermetic_kit(tmp_path / "p", plugins=["alerts", "alert_channels", "basic_checks"],
                      extra=[("judge", Judge())], toml=TOML) as opened:
        yield opened


def split_in_time(kit, earlier: list[dict], recent: list[dict], monkeypatch) -> None:
    kit.add_many(earlier)
    time.sleep(0.01)
    boundary = time.time()
    time.sleep(0.01)
    kit.add_many(recent)
    monkeypatch.setattr(rules, "now", lambda: boundary + WINDOW)


def rules_firing(kit) -> set[str]:
    return {a.rule for a in kit.alerts()}


def test_rejection_spike(kit, monkeypatch):
    split_in_time(kit, [qa(n, "fine") for n in range(20)], [qa(n, "bad" if n % 2 else "ok") for n in range(20)],
                  monkeypatch)
    report = kit.check_alerts(["qa"])
    assert [a.rule for a in report.raised] == ["rejection-spike"]
    assert report.raised[0].details["rate"] == 0.5 and report.raised[0].details["before"] == 0.0


def test_no_spike_when_rejections_were_always_that_high(kit, monkeypatch):
    mixed = [qa(n, "bad" if n % 2 else "ok") for n in range(20)]
    split_in_time(kit, mixed, [qa(n, "bad" if n % 2 else "ok") for n in range(20, 40)], monkeypatch)
    assert "rejection-spike" not in {a.rule for a in kit.check_alerts(["qa"]).raised}


def test_collection_stalled(kit, monkeypatch):
    kit.add_many([qa(n, "ok") for n in range(3)])
    monkeypatch.setattr(rules, "now", lambda: time.time() + 3601)
    assert "collection-stalled" in {a.rule for a in kit.check_alerts(["qa"]).raised}


def test_quality_shift_uses_the_distribution_not_only_the_mean(kit, monkeypatch):
    # same mean (0.5), different spread: a mean check would not see it, a KS test does
    earlier = [qa(n, f"q={0.5}", source="imported") for n in range(40)]
    recent = [qa(n, f"q={0.1 if n % 2 else 0.9}", source="imported") for n in range(40)]
    split_in_time(kit, earlier, recent, monkeypatch)
    raised = {a.rule: a for a in kit.check_alerts(["qa"]).raised}
    assert "quality-shift" in raised
    assert raised["quality-shift"].details["d"] == pytest.approx(0.5)


def test_no_quality_shift_for_the_same_distribution(kit, monkeypatch):
    same = [qa(n, f"q={0.1 * (n % 10)}", source="imported") for n in range(40)]
    split_in_time(kit, same, [qa(n, f"q={0.1 * (n % 10)}", source="imported") for n in range(40)], monkeypatch)
    assert "quality-shift" not in {a.rule for a in kit.check_alerts(["qa"]).raised}


def test_synthetic_over_cap(tmp_path):
    folder = tmp_path / "p"
    with hermetic_kit(folder, plugins=["alerts", "basic_checks"], toml=TOML) as first:
        first.add_many([qa(n, "ok", source="synthetic") for n in range(6)] + [qa(n, "ok", "imported")
                                                                           for n in range(4)])
    capped = TOML.replace('signature = "question -> answer"', 'signature = "question -> answer"\n'
                                                              "max_synthetic_ratio = 0.5")
    with hermetic_kit(folder, plugins=["alerts", "basic_checks"], toml=capped) as kit:
        (alert,) = [a for a in kit.check_alerts(["qa"]).raised if a.rule == "synthetic-over-cap"]
        assert alert.details == {"share": 0.6, "cap": 0.5}


def test_run_rules_failed_run_champion_drop_and_readiness_lost(kit):
    champion = Run(task="qa", optimizer="bootstrap", status="succeeded", score=80.0)
    kit.store.save_run(champion.record())
    kit.store.set_champion("qa", champion.id, time.time())
    later = Run(task="qa", optimizer="bootstrap", status="succeeded", score=70.0, champion_run=champion.id,
                champion_score=60.0)
    kit.store.save_run(later.record())
    assert {"champion-dropped", "readiness-lost"} <= rules_firing_after(kit)
    failed = Run(task="qa", optimizer="bootstrap", status="failed", error="LM unreachable")
    kit.store.save_run(failed.record())
    raised = {a.rule: a for a in kit.check_alerts(["qa"]).raised}
    assert raised["run-failed"].severity == "critical" and "LM unreachable" in raised["run-failed"].message


def rules_firing_after(kit) -> set[str]:
    kit.check_alerts(["qa"])
    return rules_firing(kit)


def test_near_duplicate_surge(kit, monkeypatch):
    split_in_time(kit, [qa(n, "ok") for n in range(5)], [qa(n, "dup" if n < 6 else "ok") for n in range(15)],
                  monkeypatch)
    assert "near-duplicate-surge" in {a.rule for a in kit.check_alerts(["qa"]).raised}


def test_negative_value_of_new_data(kit, monkeypatch):
    from dspy_trainkit.effectiveness.signals import ExampleValue

    split_in_time(kit, [qa(1, "ok")], [qa(2, "ok")], monkeypatch)
    old, new = sorted(kit.examples(task="qa"), key=lambda e: e.created_at)
    kit.store.save_values("qa", [ExampleValue(task="qa", example_id=e.id, value=-5.0, stderr=1.0, observations=4)
                                 for e in (old, new)])
    (alert,) = [a for a in kit.check_alerts(["qa"]).raised if a.rule == "negative-value"]
    assert alert.details == {"examples": [new.id]}


def test_one_alert_per_condition_until_it_is_resolved(kit, monkeypatch):
    kit.add_many([qa(n, "ok") for n in range(3)])
    monkeypatch.setattr(rules, "now", lambda: time.time() + 3601)
    first = kit.check_alerts(["qa"])
    assert [a.rule for a in first.raised] == ["collection-stalled"]
    again = kit.check_alerts(["qa"])
    assert again.raised == [] and [a.id for a in again.holding] == [first.raised[0].id]
    (stored,) = kit.alerts()
    assert stored.count == 2 and stored.status == "open"
    acked = kit.acknowledge_alert(stored.id[-6:], actor="oncall")
    assert acked.status == "acknowledged" and acked.acknowledged_by == "oncall"
    assert kit.check_alerts(["qa"]).raised == []  # still holding, not raised or delivered again
    monkeypatch.setattr(rules, "now", time.time)  # collection is fresh again
    gone = kit.check_alerts(["qa"])
    assert [a.id for a in gone.resolved] == [stored.id] and kit.alerts() == []
    assert kit.alerts(include_resolved=True)[0].status == "resolved"
    monkeypatch.setattr(rules, "now", lambda: time.time() + 3601)
    back = kit.check_alerts(["qa"])
    assert len(back.raised) == 1 and back.raised[0].id != stored.id  # a new alert for a new occurrence


def test_collected_data_is_checked_as_it_arrives(kit, monkeypatch):
    kit.add_many([qa(n, "fine") for n in range(20)])
    monkeypatch.setattr(rules, "now", lambda: time.time() + WINDOW + 1)  # the first batch is "earlier"
    kit.add_many([qa(n, "bad" if n % 2 else "ok") for n in range(20)])  # no check: within check_interval
    assert kit.alerts() == []
    monkeypatch.setattr(rules, "now", lambda: time.time() + WINDOW + 120)
    kit.add_many([qa(100, "ok")])  # past the interval: this batch triggers a check
    assert "collection-stalled" not in rules_firing(kit)


class Receiver(http.server.BaseHTTPRequestHandler):
    behaviour: list[str] = []
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        what = self.behaviour.pop(0) if self.behaviour else "ok"
        if what == "slow":
            time.sleep(1.0)
        if what == "fail":
            self.send_response(500)
            self.end_headers()
            return
        self.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.behaviour, Receiver.received = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/SECRET-TOKEN", Receiver
    server.shutdown()


def stalled_kit(folder, toml_extra: str):
    return hermetic_kit(folder, plugins=["alerts", "alert_channels", "basic_checks"], toml=TOML + toml_extra)


def stall(monkeypatch) -> None:
    monkeypatch.setattr(rules, "now", lambda: time.time() + 3601)


@pytest.mark.parametrize("behaviour,delivered", [(["fail", "fail"], True), (["slow", "slow", "slow"], False)])
def test_webhook_survives_failing_and_slow_receivers(tmp_path, monkeypatch, receiver, caplog, behaviour,
                                                      delivered):
    url, handler = receiver
    handler.behaviour = list(behaviour)
    extra = f'\n[plugin.alert_channels]\nwebhook = "{url}"\ntimeout = 0.3\nretries = 2\njsonl = "alerts.jsonl"\n'
    monkeypatch.setattr(channels, "PAUSE", 0.0)  # no back-off waits in the test
    with stalled_kit(tmp_path / "p", extra) as kit:
        kit.add_many([qa(n, "ok") for n in range(3)])
        stall(monkeypatch)
        report = kit.check_alerts(["qa"])
        assert len(report.raised) == 1
        alert = report.raised[0]
        assert kit.alerts()[0].id == alert.id  # stored whatever the webhook did
        lines = (tmp_path / "p" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["id"] for line in lines] == [alert.id]
    if delivered:
        assert [r["id"] for r in handler.received] == [alert.id]
    else:
        assert "not delivered to webhook http://127.0.0.1" in caplog.text and "after 3 attempt(s)" in caplog.text
        assert "SECRET-TOKEN" not in caplog.text  # the URL's path may hold the token


def test_cli_alerts_check_list_and_ack(tmp_path, monkeypatch):
    folder = tmp_path / "p"
    with stalled_kit(folder, "") as kit:
        kit.add_many([qa(n, "ok") for n in range(3)])
    stall(monkeypatch)
    monkeypatch.chdir(folder)
    runner = CliRunner()
    checked = runner.invoke(cli, ["alerts", "check"])
    assert checked.exit_code == 4, checked.output
    assert checked.stdout.startswith("1 new, 0 still holding, 0 resolved")
    listed = runner.invoke(cli, ["alerts", "--json"])
    (alert,) = json.loads(listed.stdout)
    assert alert["rule"] == "collection-stalled" and alert["status"] == "open"
    acked = runner.invoke(cli, ["alerts", "ack", alert["id"][-8:]])
    assert acked.exit_code == 0 and acked.stdout.startswith(f"acknowledged {alert['id']}")
    assert runner.invoke(cli, ["alerts", "check"]).exit_code == 0
    table = runner.invoke(cli, ["alerts"]).stdout.splitlines()
    assert table[0].split()[:4] == ["ALERT", "SEVERITY", "STATUS", "TASK"] and "acknowledged" in table[1]
    assert runner.invoke(cli, ["alerts", "ack", "nosuch"]).exit_code == 1
