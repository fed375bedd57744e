"""Operations around backups: timestamped backups in a folder with rotation (`trainkit backup --dir D --keep N`),
`trainkit backup verify FILE` (checksums, signature, a trial restore; exit 0 or 1), and the restore drill:
PostgreSQL -> backup -> a fresh PostgreSQL database and a SQLite store, with equal content digests."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_backup import content, fill, opener

from dspy_trainkit.cli.main import cli
from dspy_trainkit.lifecycle.backup import backup
from dspy_trainkit.lifecycle.digest import content_digest
from dspy_trainkit.lifecycle.rotation import NAME, backup_name, rotate
from dspy_trainkit.store import redact_url


def run(*args, env=None):
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


@pytest.fixture
def source(tmp_path):
    url = f"sqlite:///{tmp_path / 'src.db'}"
    with opener(url) as kit:
        fill(kit)
        digest = content_digest(kit)["sha256"]
    return url, digest


def test_backup_dir_keep_rotates_only_its_own_files(source, tmp_path):
    url, _ = source
    folder = tmp_path / "backups"
    folder.mkdir()
    foreign = folder / "notes.txt"
    foreign.write_text("mine")
    lookalike = folder / "trainkit-20000101T000000Z.tgz"  # a trainkit-like name that is not a backup
    lookalike.write_bytes(b"not a tar")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with opener(other) as kit:  # another store backed up into the same folder
        kit.add_many(fill.__globals__["qa"](f"o{i}", "x") for i in range(2))
    code, out = run("--db", other, "backup", "--dir", str(folder))
    assert code == 0, out
    others = [p for p in folder.iterdir() if NAME.match(p.name) and p != lookalike]
    written = []
    for n in range(4):
        code, out = run("--db", url, "backup", "--dir", str(folder), "--keep", "2", "--json")
        assert code == 0, out
        result = json.loads(out)
        written.append(Path(result["file"]))
        assert NAME.match(written[-1].name) and written[-1].parent == folder
        assert result["counts"]["examples"] == 12
        assert len(result["deleted"]) == (1 if n >= 2 else 0)
    assert len(set(written)) == 4  # same-second backups get -2, -3 suffixes rather than overwriting
    left = sorted(p.name for p in folder.iterdir())
    assert sorted(p.name for p in written[-2:]) == [n for n in left if Path(folder / n) in written]
    assert foreign.exists() and lookalike.exists() and all(p.exists() for p in others)
    code, out = run("--db", url, "backup", "--dir", str(folder), "--keep", "1")
    assert code == 0 and "deleted 2" in out, out


def test_rotation_never_deletes_the_backup_just_written(source, tmp_path):
    url, _ = source
    with opener(url) as kit:
        future = tmp_path / "trainkit-29991231T235959Z.tgz"  # a clock that went backwards since
        backup(kit, future)
        now = backup_name(tmp_path)
        backup(kit, now)
        deleted = rotate(tmp_path, redact_url(kit.store.url), 1, now)
    assert now.exists() and deleted == [future]


def test_backup_option_errors_are_usage_errors(source, tmp_path):
    url, _ = source
    assert run("--db", url, "backup")[0] == 2
    code, out = run("--db", url, "backup", str(tmp_path / "x.tgz"), "--keep", "2")
    assert code == 2 and "give --dir too" in out
    code, out = run("--db", url, "backup", "--dir", str(tmp_path / "missing"))
    assert code == 2 and "no such folder" in out
    code, out = run("--db", url, "backup", str(tmp_path / "x.tgz"), "--dir", str(tmp_path))
    assert code == 2 and "either FILE or --dir" in out
    assert not (tmp_path / "x.tgz").exists()


@pytest.mark.parametrize("portable", [False, True])
def test_verify_passes_a_good_backup_with_the_store_digest(source, tmp_path, portable):
    url, digest = source
    file = tmp_path / "b.tgz"
    args = ["--db", url, "backup", str(file)] + (["--portable"] if portable else [])
    assert run(*args)[0] == 0
    code, out = run("--db", url, "backup", "verify", str(file), "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["digest"] == digest and result["signature"] == "unsigned"
    assert result["counts"]["examples"] == 12 and result["kind"] == ("portable" if portable else "sqlite")
    code, out = run("--db", url, "backup", "verify", str(file))
    assert code == 0 and f"content digest {digest}" in out and "is good" in out


def _damage(src: Path, dst: Path) -> None:
    """Flip one byte of examples.jsonl (sizes unchanged, so only the checksum can tell)."""
    with tarfile.open(src, "r:gz") as tar, tarfile.open(dst, "w:gz") as out:
        for member in tar:
            data = tar.extractfile(member).read()
            if member.name == "examples.jsonl":
                data = data[:10] + bytes([data[10] ^ 1]) + data[11:]
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def test_verify_fails_damaged_altered_and_wrongly_signed_backups(source, tmp_path):
    url, _ = source
    good = tmp_path / "good.tgz"
    assert run("--db", url, "backup", str(good), "--portable")[0] == 0
    _damage(good, tmp_path / "bad.tgz")
    code, out = run("--db", url, "backup", "verify", str(tmp_path / "bad.tgz"))
    assert code == 1 and "examples.jsonl does not match its checksum" in out, out
    (tmp_path / "junk.tgz").write_bytes(b"junk")
    code, out = run("--db", url, "backup", "verify", str(tmp_path / "junk.tgz"))
    assert code == 1 and "not a trainkit backup" in out
    code, out = run("--db", url, "backup", "verify", str(tmp_path / "absent.tgz"))
    assert code == 1 and "no such file" in out
    signed = tmp_path / "signed.tgz"
    assert run("--db", url, "backup", str(signed), env={"TRAINKIT_BACKUP_KEY": "k1"})[0] == 0
    code, out = run("--db", url, "backup", "verify", str(signed), "--json", env={"TRAINKIT_BACKUP_KEY": "k1"})
    assert code == 0 and json.loads(out)["signature"] == "verified"
    assert json.loads(run("--db", url, "backup", "verify", str(signed), "--json")[1])["signature"] == "not checked"
    code, out = run("--db", url, "backup", "verify", str(signed), env={"TRAINKIT_BACKUP_KEY": "k2"})
    assert code == 1 and "signature does not match" in out and "k2" not in out
    code, out = run("--db", url, "backup", "verify", str(good), env={"TRAINKIT_BACKUP_KEY": "k1"})
    assert code == 1 and "not signed" in out
    # a byte that is not UTF-8 in the key (a lone surrogate to Python): a traceback before (a stranger's finding)
    code, out = run("--db", url, "backup", str(tmp_path / "odd.tgz"), env={"TRAINKIT_BACKUP_KEY": "k\udcff"})
    assert code == 1 and out == "Error: TRAINKIT_BACKUP_KEY is not UTF-8 text; set a key in UTF-8 (its value is " \
                                "not shown)\n" and not (tmp_path / "odd.tgz").exists()
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"trainkit-verify.*_{os.getpid()}_*"))


@pytest.mark.postgres
def test_restore_drill_postgres_to_a_fresh_postgres_database_and_to_sqlite(postgres_schema_url,
                                                                          postgres_database_url, tmp_path):
    with opener(postgres_schema_url) as kit:
        fill(kit)
        original, digest = content(kit), content_digest(kit)
    folder = tmp_path / "backups"
    folder.mkdir()
    code, out = run("--db", postgres_schema_url, "backup", "--dir", str(folder), "--keep", "3", "--json")
    assert code == 0, out
    file = json.loads(out)["file"]
    assert json.loads(out)["kind"] == "portable"
    code, out = run("--db", postgres_schema_url, "backup", "verify", file, "--json")
    assert code == 0 and json.loads(out)["digest"] == digest["sha256"], out
    sqlite_url = f"sqlite:///{tmp_path / 'restored.db'}"
    for target in (postgres_database_url, sqlite_url):
        code, out = run("--db", target, "restore", file, "--json")
        assert code == 0, out
        with opener(target) as restored:
            assert content_digest(restored) == digest
            assert content(restored) == original
    with opener(postgres_database_url) as restored:
        assert restored.store.url.startswith("postgresql://") and restored.count() == 12


def test_two_backups_started_in_the_same_second_get_two_names(tmp_path):
    """The name is reserved when it is chosen (created exclusively), so a second backup starting before the
    first has written its file takes the next number instead of overwriting it."""
    from dspy_trainkit.lifecycle.rotation import backup_name

    now = 1_800_000_000.0
    first, second = backup_name(tmp_path, now), backup_name(tmp_path, now)
    assert first != second and first.is_file() and second.is_file()
    assert [first.name, second.name] == ["trainkit-20270115T080000Z.tgz", "trainkit-20270115T080000Z-2.tgz"]


def test_a_database_error_during_backup_is_one_message_and_leaves_no_reservation(tmp_path, monkeypatch):
    """A full disk while SQLite copies the store raised a driver traceback; now it is one Error line, exit 1,
    and the reserved name is removed (it would look like a backup in progress forever)."""
    import sqlite3

    from click.testing import CliRunner

    from dspy_trainkit.cli.main import cli
    from dspy_trainkit.lifecycle import backup as backup_module

    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    (tmp_path / "backups").mkdir()

    def full_disk(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(backup_module, "backup", full_disk)
    result = CliRunner().invoke(cli, ["backup", "--dir", "backups", "--keep", "3"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if x.strip()]
    assert line.startswith("Error: backup backups/trainkit-") and "database or disk is full" in line
    assert list((tmp_path / "backups").iterdir()) == []


SLOW_BACKUP = """
import sys, time
import dspy_trainkit.lifecycle.backup as backup
copy = backup._copy_sqlite
def slow_copy(source, target):
    done = copy(source, target)
    print("copying", flush=True)  # the partial backup file exists now; the test sends SIGTERM
    time.sleep(120)
    return done
backup._copy_sqlite = slow_copy
from dspy_trainkit.cli.main import main
sys.argv = ["trainkit", *sys.argv[1:]]
main()
"""


def test_sigterm_mid_backup_removes_the_partial_file(source, tmp_path):
    import sys

    from helpers import sigterm_mid_write

    url, _ = source
    out = tmp_path / "out"
    out.mkdir()
    sigterm_mid_write([sys.executable, "-c", SLOW_BACKUP, "--db", url, "backup", str(out / "b.tar.gz")], tmp_path,
                      out, "copying")
    assert list(out.iterdir()) == []  # no partial file, no backup, no scratch folder


def test_a_backup_killed_with_sigkill_leaves_nothing_after_the_next_run(source, tmp_path):
    """kill -9 mid-backup leaves the reserved name (and the partial file); the next `backup --dir` removes both,
    since their owner is gone, and a reservation of a running backup is left alone."""
    import signal
    import subprocess
    import sys

    from dspy_trainkit.lifecycle.rotation import clean_reservations, reserved_by

    url, _ = source
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen([sys.executable, "-c", SLOW_BACKUP, "--db", url, "backup", "--dir", str(out)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "copying", process.stderr.read()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
        process.wait()
    (reserved,) = [p for p in out.iterdir() if NAME.match(p.name)]
    assert reserved_by(reserved), reserved.read_bytes()
    held = reserved.read_bytes()
    running = backup_name(out, 1_800_000_000.0)  # this process's own reservation: alive, so kept
    assert clean_reservations(out) == [reserved] and running.exists()
    running.unlink()
    reserved.write_bytes(held)  # put the killed backup's reservation back for the command to find
    code, output = run("--db", url, "backup", "--dir", str(out), "--keep", "1")
    assert code == 0, output
    (written,) = out.iterdir()  # the new backup only: no reservation, no partial file, no scratch folder
    assert NAME.match(written.name) and reserved_by(written) is None
