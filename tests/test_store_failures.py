"""The store under failure: a PostgreSQL connection the server drops is replaced, readers do not wait for a
SQLite writer, lock waits and a full disk end in one clear message, NUL characters and concurrent snapshot
creation are clear errors, not driver tracebacks."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit import collection
from dspy_trainkit.cli.main import cli
from dspy_trainkit.errors import StoreError

TOML = """
[store]
url = "sqlite:///trainkit.db"

[tasks.qa]
signature = "question -> answer"

[plugin.sqlstore]
lock_timeout = 0.2
"""


# ---- PostgreSQL: a dropped connection -----------------------------------------------------------------------

@pytest.fixture
def pg(postgres_schema_url: str) -> Iterator[tuple[str, Any]]:
    """A store URL whose connections carry a name of their own, and an admin connection to drop them with."""
    import psycopg2

    name = f"tk_reconnect_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(postgres_schema_url)
    admin.autocommit = True
    try:
        yield f"{postgres_schema_url}&application_name={name}", lambda: _terminate(admin, name)
    finally:
        admin.close()


def _terminate(admin: Any, name: str) -> int:
    """`pg_terminate_backend` on every connection of the store (what a server restart does to them)."""
    with admin.cursor() as cur:
        cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                    (name,))
        return cur.fetchone()[0]


def test_postgres_reconnects_after_the_server_drops_the_connection(pg: tuple[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url, terminate = pg
    monkeypatch.setattr(collection, "RETRY_DELAYS", (0.05,))
    with tk.open(url) as kit:
        kit.add(task="qa", inputs={"question": "before"}, outputs={"answer": "a"})
        assert terminate() == 1
        assert kit.stats()["total"] == 1  # a read: retried on a new connection
        assert terminate() == 1
        kit.add(task="qa", inputs={"question": "after"}, outputs={"answer": "a"})  # a write: BEGIN reconnects
        assert kit.count(task="qa") == 2

        kit.collect("qa", {"question": "collected 1"}, {"answer": "a"})
        assert kit.flush(timeout=60)
        assert terminate() == 2  # the collector's writer thread has a connection of its own
        kit.collect("qa", {"question": "collected 2"}, {"answer": "a"})
        assert kit.flush(timeout=60)
        assert kit.count(task="qa") == 4 and kit.collection.stats.written == 2


def test_a_connection_lost_inside_a_transaction_is_one_clear_error_then_the_store_works(
        pg: tuple[str, Any]) -> None:
    url, terminate = pg
    with tk.open(url) as kit:
        with pytest.raises(StoreError, match="lost the connection to store postgresql://") as caught:
            with kit.store.write_transaction():
                terminate()
                kit.store.db.execute_sql("SELECT 1")
        assert "rolled back" in str(caught.value) and "run it again" in str(caught.value)
        kit.add(task="qa", inputs={"question": "q"}, outputs={"answer": "a"})
        assert kit.count() == 1


def test_nul_in_a_label_is_an_invalid_record_and_the_rest_is_stored(store_url: str) -> None:
    with tk.open(store_url) as kit:
        report = kit.add_many([{"task": "qa", "inputs": {"question": "good"}, "outputs": {"answer": "a"}},
                               {"task": "qa", "inputs": {"question": "bad"}, "outputs": {"answer": "a"},
                                "domain": "ma\x00th"},
                               {"task": "qa", "inputs": {"question": "nul in text\x00"}, "outputs": {"answer": "a"}}])
        assert report.invalid == 1
        assert "domain" in report.problems[0].message and "NUL" in report.problems[0].message
        assert sorted(ex.inputs["question"] for ex in kit.examples(task="qa")) == ["good", "nul in text\x00"]


def test_nul_in_an_event_reason_on_postgres_is_a_store_error(postgres_schema_url: str) -> None:
    with tk.open(postgres_schema_url) as kit:
        with pytest.raises(StoreError, match="NUL"):
            kit.add(task="qa", inputs={"question": "q"}, outputs={"answer": "a"}, reason="bad\x00reason")
        assert kit.count() == 0


def test_concurrent_snapshot_create_on_postgres_is_a_clear_error(postgres_schema_url: str) -> None:
    """Another process creates the same snapshot name and commits while this one is inserting it."""
    import psycopg2

    with tk.open(postgres_schema_url) as kit:
        kit.add(task="qa", inputs={"question": "q"}, outputs={"answer": "a"})
        other = psycopg2.connect(postgres_schema_url)  # holds the name in an open transaction
        try:
            with other.cursor() as cur:
                cur.execute("INSERT INTO snapshots (name, created_at, config, size, digest) "
                            "VALUES ('s1', 0, '{}', 0, '')")
            outcome: list[BaseException | None] = []

            def create() -> None:
                try:
                    kit.snapshot("s1")
                    outcome.append(None)
                except BaseException as exc:  # noqa: BLE001 - the test inspects it
                    outcome.append(exc)

            thread = threading.Thread(target=create)
            thread.start()
            watcher = psycopg2.connect(postgres_schema_url)
            try:
                with watcher.cursor() as cur:
                    while thread.is_alive():  # until the snapshot insert waits for the other transaction
                        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                    "AND query ILIKE %s", ("%INSERT INTO %snapshots%",))
                        if cur.fetchone()[0]:
                            break
                        watcher.commit()
            finally:
                watcher.close()
            other.commit()
            thread.join(60)
        finally:
            other.close()
        assert len(outcome) == 1 and isinstance(outcome[0], tk.TrainkitError), outcome
        assert "exists already" in str(outcome[0])
        assert [s["name"] for s in kit.store.list_snapshots()] == ["s1"]


# ---- SQLite: the write lock ---------------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "trainkit.toml").write_text(TOML, encoding="utf-8")
    with tk.open(config=tmp_path / "trainkit.toml") as kit:
        kit.add(task="qa", inputs={"question": "q"}, outputs={"answer": "a"})
    return tmp_path


@pytest.fixture
def writer(project: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction, holding the store's write lock."""
    conn = sqlite3.connect(project / "trainkit.db", isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO trainkit_migrations (name, applied_at) VALUES ('held', 0)")
    yield conn
    conn.execute("ROLLBACK")
    conn.close()


def test_read_only_commands_and_opening_do_not_wait_for_a_writer(project: Path, writer: sqlite3.Connection
                                                                 ) -> None:
    for args in (["stats"], ["list"], ["stats", "--collection"], ["snapshot", "list"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
    with tk.open() as kit:  # a pipeline's tk.open()
        assert kit.count(task="qa") == 1


def test_a_write_that_waits_past_the_lock_timeout_is_one_clear_error(project: Path, writer: sqlite3.Connection
                                                                      ) -> None:
    result = CliRunner().invoke(cli, ["add", "-t", "qa", "-i", "question=other", "-o", "answer=a"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: store sqlite:///{project / 'trainkit.db'} is locked: another process "
                                    "is writing to it and did not finish within 0.2 s")
    assert "lock_timeout" in result.output and result.output.count("\n") == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_lock_timeout_must_be_a_positive_number(tmp_path: Path) -> None:
    (tmp_path / "trainkit.toml").write_text(TOML.replace("0.2", "'soon'"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 1
    assert "[plugin.sqlstore] lock_timeout = 'soon': give a number of seconds above 0" in result.output


# ---- a full disk ----------------------------------------------------------------------------------------------

def test_disk_full_during_import_is_one_clear_message_and_the_store_stays_consistent(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dspy_trainkit_sqlstore import backend

    pages = sqlite3.connect(project / "trainkit.db").execute("PRAGMA page_count").fetchone()[0]
    monkeypatch.setitem(backend.SQLITE_PRAGMAS, "max_page_count", pages + 3)  # the disk fills up soon
    lines = [f'{{"question": "question {i} {"x" * 200}", "answer": "a"}}' for i in range(3000)]
    (project / "many.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", "many.jsonl", "-t", "qa"])
    assert result.exit_code == 1, result.output
    assert "Error: store sqlite:///" in result.output and "the disk is full" in result.output
    assert "Traceback" not in result.output and result.output.strip().count("\n") == 0
    conn = sqlite3.connect(project / "trainkit.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = conn.execute("SELECT count(*) FROM examples").fetchone()[0]
    assert (stored - 1) % 1000 == 0  # whole batches only


# ---- which driver errors become which message -----------------------------------------------------------------

def test_driver_errors_become_one_line_store_errors_and_bugs_keep_their_type() -> None:
    import peewee as pw
    from dspy_trainkit_sqlstore.errors import as_store_error

    url = "postgresql://team:secret@db:5432/tk"

    class DiskFull(pw.OperationalError):
        pgcode = "53100"

    full = as_store_error(DiskFull('could not extend file "base/16384/2619": No space left on device'), url, 60)
    assert full is not None and "the disk is full" in str(full) and "secret" not in str(full)
    lost = as_store_error(pw.InterfaceError("connection already closed"), url, 60)
    assert lost is not None and str(lost).startswith("lost the connection to store postgresql://team:***@db")
    try:  # SQLite rolled back by itself; peewee's ROLLBACK then failed too
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            raise pw.OperationalError("cannot rollback - no transaction is active") from None
    except pw.OperationalError as masked:
        masked.__context__ = sqlite3.OperationalError("database or disk is full")
        masked.__suppress_context__ = False
        assert "the disk is full" in str(as_store_error(masked, "sqlite:///x.db", 60))
    assert as_store_error(pw.IntegrityError("UNIQUE constraint failed"), url, 60) is None
    assert as_store_error(RuntimeError("a bug"), url, 60) is None
    assert as_store_error(StoreError("already clear"), url, 60) is None


def test_a_postgres_server_that_never_answers_is_an_error_after_the_connect_timeout(monkeypatch) -> None:
    """A port that takes the TCP connection and never answers (a hung server, a wrong load balancer) is one
    StoreError after the default connect timeout, not a hang: a health check must end."""
    import socket
    import threading

    from dspy_trainkit_sqlstore import backend

    monkeypatch.setattr(backend, "CONNECT_TIMEOUT", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    port = listener.getsockname()[1]
    try:
        with pytest.raises(StoreError, match=r"cannot connect to PostgreSQL store .*timeout") as caught:
            tk.open(f"postgresql://postgres:secret@127.0.0.1:{port}/x")
        assert "secret" not in str(caught.value)
    finally:
        for sock in accepted:
            sock.close()
        listener.close()
