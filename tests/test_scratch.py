"""Temporary folders and partial files of killed runs: a backup, export, restore or saved program killed with
SIGKILL (no `finally` runs) leaves its temporary folder or file behind; the next run of the same kind removes
those of dead processes, and leaves alone those of live processes and of other hosts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from helpers import QUALITY_PLUGINS, qa

import dspy_trainkit as tk
from dspy_trainkit.lifecycle.restore import restore

# Each script patches one step of the real code to say "ready" and then wait, so the test can kill it there.
BACKUP = """
    from dspy_trainkit.lifecycle import backup as b
    original = b._copy_sqlite
    def paused(source, target):
        result = original(source, target)
        pause()
        return result
    b._copy_sqlite = paused
    with tk.open(DB, disable=QUALITY) as kit:
        kit.backup(OUT)
"""
EXPORT = """
    from dspy_trainkit.files import exporting
    original = exporting._counted
    def paused(examples, progress):
        for n, example in enumerate(original(examples, progress)):
            yield example
            if n == 0:
                pause()
    exporting._counted = paused
    with tk.open(DB, disable=QUALITY) as kit:
        kit.export(OUT)
"""
RESTORE = """
    from dspy_trainkit.lifecycle import restore as r
    original = r.verify
    def paused(path, folder, **options):
        manifest = original(path, folder, **options)
        pause()
        return manifest
    r.verify = paused
    with tk.open(DB, disable=QUALITY) as kit:
        r.restore(Path(OUT), kit, open_store=lambda url: tk.open(url, disable=QUALITY))
"""
PROGRAM = """
    from dspy_trainkit.optimization import runs
    class Program:
        def save(self, path):
            Path(path).write_text('{"half": ')
            pause()
    runs._save_program(Program(), Path(OUT), "run-killed")
"""


def killed(script: str, db: str, out: Path, tmp: Path) -> None:
    """Run `script` in a new Python process and SIGKILL it where it calls pause()."""
    source = (
        "import sys\nfrom pathlib import Path\nimport dspy_trainkit as tk\n"
        f"DB, OUT, QUALITY = {db!r}, {str(out)!r}, {list(QUALITY_PLUGINS)!r}\n"
        "def pause():\n    print('ready', flush=True)\n    sys.stdin.read()\n"
        + textwrap.dedent(script))
    env = {**os.environ, "TMPDIR": str(tmp)}
    process = subprocess.Popen([sys.executable, "-c", source], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               env=env, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL


def leftovers(folder: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in folder.glob(pattern))


@pytest.fixture
def project(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with tk.open(db, disable=QUALITY_PLUGINS) as kit:
        kit.add_many([qa(f"question {i}", f"answer {i}") for i in range(20)])
    return tmp_path, tmp, db


def test_a_killed_backup_leaves_its_folder_and_the_next_backup_removes_it(project):
    folder, tmp, db = project
    out = folder / "backups"
    out.mkdir()
    killed(BACKUP, db, out / "first.tar.gz", tmp)
    assert leftovers(out, ".trainkit-backup*")  # what SIGKILL leaves: a copy of the whole store
    other_host = out / ".trainkit-backup.elsewhere_1_abcd"  # another machine's, on a shared disk: not ours to judge
    other_host.mkdir()
    alive = out / f".trainkit-backup.{socket.gethostname().replace('.', '-')}_{os.getppid()}_abcd"
    alive.mkdir()  # a live process's
    with tk.open(db, disable=QUALITY_PLUGINS) as kit:
        kit.backup(out / "second.tar.gz")
    assert leftovers(out, ".trainkit-backup*") == sorted([other_host.name, alive.name])
    assert (out / "second.tar.gz").is_file() and not (out / "first.tar.gz").exists()


def test_a_killed_export_leaves_a_partial_file_and_the_next_export_removes_it(project):
    folder, tmp, db = project
    killed(EXPORT, db, folder / "out.jsonl", tmp)
    assert leftovers(folder, ".out.jsonl*")
    with tk.open(db, disable=QUALITY_PLUGINS) as kit:
        assert kit.export(folder / "other.jsonl") == 20  # any export into the folder cleans up
    assert leftovers(folder, ".out.jsonl*") == [] and leftovers(folder, ".other.jsonl*") == []
    assert not (folder / "out.jsonl").exists()


def test_a_killed_restore_leaves_its_folder_and_the_next_restore_removes_it(project):
    folder, tmp, db = project
    with tk.open(db, disable=QUALITY_PLUGINS) as kit:
        kit.backup(folder / "b.tar.gz")
    killed(RESTORE, f"sqlite:///{folder / 'new1.db'}", folder / "b.tar.gz", tmp)
    assert leftovers(tmp, "trainkit-restore*")
    with tk.open(f"sqlite:///{folder / 'new2.db'}", disable=QUALITY_PLUGINS) as kit:
        result = restore(folder / "b.tar.gz", kit, open_store=lambda url: tk.open(url, disable=QUALITY_PLUGINS))
        assert result["counts"]["examples"] == 20
    assert leftovers(tmp, "trainkit-restore*") == []


def test_a_killed_program_save_is_removed_by_the_next_run(project):
    from dspy_trainkit.optimization.runs import _save_program

    folder, tmp, db = project
    programs = folder / "programs"
    killed(PROGRAM, db, programs, tmp)
    assert leftovers(programs, ".run-killed*")

    class Program:
        def save(self, path):
            Path(path).write_text("{}")

    assert _save_program(Program(), programs, "run-next") == programs / "run-next.json"
    assert sorted(p.name for p in programs.iterdir()) == ["run-next.json"]
