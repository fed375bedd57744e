"""Restore is all or nothing (a bad line or a crash leaves the store empty, and the same restore then works),
a tar bomb is refused before it is unpacked, and a manifest signed with TRAINKIT_BACKUP_KEY catches an archive
whose checksums were recomputed after tampering."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest
from click.testing import CliRunner
from test_backup import _repack, content, fill, opener

from dspy_trainkit.cli.main import cli
from dspy_trainkit.lifecycle import restore as restore_module
from dspy_trainkit.lifecycle.backup import backup
from dspy_trainkit.lifecycle.restore import BackupError, restore, verify


@pytest.fixture
def made(tmp_path):
    """A portable backup of a filled SQLite store, and that store's content."""
    with opener(f"sqlite:///{tmp_path / 'source.db'}") as kit:
        fill(kit)
        backup(kit, tmp_path / "good.tgz", portable=True)
        return tmp_path / "good.tgz", content(kit)


def _bad_event_line(members, manifest):
    lines = members["events.jsonl"].splitlines()
    lines.insert(len(lines) - 1, b'{"id": "broken", "kind": ')  # valid checksums: the manifest is recomputed
    members["events.jsonl"] = b"\n".join(lines) + b"\n"
    manifest["counts"]["events"] += 1


def _wrong_record_line(members, manifest):
    lines = members["events.jsonl"].splitlines()
    lines.append(b'{"id": "x"}')  # JSON, but not an event
    members["events.jsonl"] = b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("change, message", [(_bad_event_line, r"events.jsonl line \d+ is not JSON"),
                                             (_wrong_record_line, r"events.jsonl line \d+ is not a valid record")])
def test_a_bad_line_with_valid_checksums_restores_nothing(made, tmp_path, store_url, change, message):
    good, original = made
    _repack(good, tmp_path / "bad.tgz", change)
    with opener(store_url) as target:
        with pytest.raises(BackupError, match=message + ".*nothing was written"):
            restore(tmp_path / "bad.tgz", target, open_store=opener)
        assert target.store.is_empty() and list(target.events()) == []
        restore(good, target, open_store=opener)  # the store is still empty: the good backup goes in
        assert content(target) == original
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'cli.db'}", "restore",
                                      str(tmp_path / "bad.tgz")])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "events.jsonl line" in result.output


def test_a_restore_that_dies_midway_leaves_the_store_empty(made, tmp_path, store_url, monkeypatch):
    good, original = made
    with opener(store_url) as target:
        store = type(target.store)
        real = store.load_events

        def die(self, events):
            real(self, events)  # written inside the restore's transaction, then the process "dies"
            raise KeyboardInterrupt

        monkeypatch.setattr(store, "load_events", die)
        with pytest.raises(KeyboardInterrupt):
            restore(good, target, open_store=opener)
        monkeypatch.setattr(store, "load_events", real)
        assert target.store.is_empty() and target.count(status=None) == 0 and list(target.events()) == []
        restore(good, target, open_store=opener)
        assert content(target) == original


def _bomb(path, size, *, manifest_size=None):
    """A backup whose examples.jsonl is `size` zero bytes, its manifest's checksums made to fit (as an attacker
    would), or giving `manifest_size` instead."""
    sha = hashlib.sha256()
    chunk = b"\0" * (1 << 20)
    for _ in range(size >> 20):
        sha.update(chunk)
    files = {"examples.jsonl": {"sha256": sha.hexdigest(), "size": manifest_size or size}}
    for name in ("snapshots.jsonl", "events.jsonl", "runs.jsonl", "plans.jsonl"):
        files[name] = {"sha256": hashlib.sha256(b"").hexdigest(), "size": 0}
    manifest = json.dumps({"format": "trainkit-backup", "version": 2, "kind": "portable", "files": files,
                           "counts": {}}).encode()

    class Zeros(io.RawIOBase):
        left = size

        def readable(self):
            return True

        def readinto(self, buffer):
            n = min(len(buffer), self.left)
            buffer[:n] = b"\0" * n
            self.left -= n
            return n

    with gzip.open(path, "wb", compresslevel=1) as raw, tarfile.open(fileobj=raw, mode="w|") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        info = tarfile.TarInfo("examples.jsonl")
        info.size = size
        tar.addfile(info, io.BufferedReader(Zeros()))
        for name in ("snapshots.jsonl", "events.jsonl", "runs.jsonl", "plans.jsonl"):
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))


def _unpacked(folder):
    return sum(p.stat().st_size for p in folder.iterdir())


@pytest.mark.parametrize("manifest_size", [None, 10])
def test_a_tar_bomb_is_refused_before_it_is_unpacked(tmp_path, monkeypatch, manifest_size):
    monkeypatch.setattr(restore_module, "FLOOR", 1 << 20, raising=False)  # so a small bomb shows it
    _bomb(tmp_path / "bomb.tgz", 64 << 20, manifest_size=manifest_size)
    assert (tmp_path / "bomb.tgz").stat().st_size < 1 << 20
    work = tmp_path / "work"
    work.mkdir()
    expected = "unpacks to more than" if manifest_size is None else "does not match its checksum"
    with pytest.raises(BackupError, match=expected):
        verify(tmp_path / "bomb.tgz", work)
    assert _unpacked(work) < 1 << 20


def test_unpacking_stops_at_the_limit_given(made, tmp_path):
    good, _ = made
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(BackupError, match="unpacks to more than 0 MiB.*--max-unpacked"):
        verify(good, work, max_bytes=2000)
    assert _unpacked(work) <= 2000 + 16 << 20  # the manifest, and no member past the limit
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 't.db'}", "restore", str(good),
                                      "--max-unpacked", "1"])
    assert result.exit_code == 0, result.output


def test_a_signed_manifest_catches_recomputed_checksums(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINKIT_BACKUP_KEY", "correct horse battery staple")
    with opener(f"sqlite:///{tmp_path / 'source.db'}") as kit:
        fill(kit)
        manifest = backup(kit, tmp_path / "signed.tgz", portable=True)
        unsigned_key = manifest.pop("hmac_sha256")
        assert len(unsigned_key) == 64

    def tamper(members, manifest):
        members["examples.jsonl"] = members["examples.jsonl"].replace(b'"a2"', b'"evil"')

    _repack(tmp_path / "signed.tgz", tmp_path / "tampered.tgz", tamper)  # checksums recomputed, signature kept
    _repack(tmp_path / "signed.tgz", tmp_path / "unsigned.tgz",
            lambda members, manifest: manifest.pop("hmac_sha256"))
    for name, message in [("tampered.tgz", "signature does not match"), ("unsigned.tgz", "not signed")]:
        with opener(f"sqlite:///{tmp_path / name}.db") as target:
            with pytest.raises(BackupError, match=message + ".*nothing was written"):
                restore(tmp_path / name, target, open_store=opener)
            assert target.store.is_empty()
    with opener(f"sqlite:///{tmp_path / 'ok.db'}") as target:
        assert restore(tmp_path / "signed.tgz", target, open_store=opener)["counts"]["examples"] == 12
    monkeypatch.setenv("TRAINKIT_BACKUP_KEY", "another key")
    with opener(f"sqlite:///{tmp_path / 'other.db'}") as target, pytest.raises(BackupError, match="does not match"):
        restore(tmp_path / "signed.tgz", target, open_store=opener)
    monkeypatch.delenv("TRAINKIT_BACKUP_KEY")  # without a key only the checksums are checked (see docs)
    with opener(f"sqlite:///{tmp_path / 'nokey.db'}") as target:
        assert restore(tmp_path / "tampered.tgz", target, open_store=opener)["counts"]["examples"] == 12


def _duplicate_id(members, manifest):
    lines = members["examples.jsonl"].splitlines()
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    last["id"] = first["id"]  # two records, one id: the second used to vanish while the count said all
    lines[-1] = json.dumps(last).encode()
    members["examples.jsonl"] = b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("change, message", [(_duplicate_id, "id is used twice")])
def test_an_archive_with_a_reused_id_restores_nothing(made, tmp_path, store_url, change, message):
    good, original = made
    _repack(good, tmp_path / "bad.tgz", change)
    with opener(store_url) as target:
        with pytest.raises(Exception, match=message):
            restore(tmp_path / "bad.tgz", target, open_store=opener)
        assert target.store.is_empty()
        restore(good, target, open_store=opener)
        assert content(target) == original
