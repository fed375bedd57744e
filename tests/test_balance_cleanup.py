"""Balance reports, cleanup policies (archive with the policy as reason, dry run, snapshots keep their copies)
and freshness reports, through the API and the CLI (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS, qa

import dspy_trainkit as tk
from dspy_trainkit import load_settings
from dspy_trainkit.cli.main import cli
from dspy_trainkit.lifecycle import balance, freshness, snapshots

TOML = """
[tasks.qa]
topics = ["algebra", "geometry", "calculus"]
difficulties = ["easy"]
cell_target = 2
cell_cap = 3
"""


def open_kit(store_url, tmp_path, toml=TOML, disable=QUALITY_PLUGINS):
    (tmp_path / "trainkit.toml").write_text(toml)
    return tk.open(store_url, settings=load_settings(env={}, cwd=tmp_path), disable=disable)


WITH_NEARDUP = tuple(p for p in QUALITY_PLUGINS if p != "neardup")  # the superseded policy uses it


def set_quality(kit, pairs):
    for example_id, quality in pairs:
        kit.store.update_examples([kit.get(example_id).evolve(quality=quality)], tk.Event(kind="rescored"))


def test_balance_report_names_short_and_over_full_cells(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        kit.add_many([qa(f"alg {i}", topic="algebra", difficulty="easy") for i in range(5)]
                     + [qa("geo 0", topic="geometry", difficulty="easy")])
        rows = {r.cell[1]: r.to_dict() for r in balance.report(kit, task="qa")}
        assert rows["algebra"]["state"] == "over-full" and rows["algebra"]["excess"] == 2
        assert rows["geometry"]["state"] == "short" and rows["geometry"]["missing"] == 1
        assert rows["calculus"]["count"] == 0 and rows["calculus"]["state"] == "short"  # defined, still empty
    result = CliRunner().invoke(cli, ["--db", store_url, "--config", str(tmp_path / "trainkit.toml"),
                                      "balance", "report", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["topic"]: r["state"] for r in json.loads(result.output)} == {
        "algebra": "over-full", "geometry": "short", "calculus": "short"}


def test_cleanup_archives_by_policy_with_reasons_and_dry_run_changes_nothing(store_url, tmp_path):
    toml = TOML + "[cleanup]\nmax_age_days = 30\nmin_quality = 0.3\nover_full = true\nsuperseded = true\n"
    with open_kit(store_url, tmp_path, toml) as kit:
        old = kit.add(qa("an old question", topic="geometry", difficulty="easy"))
        kit.store.update_examples([old.evolve(created_at=time.time() - 40 * 86400)], tk.Event(kind="aged"))
        low = kit.add(qa("a poor question", topic="geometry", difficulty="easy"))
        full = kit.add_many([qa(f"algebra question number {i}", f"answer {i}", topic="algebra",
                                difficulty="easy") for i in range(5)]).ids
        text = "what is the sum of the angles in a triangle drawn on a flat plane in degrees"
        best = kit.add(qa(text, "180 degrees", topic="calculus", difficulty="easy"))
        near = kit.add(qa(text + " please", "180 degrees", topic="calculus", difficulty="easy"))
        set_quality(kit, [(low.id, 0.1), (best.id, 0.9), (near.id, 0.5)]
                    + [(ex_id, 0.5 + i / 10) for i, ex_id in enumerate(full)])
        kit.snapshot("before")
        export_before = [ex.to_dict() for ex in snapshots.examples(kit, "before")]
    with open_kit(store_url, tmp_path, toml, disable=WITH_NEARDUP) as kit:  # added above without its checks
        plan = kit.manager.run(dry_run=True)
        expected = {old.id: "max_age_days", low.id: "min_quality", near.id: "superseded",
                    full[0]: "over_full", full[1]: "over_full"}
        assert {a["example_id"]: a["policy"] for a in plan["actions"]} == expected
        assert plan["in_snapshots"] == 5 and kit.count(status="archived") == 0

        result = kit.manager.run(actor="nightly")
        assert result["archived"] == {"max_age_days": 1, "min_quality": 1, "superseded": 1, "over_full": 2}
        assert kit.count(status="archived") == 5
        reasons = {e.reason for e in kit.events() if e.kind == "status_changed"}
        assert reasons == {f"cleanup: {p}" for p in ("max_age_days", "min_quality", "superseded", "over_full")}
        assert all(e.actor == "nightly" for e in kit.events() if e.kind == "status_changed")
        assert [ex.to_dict() for ex in snapshots.examples(kit, "before")] == export_before
        assert kit.manager.run()["actions"] == []  # nothing left: a re-run changes nothing


def test_superseded_policy_without_the_neardup_plugin_is_one_clear_error(store_url, tmp_path):
    toml = TOML + "[cleanup]\nmin_quality = 0.3\nsuperseded = true\n"
    with open_kit(store_url, tmp_path, toml) as kit:  # neardup disabled
        ids = kit.add_many([qa("same question here"), qa("same question here too")]).ids
        set_quality(kit, [(ids[0], 0.1)])
        with pytest.raises(tk.ConfigError, match="'superseded'.*neardup plugin, which is disabled"):
            kit.manager.run()
        assert kit.count(status="archived") == 0  # refused while planning: nothing archived
        assert [a.policy for a in kit.manager.plan(policies=["min_quality"])] == ["min_quality"]


def test_cleanup_progress_counts_up_across_policies_in_store_batches(store_url, tmp_path, monkeypatch):
    from dspy_trainkit import curation as changes

    monkeypatch.setattr(changes, "BATCH", 2)
    with open_kit(store_url, tmp_path, "[cleanup]\nmin_quality = 0.5\nmax_age_days = 30\n") as kit:
        ids = kit.add_many([qa(f"question {i}") for i in range(7)]).ids
        set_quality(kit, [(i, 0.1) for i in ids[:5]])
        for ex_id in ids[5:]:
            kit.store.update_examples([kit.get(ex_id).evolve(created_at=time.time() - 40 * 86400)],
                                      tk.Event(kind="aged"))
        asked = []  # the size of every id list a store query carries
        iter_ids = kit.store.iter_ids
        monkeypatch.setattr(kit.store, "iter_ids", lambda q: asked.append(len(q.ids or ())) or iter_ids(q))
        seen = []
        result = kit.manager.run(progress=seen.append)
        assert max(asked) <= 2  # a policy's 5 ids are resolved 2 at a time, never as one long IN (...) list
        assert result["archived"] == {"max_age_days": 2, "min_quality": 5}
        assert seen == sorted(seen) and seen[-1] == 7
        batches = [e for e in kit.events() if e.kind == "status_changed"]
        assert sorted(len(e.example_ids) for e in batches) == [1, 2, 2, 2]  # 2 + 5 in batches of 2


def test_cleanup_cli_dry_run_and_json(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    toml = tmp_path / "trainkit.toml"
    with open_kit(db, tmp_path, "[cleanup]\nmin_quality = 0.5\n") as kit:
        ids = kit.add_many([qa(f"q{i}") for i in range(4)]).ids
        set_quality(kit, [(ids[0], 0.1), (ids[1], 0.9)])
    runner = CliRunner()
    dry = runner.invoke(cli, ["--db", db, "--config", str(toml), "cleanup", "--dry-run"])
    assert dry.exit_code == 0 and "would archive 1: min_quality 1" in dry.output
    done = json.loads(runner.invoke(cli, ["--db", db, "--config", str(toml), "cleanup", "--json"]).output)
    assert done["archived"] == {"min_quality": 1}
    log = runner.invoke(cli, ["--db", db, "--config", str(toml), "log", "--id", ids[0]])
    assert "cleanup: min_quality" in log.output


def test_freshness_reports_age_and_last_use(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        ids = kit.add_many([qa(f"q{i}", topic="algebra", difficulty="easy") for i in range(4)]).ids
        now = time.time()
        kit.store.update_examples([kit.get(ids[0]).evolve(created_at=now - 100 * 86400)], tk.Event(kind="aged"))
        freshness.mark_used(kit, ids[:2], what={"test": True})
        report = freshness.report(kit, task="qa", now=now + 86400)
        summary = report["tasks"]["qa"]
        assert summary["count"] == 4 and summary["never_used"] == 2
        assert summary["age_days"]["bands"]["90-365d"] == 1 and summary["age_days"]["bands"]["<7d"] == 3
        assert summary["last_used_days"]["bands"]["<7d"] == 2
        assert report["cells"][0]["topic"] == "algebra"
        used = [e for e in kit.events() if e.kind == "used"]
        assert len(used) == 1 and set(used[0].example_ids) == set(ids[:2])
    result = CliRunner().invoke(cli, ["--db", store_url, "--config", str(tmp_path / "trainkit.toml"),
                                      "freshness", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["tasks"]["qa"]["never_used"] == 2
