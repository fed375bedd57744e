"""Concurrent writers: four processes on one SQLite store and eight threads on PostgreSQL lose no write and
never show "database is locked"; ten kill -9s of an import or a cleanup leave a sound store that a re-run
completes with exact counts and no duplicates."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import QUALITY_PLUGINS

import dspy_trainkit as tk
from dspy_trainkit import load_settings

WRITER = r"""
import sys, time, pathlib
import dspy_trainkit as tk
url, name, batches, size, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with tk.open(url, disable=DISABLE) as kit:
    for b in range(batches):
        if pathlib.Path(stop).exists():
            break
        records = [{"task": "qa", "inputs": {"question": f"{name} batch {b} item {i}"},
                    "outputs": {"answer": "42"}, "topic": name} for i in range(size)]
        report = kit.add_many(records)
        assert len(report.ids) == size, report
        print(b, flush=True)
""".replace("DISABLE", repr(QUALITY_PLUGINS))


def start_writers(url: str, tmp_path: Path, count: int = 4, batches: int = 30, size: int = 10
                  ) -> tuple[list[subprocess.Popen], Path]:
    stop = tmp_path / "stop-writers"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, f"w{n}", str(batches), str(size), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(count)]
    return procs, stop


def finish(procs: list[subprocess.Popen], timeout: float = 120) -> list[tuple[int, str, str]]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        results.append((proc.returncode, out, err))
    return results


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_four_processes_write_one_sqlite_store_without_losses_or_lock_errors(tmp_path):
    db = tmp_path / "shared.db"
    url = f"sqlite:///{db}"
    tk.open(url).close()  # create it once, so the writers only add
    procs, _ = start_writers(url, tmp_path, count=4, batches=40, size=25)
    results = finish(procs)
    for code, _out, err in results:
        assert code == 0, err
        assert "locked" not in err.lower()
    with tk.open(url) as kit:
        assert kit.count() == 4 * 40 * 25
        for n in range(4):
            assert kit.count(topic=f"w{n}") == 40 * 25
        added = sum(len(e.example_ids) for e in kit.events() if e.kind == "added")
        assert added == 4 * 40 * 25  # every write has its audit entry
    assert integrity(db) == "ok"


@pytest.mark.postgres
def test_eight_threads_write_postgres_without_losses(postgres_schema_url):
    tk.open(postgres_schema_url).close()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with tk.open(postgres_schema_url, disable=QUALITY_PLUGINS) as kit:
                for b in range(10):
                    records = [{"task": "qa", "inputs": {"question": f"t{n} b{b} i{i}"}, "outputs": {"answer": "1"},
                                "topic": f"t{n}"} for i in range(10)]
                    assert len(kit.add_many(records).ids) == 10
                    # and a racing duplicate of another thread's batch: dedup, never an error
                    kit.add_many([{"task": "qa", "inputs": {"question": "shared"}, "outputs": {"answer": "1"}}])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    with tk.open(postgres_schema_url) as kit:
        assert kit.count() == 8 * 10 * 10 + 1
        assert all(kit.count(topic=f"t{n}") == 100 for n in range(8))


IMPORTER = r"""
import sys
import dspy_trainkit as tk
with tk.open(sys.argv[1], disable=DISABLE) as kit:
    kit.import_files([sys.argv[2]], task="qa")
""".replace("DISABLE", repr(QUALITY_PLUGINS))

CLEANER = r"""
import sys
import dspy_trainkit as tk
from dspy_trainkit import load_settings
import pathlib
settings = load_settings(env={}, cwd=pathlib.Path(sys.argv[2]))
with tk.open(sys.argv[1], settings=settings, disable=DISABLE) as kit:
    kit.manager.run()
""".replace("DISABLE", repr(QUALITY_PLUGINS))


def _no_duplicates(db: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(db)
    try:
        total = conn.execute("SELECT count(*) FROM examples").fetchone()[0]
        distinct = conn.execute("SELECT count(DISTINCT task || content_hash) FROM examples").fetchone()[0]
        archived = conn.execute("SELECT count(*) FROM examples WHERE status = 'archived'").fetchone()[0]
        return total, distinct, archived
    finally:
        conn.close()


def _wait_until_started(db: Path, proc: subprocess.Popen, *, archived: bool) -> None:
    """Poll (read-only) until the process has stored or archived something, or has ended."""
    column = "status = 'archived'" if archived else "1"
    while proc.poll() is None:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            try:
                if conn.execute(f"SELECT count(*) FROM examples WHERE {column}").fetchone()[0] > 0:
                    return
            finally:
                conn.close()
        except sqlite3.OperationalError:  # not created yet, or busy for a moment
            pass
        time.sleep(0.005)


@pytest.mark.slow
def test_kill_9_during_import_or_cleanup_then_rerun_gives_exact_counts(tmp_path):
    rows = 10000
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps({"question": f"question number {i}", "answer": str(i)}) + "\n"
                              for i in range(rows)))
    (tmp_path / "trainkit.toml").write_text("[intake]\nbatch_size = 100\n[cleanup]\nmin_quality = 0.5\n"
                                            "[tasks.qa]\ninputs = ['question']\noutputs = ['answer']\n")
    rng = random.Random(20240601)
    interrupted = 0
    for run in range(10):
        db = tmp_path / f"kill{run}.db"
        url = f"sqlite:///{db}"
        cleanup_run = run % 2 == 1
        if cleanup_run:  # a full import first, with half the examples scored below the threshold
            subprocess.run([sys.executable, "-c", IMPORTER, url, str(source)], check=True, cwd=tmp_path)
            conn = sqlite3.connect(db)
            conn.execute("UPDATE examples SET quality = CASE WHEN CAST(json_extract(outputs, '$.answer') AS INT) "
                         "% 2 = 0 THEN 0.1 ELSE 0.9 END")
            conn.commit()
            conn.close()
            script, args = CLEANER, [url, str(tmp_path)]
        else:
            script, args = IMPORTER, [url, str(source)]
        proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Start-up time varies a lot on a loaded machine: wait until the work has visibly begun (the first
        # rows stored, or archived), then kill at a random moment within it.
        _wait_until_started(db, proc, archived=cleanup_run)
        time.sleep(rng.uniform(0.0, 0.3 if cleanup_run else 0.5))
        proc.kill()  # SIGKILL
        proc.wait()
        assert integrity(db) == "ok", f"run {run}"
        partial = _no_duplicates(db)
        assert partial[0] == partial[1]
        interrupted += 0 < (partial[2] if cleanup_run else partial[0]) < (rows // 2 if cleanup_run else rows)
        subprocess.run([sys.executable, "-c", script, *args], check=True, cwd=tmp_path,
                       stdout=subprocess.DEVNULL)
        assert integrity(db) == "ok", f"run {run}"
        total, distinct, archived = _no_duplicates(db)
        assert total == distinct == rows, f"run {run}"
        assert archived == (rows // 2 if cleanup_run else 0), f"run {run}"
        if cleanup_run:
            with tk.open(url, settings=load_settings(env={}, cwd=tmp_path), disable=QUALITY_PLUGINS) as kit:
                archiving = [e for e in kit.events() if e.kind == "status_changed"]
                assert sum(len(e.example_ids) for e in archiving) == rows // 2  # each archived exactly once
                assert {e.reason for e in archiving} == {"cleanup: min_quality"}
    print(f"{interrupted} of 10 runs were killed mid-way")  # noqa: T201
    assert interrupted >= 3  # the kills really land in the middle of the work, not before or after it
