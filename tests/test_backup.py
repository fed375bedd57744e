"""Backup and restore: consistent copies while writers work, checksums verified before anything is written,
unsafe or damaged archives refused with one message, PostgreSQL -> SQLite -> PostgreSQL keeps content hashes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sqlite3
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS, qa
from test_concurrency import finish, integrity, start_writers

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.generation.plan import SlotResult, new_owner
from dspy_trainkit.lifecycle import snapshots
from dspy_trainkit.lifecycle.backup import backup
from dspy_trainkit.lifecycle.restore import BackupError, restore


def opener(url):
    return tk.open(url, disable=QUALITY_PLUGINS)


PLAN_SLOTS = [("d", f"t{i % 3}", None, i) for i in range(6)]


def fill(kit):
    kit.add_many([qa(f"q{i}", f"a{i}", domain="d", topic=f"t{i % 3}") for i in range(12)])
    kit.snapshot("v1", task="qa")
    first = sorted(kit.examples(), key=lambda e: e.id)[0]
    kit.edit(first.id, outputs={"answer": "edited"}, reason="fix")
    kit.set_status("archived", ids=(sorted(kit.examples(), key=lambda e: e.id)[1].id,), reason="old")
    # runs (made up here; test_runs_champion_and_plans_move_between_backends makes real ones) and a plan
    program = Path("programs") / "qa" / "run-one.json"  # the project folder is the test's cwd
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text('{"generate": {"demos": []}}', encoding="utf-8")
    ids = sorted(e.id for e in kit.examples())
    for n, run_id in enumerate(("run-one", "run-two")):
        kit.store.save_run({"id": run_id, "task": "qa", "status": "succeeded", "created_at": 100.0 + n,
                            "optimizer": "bootstrap", "score": 50.0 + n, "snapshot": "v1",
                            "program_path": str(program.resolve()) if n == 0 else "/elsewhere/run-two.json"},
                           [{"phase": "baseline", "example_id": ids[0], "score": 0.5, "prediction": {"answer": "x"},
                             "error": None},
                            {"phase": "optimized", "example_id": ids[0], "score": 1.0, "prediction": {}, "error": "e"}],
                           [{"seed": -1, "score": 0.25, "demo_ids": ids[:2], "subscores": [0.0, 0.5]}])
    assert kit.store.set_champion("qa", "run-one", 123.5)
    kit.store.ensure_plan("plan-a", "qa", {"per_cell": 2}, PLAN_SLOTS)
    owner = new_owner()
    done, failed, _held = kit.store.claim_slots("plan-a", owner, 3, 60)
    kit.store.finish_slots("plan-a", owner, [SlotResult(*done.cell, done.index, "done", example_id=ids[0]),
                                             SlotResult(*failed.cell, failed.index, "failed", reason="timeout",
                                                        error="no answer")])


def run_content(kit):
    runs = [(r, kit.store.run_details(r["id"])) for r in kit.store.list_runs()]
    plans = [(p, kit.store.plan_slot_records(p["name"])) for p in kit.store.list_plans()]
    return runs, kit.store.list_champions(), plans


def content(kit):
    examples = sorted((e.id, e.content_hash, e.status, e.inputs, e.outputs, e.created_at, e.updated_at)
                      for e in kit.examples(status=None))
    snaps = {s["name"]: [ex.to_dict() for ex in snapshots.examples(kit, s["name"])]
             for s in kit.store.list_snapshots()}
    events = [e.to_dict() for e in kit.events()]
    return examples, snaps, events, run_content(kit)


def _pg_schema(base_url):
    import psycopg2

    name = f"tk_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(base_url.split("?")[0])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {name}")
    return conn, name, f"{base_url.split('?')[0]}?options=-c%20search_path%3D{name}"


@pytest.mark.postgres
def test_postgres_to_sqlite_to_postgres_keeps_everything(postgres_schema_url, tmp_path):
    with opener(postgres_schema_url) as kit:
        fill(kit)
        original = content(kit)
        backup(kit, tmp_path / "pg.tar.gz")
    with opener(f"sqlite:///{tmp_path / 'mid.db'}") as mid:
        result = restore(tmp_path / "pg.tar.gz", mid, open_store=opener)
        assert result["counts"]["examples"] == 12 and result["counts"]["snapshots"] == 1
        assert content(mid) == original
        manifest = backup(mid, tmp_path / "sqlite.tar.gz")  # the SQLite kind: an online-backup file copy
        assert manifest["kind"] == "sqlite"
    conn, name, second = _pg_schema(postgres_schema_url)
    try:
        with opener(second) as back:
            restore(tmp_path / "sqlite.tar.gz", back, open_store=opener)
            assert content(back) == original
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {name} CASCADE")
        conn.close()


def test_sqlite_backup_kinds_round_trip(tmp_path):
    for portable in (False, True):
        with opener(f"sqlite:///{tmp_path / f'src{portable}.db'}") as kit:
            fill(kit)
            original = content(kit)
            backup(kit, tmp_path / f"b{portable}.tgz", portable=portable)
        with opener(f"sqlite:///{tmp_path / f'dst{portable}.db'}") as target:
            restore(tmp_path / f"b{portable}.tgz", target, open_store=opener)
            assert content(target) == original
        assert integrity(tmp_path / f"dst{portable}.db") == "ok"


def _rewrite(src, dst, change):
    """Copy a backup, letting `change(name, data) -> (name, data | None, kind)` alter members."""
    with tarfile.open(src, "r:gz") as tar, tarfile.open(dst, "w:gz") as out:
        for member in tar:
            data = tar.extractfile(member).read()
            for name, body, kind in change(member.name, data):
                info = tarfile.TarInfo(name)
                if kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                    out.addfile(info)
                else:
                    info.size = len(body)
                    out.addfile(info, io.BytesIO(body))


@pytest.fixture
def portable_backup(tmp_path):
    with opener(f"sqlite:///{tmp_path / 'src.db'}") as kit:
        fill(kit)
        backup(kit, tmp_path / "good.tgz", portable=True)
    return tmp_path / "good.tgz"


def _tamper(name, data):
    if name == "examples.jsonl":
        data = data.replace(b'"a2"', b'"evil"')
    return [(name, data, "file")]


def _tamper_runs(name, data):
    if name == "runs.jsonl":
        assert b'"score":51.0' in data
        data = data.replace(b'"score":51.0', b'"score":99.0')
    return [(name, data, "file")]


@pytest.mark.parametrize("damage, message", [
    ("truncated", "damaged or truncated"),
    ("corrupt", "damaged"),
    ("tampered", "does not match its checksum"),
    ("tampered-runs", "runs.jsonl does not match its checksum"),
    ("missing-plans", "plans.jsonl missing"),
    ("dotdot", "path that leaves the target folder"),
    ("absolute", "path that leaves the target folder"),
    ("symlink", "not a regular file"),
    ("extra", "not part of a trainkit backup"),
    ("missing", "missing"),
    ("not-a-backup", "damaged or truncated"),
])
def test_damaged_or_unsafe_backups_are_refused_before_writing(portable_backup, tmp_path, damage, message):
    bad = tmp_path / "bad.tgz"
    raw = portable_backup.read_bytes()
    if damage == "truncated":
        bad.write_bytes(raw[: len(raw) * 2 // 3])
    elif damage == "corrupt":
        body = bytearray(gzip.decompress(raw))
        body[len(body) // 2] ^= 0xFF
        bad.write_bytes(gzip.compress(bytes(body))[:-8] + raw[-8:])  # keep the old CRC: gzip notices
    elif damage == "tampered":
        _rewrite(portable_backup, bad, _tamper)
    elif damage == "tampered-runs":
        _rewrite(portable_backup, bad, _tamper_runs)
    elif damage == "missing-plans":
        _rewrite(portable_backup, bad, lambda n, d: [] if n == "plans.jsonl" else [(n, d, "file")])
    elif damage == "dotdot":
        _rewrite(portable_backup, bad, lambda n, d: [(n, d, "file"), ("../escape.txt", b"x", "file")])
    elif damage == "absolute":
        _rewrite(portable_backup, bad, lambda n, d: [("/tmp/escape.txt" if n == "events.jsonl" else n, d, "file")])
    elif damage == "symlink":
        _rewrite(portable_backup, bad, lambda n, d: [(n, d, "file")] + ([("link", b"", "symlink")]
                                                                         if n == "manifest.json" else []))
    elif damage == "extra":
        _rewrite(portable_backup, bad, lambda n, d: [(n, d, "file"), ("notes.txt", b"x", "file")]
                 if n == "manifest.json" else [(n, d, "file")])
    elif damage == "missing":
        _rewrite(portable_backup, bad, lambda n, d: [] if n == "events.jsonl" else [(n, d, "file")])
    else:
        bad.write_text("hello")
    target_db = tmp_path / "target.db"
    with opener(f"sqlite:///{target_db}") as target:
        with pytest.raises(BackupError, match=message) as info:
            restore(bad, target, open_store=opener)
        assert "\n" not in str(info.value) and "nothing was written" in str(info.value)
        assert target.store.is_empty() and list(target.events()) == []
    assert not (tmp_path.parent / "escape.txt").exists()
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", f"sqlite:///{target_db}", "restore", str(bad)])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and result.output.startswith("Error: ")


def _repack(src, dst, change):
    """Copy a backup letting `change(members: dict, manifest: dict)` alter them, with a manifest whose sizes and
    checksums fit the changed members (as a backup made that way would have)."""
    with tarfile.open(src, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}
    manifest = json.loads(members.pop("manifest.json"))
    change(members, manifest)
    manifest["files"] = {name: {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
                         for name, body in members.items()}
    with tarfile.open(dst, "w:gz") as out:
        for name, body in [("manifest.json", json.dumps(manifest).encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            out.addfile(info, io.BytesIO(body))


def test_a_version_1_backup_without_runs_and_plans_still_restores(portable_backup, tmp_path):
    def as_version_1(members, manifest):
        del members["runs.jsonl"], members["plans.jsonl"]
        del manifest["counts"]["runs"], manifest["counts"]["plans"]
        manifest["version"] = 1

    _repack(portable_backup, tmp_path / "v1.tgz", as_version_1)
    with opener(f"sqlite:///{tmp_path / 'from-v1.db'}") as target:
        result = restore(tmp_path / "v1.tgz", target, open_store=opener)
        assert result["counts"] == {"examples": 12, "snapshots": 1, "events": 4, "runs": 0, "plans": 0}
        assert target.count(status=None) == 12 and target.store.list_runs() == []
        assert target.store.list_plans() == []
    # a version 2 manifest must list runs.jsonl and plans.jsonl: dropping both is refused
    _repack(portable_backup, tmp_path / "v2-short.tgz",
            lambda members, manifest: [members.pop("runs.jsonl"), members.pop("plans.jsonl")])
    with opener(f"sqlite:///{tmp_path / 'short.db'}") as target:
        with pytest.raises(BackupError, match="manifest.json lists"):
            restore(tmp_path / "v2-short.tgz", target, open_store=opener)
        assert target.store.is_empty()


@pytest.mark.parametrize("name", ["../../escape.json", "/tmp/escape.json", "qa/../../escape.json", "c:\\x.json"])
def test_a_program_file_name_that_leaves_the_programs_folder_is_refused(portable_backup, tmp_path, name):
    def rename(members, manifest):
        lines = [json.loads(line) for line in members["runs.jsonl"].splitlines()]
        (champion,) = [line for line in lines if line["program"]]
        champion["program"]["name"] = name
        members["runs.jsonl"] = b"".join(json.dumps(line).encode() + b"\n" for line in lines)

    _repack(portable_backup, tmp_path / "evil.tgz", rename)
    with opener(f"sqlite:///{tmp_path / 'evil.db'}") as target:
        with pytest.raises(BackupError, match="leaves the programs folder.*nothing was written"):
            restore(tmp_path / "evil.tgz", target, open_store=opener)
        assert target.store.is_empty() and list(target.events()) == []
    assert not (tmp_path.parent / "escape.json").exists() and not Path("/tmp/escape.json").exists()


def test_champion_program_goes_to_the_target_project_and_only_inside_it(portable_backup, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere-project"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the target kit's project folder
    with opener(f"sqlite:///{tmp_path / 'moved.db'}") as target:
        result = restore(portable_backup, target, open_store=opener)
        written = elsewhere / "programs" / "qa" / "run-one.json"
        assert result["programs"] == {"written": [str(written)], "not_written": []}
        assert written.read_text() == '{"generate": {"demos": []}}'
        assert target.store.get_run("run-one")["program_path"] == str(written)
        assert target.store.get_run("run-two")["program_path"] == "/elsewhere/run-two.json"  # not a champion
    # a different file where the program would go is not overwritten
    written.write_text("{}")
    with opener(f"sqlite:///{tmp_path / 'clash.db'}") as target:
        with pytest.raises(BackupError, match="exists with other content"):
            restore(portable_backup, target, open_store=opener)
        assert target.store.is_empty()
    # a programs folder outside the project folder: the file is not written, program_path is left alone
    outside = tmp_path / "outside-programs"
    (elsewhere / "trainkit.toml").write_text(f'[optimize]\noutput_dir = "{outside}"\n')
    with tk.open(f"sqlite:///{tmp_path / 'out.db'}", config=elsewhere / "trainkit.toml",
                 disable=QUALITY_PLUGINS) as target:
        result = restore(portable_backup, target, open_store=opener)
        assert result["programs"] == {"written": [], "not_written": ["run-one"]}
        assert not outside.exists()
        assert target.store.get_run("run-one")["program_path"].endswith("programs/qa/run-one.json")
        assert str(elsewhere) not in target.store.get_run("run-one")["program_path"]


def test_restore_refuses_a_store_that_is_not_empty(portable_backup, tmp_path):
    with opener(f"sqlite:///{tmp_path / 'busy.db'}") as target:
        target.add(qa("already here"))
        with pytest.raises(BackupError, match="not empty"):
            restore(portable_backup, target, open_store=opener)
        assert target.count() == 1
        target.store.url = "postgresql://team:secret@db.example/tk"  # how the message shows a password
        with pytest.raises(BackupError, match=r"the store postgresql://team:\*\*\*@db.example/tk is not empty"):
            restore(portable_backup, target, open_store=opener)


def test_cli_backup_and_restore(tmp_path):
    src = f"sqlite:///{tmp_path / 'cli.db'}"
    with opener(src) as kit:
        fill(kit)
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", src, "backup", str(tmp_path / "b.tgz"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["counts"]["examples"] == 12
    dst = f"sqlite:///{tmp_path / 'new.db'}"
    out = runner.invoke(cli, ["--db", src, "restore", str(tmp_path / "b.tgz"), "--into", dst, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["counts"]["snapshots"] == 1
    text = runner.invoke(cli, ["--db", src, "backup", str(tmp_path / "c.tgz"), "--portable"])
    counts = json.loads(runner.invoke(cli, ["--db", src, "backup", str(tmp_path / "d.tgz"), "--portable",
                                            "--json"]).output)["counts"]
    assert text.exit_code == 0 and f"{counts['runs']} run" in text.output and f"{counts['plans']} plan" in text.output
    with opener(f"sqlite:///{tmp_path / 'api.db'}") as empty:  # the Python API makes the same archive
        assert empty.backup(tmp_path / "e.tgz", portable=True)["counts"]["examples"] == 0
    missing = runner.invoke(cli, ["--db", src, "restore", str(tmp_path / "nope.tgz")])
    assert missing.exit_code == 1 and "no backup file" in missing.output


def test_backup_while_four_processes_write_holds_everything_committed_before(tmp_path):
    db = tmp_path / "live.db"
    url = f"sqlite:///{db}"
    tk.open(url).close()
    procs, stop = start_writers(url, tmp_path, count=4, batches=400, size=20)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:  # wait until all four are writing
            conn = sqlite3.connect(db)
            topics = {r[0] for r in conn.execute("SELECT DISTINCT topic FROM examples")}
            conn.close()
            if len(topics) == 4:
                break
            time.sleep(0.05)
        conn = sqlite3.connect(db)
        committed = {r[0] for r in conn.execute("SELECT id FROM examples")}
        conn.close()
        with opener(url) as kit:
            manifest = backup(kit, tmp_path / "live.tgz")
        still_running = [p.poll() is None for p in procs]
    finally:
        stop.touch()
        results = finish(procs)
    assert all(code == 0 and "locked" not in err.lower() for code, _, err in results), results
    assert any(still_running)  # the writers really were working during the backup
    with opener(f"sqlite:///{tmp_path / 'restored.db'}") as target:
        restore(tmp_path / "live.tgz", target, open_store=opener)
        restored = set(target.store.iter_ids(tk.ExampleQuery()))
    assert integrity(tmp_path / "restored.db") == "ok"
    assert committed <= restored and len(restored) == manifest["counts"]["examples"] >= len(committed)


@pytest.fixture
def other_store_url(store_url, request, tmp_path):
    """A store of the other backend than `store_url`."""
    if store_url.startswith("sqlite"):
        return request.getfixturevalue("postgres_schema_url")
    return f"sqlite:///{tmp_path / 'other.db'}"


def test_runs_champion_and_plans_move_between_backends(store_url, other_store_url, tmp_path):
    """Real runs (kit.optimize with DummyLM: a bootstrap champion and a random-search challenger with candidates)
    and a plan -> portable backup -> restore into the other backend, in another project folder."""
    import dspy
    from optimize_support import METRIC, PROGRAM, TASK, cell_records, dspy_cache, import_generated, make_project
    from test_optimize import DATA

    answer = {"problem": "Add 1/4 and 2/4 of a pizza: how much pizza is that together?",
              "solution": "Same denominator, add numerators. The sum is 3/4", "answer": "3/4"}
    source_config = make_project(tmp_path / "source", store_url,
                                 extra="[optimize]\nmin_examples = { random-search = 20 }\nnum_candidates = 2\n")
    with dspy_cache(None), tk.open(config=source_config, disable=QUALITY_PLUGINS) as kit:
        import_generated(kit, tmp_path, cell_records(DATA))
        lm = dspy.utils.DummyLM([answer] * 3000)
        champion = kit.optimize(TASK, program=PROGRAM, metric=METRIC, lm=lm)
        challenger = kit.optimize(TASK, program=PROGRAM, metric=METRIC, optimizer="random-search", lm=lm)
        assert champion.promoted and not challenger.promoted and challenger.candidates
        kit.store.ensure_plan("p", TASK, {"per_cell": 2}, [("math", "fractions", "easy", i) for i in range(4)])
        owner = new_owner()
        done, failed, _claimed = kit.store.claim_slots("p", owner, 3, 60)
        kit.store.finish_slots("p", owner, [SlotResult(*done.cell, done.index, "done", example_id="x"),
                                            SlotResult(*failed.cell, failed.index, "failed", error="429")])
        runs = [kit.run(r.id).to_dict() for r in kit.runs()]
        before = content(kit)
        manifest = backup(kit, tmp_path / "runs.tgz", portable=True)
        assert manifest["counts"]["runs"] == 2 and manifest["counts"]["plans"] == 1
    program = Path(champion.program_path).read_text()
    Path(champion.program_path).unlink()  # the restored file comes from the backup

    target_config = make_project(tmp_path / "target", other_store_url)
    with dspy_cache(None), tk.open(config=target_config, disable=QUALITY_PLUGINS) as target:
        result = restore(tmp_path / "runs.tgz", target, open_store=opener)
        assert result["counts"]["runs"] == 2 and result["counts"]["plans"] == 1
        restored_path = tmp_path / "target" / "programs" / TASK / f"{champion.id}.json"
        assert result["programs"]["written"] == [str(restored_path)]
        assert restored_path.read_text() == program
        assert target.champion(TASK).id == champion.id
        after = [target.run(r.id).to_dict() for r in target.runs()]
        assert [r["id"] for r in after] == [champion.id, challenger.id]
        for old, new in zip(runs, after, strict=True):
            if old["id"] == champion.id:
                assert new.pop("program_path") == str(restored_path)
                old.pop("program_path")
            assert new == old  # scores, results, candidates and everything else
        assert [(p, target.store.plan_slot_records(p["name"])) for p in target.store.list_plans()] == before[3][2]
        assert target.store.slot_counts("p") == {"done": 1, "failed": 1, "claimed": 1, "pending": 1}
        assert before[:3] == content(target)[:3]
        loaded = target.program(TASK)
        assert json.loads(program)["generate"]["demos"]
        assert len(loaded.generate.demos) == len(json.loads(program)["generate"]["demos"])
