"""Backup and restore: consistent copies while writers work, checksums verified before anything is written,
unsafe or damaged archives refused with one message, PostgreSQL -> SQLite -> PostgreSQL keeps content hashes."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import tarfile
import time
import uuid

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS, qa
from test_concurrency import finish, integrity, start_writers

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.lifecycle import snapshots
from dspy_trainkit.lifecycle.backup import backup
from dspy_trainkit.lifecycle.restore import BackupError, restore


def opener(url):
    return tk.open(url, disable=QUALITY_PLUGINS)


def fill(kit):
    kit.add_many([qa(f"q{i}", f"a{i}", domain="d", topic=f"t{i % 3}") for i in range(12)])
    kit.snapshot("v1", task="qa")
    first = sorted(kit.examples(), key=lambda e: e.id)[0]
    kit.edit(first.id, outputs={"answer": "edited"}, reason="fix")
    kit.set_status("archived", ids=(sorted(kit.examples(), key=lambda e: e.id)[1].id,), reason="old")


def content(kit):
    examples = sorted((e.id, e.content_hash, e.status, e.inputs, e.outputs, e.created_at, e.updated_at)
                      for e in kit.examples(status=None))
    snaps = {s["name"]: [ex.to_dict() for ex in snapshots.examples(kit, s["name"])]
             for s in kit.store.list_snapshots()}
    events = [e.to_dict() for e in kit.events()]
    return examples, snaps, events


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


@pytest.mark.parametrize("damage, message", [
    ("truncated", "damaged or truncated"),
    ("corrupt", "damaged"),
    ("tampered", "does not match its checksum"),
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


def test_restore_refuses_a_store_that_is_not_empty(portable_backup, tmp_path):
    with opener(f"sqlite:///{tmp_path / 'busy.db'}") as target:
        target.add(qa("already here"))
        with pytest.raises(BackupError, match="not empty"):
            restore(portable_backup, target, open_store=opener)
        assert target.count() == 1


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
