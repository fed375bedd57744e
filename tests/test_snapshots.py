"""Snapshots: immutable after edits, archiving and additions; exact diffs; seeded stratified splits; the
balanced selection they can use; CLI create/list/show/diff/export (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS, qa

import dspy_trainkit as tk
from dspy_trainkit import load_settings
from dspy_trainkit.cli.main import cli
from dspy_trainkit.lifecycle import snapshots
from dspy_trainkit.store import ExampleQuery


def open_kit(store_url, tmp_path, toml=""):
    (tmp_path / "trainkit.toml").write_text(toml)
    return tk.open(store_url, settings=load_settings(env={}, cwd=tmp_path), disable=QUALITY_PLUGINS)


def seed(kit, n=6):
    records = [qa(f"question {i}", f"answer {i}", domain="math", topic="algebra" if i % 2 else "geometry",
                  difficulty="easy") for i in range(n)]
    kit.add_many(records)
    return sorted(kit.examples(task="qa"), key=lambda ex: ex.id)


def test_snapshot_stays_byte_for_byte_after_edit_archive_and_add_and_diff_is_exact(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        stored = seed(kit)
        kit.snapshot("v1", task="qa")
        first = tmp_path / "v1-before.jsonl"
        snapshots.export(kit, "v1", first, provenance=True)
        train_before = [ex.toDict() for ex in kit.trainset("qa", snapshot="v1")]

        edited = kit.edit(stored[0].id, outputs={"answer": "a better answer"}, reason="fix")
        kit.set_status("archived", ids=(stored[1].id,), reason="stale")
        new = kit.add(qa("a brand new question", "x", domain="science", topic="physics", difficulty="hard"))

        second = tmp_path / "v1-after.jsonl"
        snapshots.export(kit, "v1", second, provenance=True)
        assert first.read_bytes() == second.read_bytes()
        assert [ex.toDict() for ex in kit.trainset("qa", snapshot="v1")] == train_before
        old_copy = next(ex for ex in snapshots.examples(kit, "v1") if ex.id == stored[0].id)
        assert old_copy.outputs == stored[0].outputs and old_copy.content_hash == stored[0].content_hash
        assert kit.get(stored[0].id).content_hash == edited.content_hash != stored[0].content_hash

        kit.snapshot("v2", task="qa")
        result = snapshots.diff(kit, "v1", "v2")
        assert result["added"] == [new.id]
        assert result["removed"] == [stored[1].id]
        assert result["changed"] == [stored[0].id]
        assert result["unchanged"] == len(stored) - 2
        assert result["by"]["domain"] == {"math": {"added": 0, "removed": 1, "changed": 1},
                                          "science": {"added": 1, "removed": 0, "changed": 0}}
        assert result["by"]["topic"]["physics"] == {"added": 1, "removed": 0, "changed": 0}
        created = [e for e in kit.events() if e.kind == "snapshot_created"]
        assert [e.details["snapshot"] for e in created] == ["v1", "v2"]


def test_snapshots_are_immutable_and_names_checked(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        seed(kit, 2)
        snap = kit.snapshot("v1", task="qa")
        assert len(snap.members) == 2 and snap.config["query"]["task"] == "qa"
        with pytest.raises(tk.TrainkitError, match="exists already"):
            kit.snapshot("v1", task="qa")
        with pytest.raises(tk.ValidationError, match="snapshot name"):
            kit.snapshot("../x")
        with pytest.raises(tk.NotFoundError, match="no snapshot named 'nope'.*known: v1"):
            list(snapshots.examples(kit, "nope"))


def test_split_is_seeded_stratified_and_stable(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        records = [qa(f"q {i}", domain="d", topic=f"t{i % 2}", difficulty="easy") for i in range(20)]
        kit.add_many(records)
        kit.snapshot("s")
        train, dev = snapshots.split(kit, "s", dev_fraction=0.2, seed=7)
        assert len(train) == 16 and len(dev) == 4
        assert sorted(ex.topic for ex in dev) == ["t0", "t0", "t1", "t1"]  # 2 of each 10-example stratum
        again = snapshots.split(kit, "s", dev_fraction=0.2, seed=7)
        assert [ex.id for ex in again[1]] == [ex.id for ex in dev]
        other = snapshots.split(kit, "s", dev_fraction=0.2, seed=8)
        assert {ex.id for ex in other[1]} != {ex.id for ex in dev}
        assert not {ex.id for ex in train} & {ex.id for ex in dev}
        with pytest.raises(tk.ValidationError, match="dev_fraction"):
            snapshots.split(kit, "s", dev_fraction=1.5)


def test_split_reads_the_snapshot_once_and_keeps_its_order(store_url, tmp_path, monkeypatch):
    with open_kit(store_url, tmp_path) as kit:
        kit.add_many([qa(f"q {i}", domain="d", topic=f"t{i % 3}", difficulty="easy") for i in range(12)])
        kit.snapshot("s")
        order = [ex.id for ex in snapshots.examples(kit, "s")]
        monkeypatch.setattr(kit.store, "snapshot_members", lambda name: pytest.fail("members read again"))
        train, dev = snapshots.split(kit, "s", dev_fraction=0.25, seed=3)
        assert len(dev) == 3 and sorted(ex.id for ex in train + dev) == sorted(order)
        for part in (train, dev):
            assert [ex.id for ex in part] == [i for i in order if i in {ex.id for ex in part}]


def test_snapshot_export_is_a_normal_export(tmp_path):
    import os

    with open_kit(f"sqlite:///{tmp_path / 's.db'}", tmp_path) as kit:
        seed(kit, 3)
        kit.snapshot("s")
        mask = os.umask(0o027)
        try:
            assert snapshots.export(kit, "s", tmp_path / "s.jsonl") == 3
        finally:
            os.umask(mask)
        assert (tmp_path / "s.jsonl").stat().st_mode & 0o777 == 0o640  # the umask, as `trainkit export` does
        assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 3
        assert snapshots.export(kit, "s", tmp_path / "one.jsonl", task="none") == 0
        with pytest.raises(tk.TrainkitError, match="is a folder"):
            snapshots.export(kit, "s", tmp_path, format_name="jsonl")


def test_balanced_snapshot_caps_cells_quality_first(store_url, tmp_path):
    toml = "[tasks.qa]\ncell_cap = 2\n"
    with open_kit(store_url, tmp_path, toml) as kit:
        records = [{**qa(f"q {i}", topic="big" if i < 6 else "small"), "quality": i / 10} for i in range(8)]
        report = kit.add_many(records)
        assert report.ids
        for i, example_id in enumerate(report.ids):  # intake scores; set the quality we want directly
            ex = kit.get(example_id)
            kit.store.update_examples([ex.evolve(quality=round(0.1 + 0.1 * i, 2))],
                                      tk.Event(kind="rescored"))
        snap = kit.snapshot("bal", task="qa", balanced=True)
        chosen = list(snapshots.examples(kit, "bal"))
        assert len(snap.members) == 4
        by_topic = {t: sorted(ex.quality for ex in chosen if ex.topic == t) for t in ("big", "small")}
        assert by_topic == {"big": [0.5, 0.6], "small": [0.7, 0.8]}
        assert snap.config["balanced"] is True and snap.config["cap"] == 2
        assert len(kit.trainset("qa", balanced=True, cap=1)) == 2


def test_trainset_marks_last_used(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        seed(kit, 3)
        assert all(ex.last_used_at is None for ex in kit.examples())
        kit.trainset("qa")
        assert all(ex.last_used_at is not None for ex in kit.examples())
        used = [e for e in kit.events() if e.kind == "used"]
        assert len(used) == 1 and len(used[0].example_ids) == 3


def test_cli_snapshot_commands(tmp_path):
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    with open_kit(db, tmp_path) as kit:
        stored = seed(kit, 4)
    result = runner.invoke(cli, ["--db", db, "snapshot", "create", "v1", "--task", "qa", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["size"] == 4
    with open_kit(db, tmp_path) as kit:
        kit.set_status("archived", ids=(stored[0].id,), reason="x")
    assert runner.invoke(cli, ["--db", db, "snapshot", "create", "v2", "--task", "qa"]).exit_code == 0
    listed = json.loads(runner.invoke(cli, ["--db", db, "snapshot", "list", "--json"]).output)
    assert [(s["name"], s["size"]) for s in listed] == [("v1", 4), ("v2", 3)]
    shown = json.loads(runner.invoke(cli, ["--db", db, "snapshot", "show", "v1", "--json"]).output)
    assert shown["size"] == 4 and len(shown["members"]) == 4
    diff = json.loads(runner.invoke(cli, ["--db", db, "snapshot", "diff", "v1", "v2", "--json"]).output)
    assert diff["removed"] == [stored[0].id] and diff["added"] == [] and diff["changed"] == []
    text = runner.invoke(cli, ["--db", db, "snapshot", "diff", "v1", "v2"])
    assert "removed 1" in text.output
    out = tmp_path / "v1.jsonl"
    result = runner.invoke(cli, ["--db", db, "snapshot", "export", "v1", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 4
    again = runner.invoke(cli, ["--db", db, "snapshot", "create", "v1"])
    assert again.exit_code == 1 and again.output.count("\n") == 1 and "exists already" in again.output
    missing = runner.invoke(cli, ["--db", db, "snapshot", "show", "nope"])
    assert missing.exit_code == 1 and "no snapshot named 'nope'" in missing.output


def test_snapshot_query_config_is_recorded(tmp_path):
    with open_kit(f"sqlite:///{tmp_path / 's.db'}", tmp_path) as kit:
        seed(kit, 2)
        snapshots.create(kit, "x", ExampleQuery(task="qa", status="accepted", where=(("topic", "=", "algebra"),)))
        info = snapshots.info(kit, "x")
        assert info["config"]["query"]["where"] == [["topic", "=", "algebra"]] and info["size"] == 1
        kit.store.url = "postgresql://team:secret@db.example/tk?sslmode=require"  # the password is not recorded
        snapshots.create(kit, "y", ExampleQuery(task="qa"))
        assert snapshots.info(kit, "y")["config"]["store"] == "postgresql://team:***@db.example/tk?sslmode=require"


def test_balanced_total_is_spread_over_domains_topics_and_difficulties(store_url, tmp_path):
    """36 cells (3 domains x 4 topics x 3 difficulties, 2 examples each, created in label order) and a total of
    12: every domain gets 4, one per topic, and not the 12 cells that sort first (all of domain 'algebra', which
    were also the first examples created)."""
    domains, topics, difficulties = ("algebra", "geometry", "stats"), ("t1", "t2", "t3", "t4"), ("easy", "mid", "hard")
    records = [qa(f"{d} {t} {level} {n}", domain=d, topic=t, difficulty=level)
               for d in domains for t in topics for level in difficulties for n in range(2)]
    with open_kit(store_url, tmp_path) as kit:
        kit.add_many(records)
        snap = kit.snapshot("spread", task="qa", balanced=True, total=12)
        chosen = list(snapshots.examples(kit, "spread"))
        first_created = sorted(ex.id for ex in kit.examples())[:12]
    assert len(snap.members) == 12 and sorted(ex.id for ex in chosen) != first_created
    by_domain = {d: [ex for ex in chosen if ex.domain == d] for d in domains}
    assert {d: len(found) for d, found in by_domain.items()} == {d: 4 for d in domains}
    assert all(sorted(ex.topic for ex in found) == list(topics) for found in by_domain.values())
    assert len({ex.difficulty for ex in chosen}) == 3
    assert len({(ex.domain, ex.topic, ex.difficulty) for ex in chosen}) == 12  # never two from one cell


def test_cli_balanced_snapshot_with_a_total(tmp_path):
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'bal.db'}"
    with open_kit(db, tmp_path) as kit:
        kit.add_many([qa(f"{d} question {n}", domain=d) for d in ("a", "b", "c", "d") for n in range(30)])
    result = runner.invoke(cli, ["--db", db, "snapshot", "create", "b10", "--task", "qa", "--balanced",
                                 "--total", "10", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["size"] == 10
    with open_kit(db, tmp_path) as kit:
        counts = Counter(ex.domain for ex in snapshots.examples(kit, "b10"))
    assert sorted(counts.values()) == [2, 2, 3, 3] and set(counts) == {"a", "b", "c", "d"}
