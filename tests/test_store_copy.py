"""PostgreSQL bulk inserts by COPY (`pgcopy.py`): hostile text round-trips exactly, the rows are the ones the
INSERT path stores, a batch that meets rows a concurrent writer stored falls back to `ON CONFLICT DO NOTHING`
with the same result, text COPY cannot carry keeps the INSERT's error, and a connection dropped mid-import
keeps the batches already committed; derived example data goes by COPY too."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import dspy_trainkit_sqlstore.pgcopy as pgcopy
import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.errors import StoreError
from dspy_trainkit.models import Event, Example

#: Text that COPY's text format would mangle, CSV's quoting would trip on, or the server might convert.
HOSTILE = [
    "back\\slash", "\\", "\\\\N", "\\N", "\\.", "line\n\\.\nmore", "\\.\n", "tab\there", "cr\rlf\r\n",
    "new\nline", 'quote"inside', '"', '""', ",", "a,b;c|d", "NULL", "null", "", " ", "  padded  ",
    "\u00e9\u0301 combining", "emoji \U0001f9ea\U0001f44d\U0001f3fd", "\u202eright-to-left", "\u4e2d\u6587",
    "\x01\x02\x1b[31m\x7f", "\u2028\u2029", "'; DROP TABLE examples; --", "$$dollar$$", "E'\\x41'",
    "\ufeffbom", "\x85nel",
]
HUGE = "x\\y\t\"z\"\n" * 600_000  # ~5 MiB in one field, every special character on every line


def _hostile_examples(tag: str) -> list[Example]:
    examples = [Example(task="qa", inputs={"question": f"{tag} {n} {text}", "raw": text},
                        outputs={"answer": text, "nested": [text, {"k" + text: None}]},
                        domain=text if text.strip() else None, topic=f"t{n}{text}",
                        metadata={"note": text, "nul": f"a\x00{text}"},
                        quality=[0.1, 1e-300, 5e-324, 0.30000000000000004, 1.0][n % 5])
                for n, text in enumerate(HOSTILE)]
    examples.append(Example(task="qa", inputs={"question": f"{tag} huge"}, outputs={"answer": HUGE}, topic=HUGE[:200]))
    examples += [Example(task="qa", inputs={"question": f"{tag} filler {n}"}, outputs={"answer": str(n)},
                         quality=n / 101) for n in range(pgcopy.COPY_MIN_ROWS)]
    return examples


def _rows(store: Any) -> dict[str, tuple]:
    """Every stored column of every example, as PostgreSQL returns them, by content hash."""
    cursor = store.db.execute_sql("SELECT * FROM examples")
    names = [d[0] for d in cursor.description]
    return {row[names.index("content_hash")]: row for row in cursor.fetchall()}


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(table, stored) of every COPY attempt."""
    seen: list[tuple[str, bool]] = []
    real_new, real_rows = pgcopy.copy_new_rows, pgcopy.copy_rows

    def new_rows(cursor: Any, table: str, columns: Any, rows: Any) -> bool:
        seen.append((table, done := real_new(cursor, table, columns, rows)))
        return done

    def plain_rows(cursor: Any, table: str, columns: Any, rows: Any) -> bool:
        seen.append((table, done := real_rows(cursor, table, columns, rows)))
        return done

    monkeypatch.setattr(pgcopy, "copy_new_rows", new_rows)
    monkeypatch.setattr(pgcopy, "copy_rows", plain_rows)
    return seen


def test_hostile_text_round_trips_exactly_through_copy(postgres_schema_url: str, copies: list) -> None:
    examples = _hostile_examples("copy")
    with tk.open(postgres_schema_url) as kit:
        result = kit.store.insert_examples(examples, Event(kind="added", actor="t", reason="hostile \\ \t \n \""))
        assert [c for c in copies if c[1]] == [("examples", True), ("event_examples", True)]  # both by COPY
        assert result.inserted == tuple(ex.id for ex in examples) and result.duplicates == ()
        for ex in examples:
            back = kit.store.get(ex.id)
            assert back is not None
            assert (back.inputs, back.outputs, back.domain, back.topic, back.metadata) == (
                ex.inputs, ex.outputs, ex.domain, ex.topic, ex.metadata)
            assert back.quality == ex.quality and back.scores == ex.scores and back.findings == ex.findings
            assert back.created_at == ex.created_at and back.last_used_at is None
        (event,) = [e for e in kit.events() if e.kind == "added"]
        assert tuple(event.example_ids) == result.inserted and event.reason == "hostile \\ \t \n \""


def test_copy_stores_the_rows_the_insert_path_stores(postgres_schema_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The same examples into two tables, one by COPY and one by INSERT: every column of every row is equal."""
    examples = _hostile_examples("same")
    with tk.open(postgres_schema_url) as kit:
        kit.store.insert_examples(examples, Event(kind="added"))
        by_copy = _rows(kit.store)
        kit.store.db.execute_sql("DELETE FROM examples")
        monkeypatch.setattr(pgcopy, "COPY_MIN_ROWS", 10**9)
        kit.store.insert_examples(examples, Event(kind="added"))
        by_insert = _rows(kit.store)
    assert len(by_copy) == len(examples) and by_copy == by_insert



def test_example_data_bytes_round_trip_through_copy_and_stored_rows_take_the_upsert(postgres_schema_url: str,
                                                                                     copies: list) -> None:
    """Derived data (neardup's signatures) goes by COPY as bytea hex; every byte value, an empty blob and a
    blob that looks like an escape come back exactly, and rows already stored are replaced as the upsert did."""
    examples = [Example(task="qa", inputs={"q": f"question {n}"}, outputs={"a": str(n)})
                for n in range(pgcopy.COPY_MIN_ROWS + 6)]
    blobs = [bytes(range(256)), b"", b"\\x41", b'"\n,\x00', *(bytes([n]) * n for n in range(len(examples) - 4))]
    first = {ex.id: blob for ex, blob in zip(examples, blobs, strict=True)}
    second = {example_id: b"new " + blob for example_id, blob in first.items()}
    hashes = {ex.id: ex.content_hash for ex in examples}
    with tk.open(postgres_schema_url) as kit:
        kit.store.insert_examples(examples, Event(kind="added"))
        kit.store.save_example_data("k", [(i, hashes[i], blob) for i, blob in first.items()])
        assert ("example_data", True) in copies
        query = tk.ExampleQuery(task="qa")
        assert dict(kit.store.iter_example_data("k", query)) == first
        copies.clear()
        kit.store.save_example_data("k", [(i, hashes[i], blob) for i, blob in second.items()])  # stored: upsert
        assert copies == [("example_data", False)]
        assert dict(kit.store.iter_example_data("k", query)) == second
        few = [ex.id for ex in examples[:3]]
        assert dict(kit.store.iter_example_data("k", tk.ExampleQuery(ids=few))) == {i: second[i] for i in few}



def test_example_data_commits_without_waiting_for_the_flush_only_in_a_transaction_of_its_own(
        postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Derived data may skip the WAL flush wait (it is recomputed if lost); examples written in the same
    transaction as a save must not, and the setting never outlives the save's transaction."""
    examples = [Example(task="qa", inputs={"q": f"question {n}"}, outputs={"a": str(n)})
                for n in range(pgcopy.COPY_MIN_ROWS)]
    seen = []
    real = pgcopy.copy_new_rows

    def recording(cursor: Any, table: str, *args: Any) -> bool:
        if table == "example_data":
            cursor.execute("SHOW synchronous_commit")
            seen.append(cursor.fetchone()[0])
        return real(cursor, table, *args)

    monkeypatch.setattr(pgcopy, "copy_new_rows", recording)
    with tk.open(postgres_schema_url) as kit:
        store = kit.store
        store.insert_examples(examples, Event(kind="added"))
        store.save_example_data("k", [(ex.id, ex.content_hash, b"x") for ex in examples])
        assert seen == ["off"]
        with store.write_transaction():  # the caller's transaction: its commit waits as always
            store.save_example_data("k", [(ex.id, ex.content_hash, b"y") for ex in examples])
            assert store.db.execute_sql("SHOW synchronous_commit").fetchone()[0] == "on"
        assert seen == ["off", "on"]
        assert store.db.execute_sql("SHOW synchronous_commit").fetchone()[0] == "on"  # SET LOCAL: gone after

def test_values_copy_as_an_insert_stores_them(postgres_schema_url: str) -> None:
    """NULL and the empty string stay apart, text is kept byte for byte and floats come back as the same
    doubles, as execute_values stores them; except -0.0, which COPY keeps and an INSERT turns into 0 (psycopg2
    sends floats as numeric literals, and numeric has no negative zero)."""
    import psycopg2
    from psycopg2.extras import execute_values

    doubles = [0.1 + 0.2, 5e-324, 1.7976931348623157e308, -1e-300, float("inf"), float("-inf"), float("nan"),
               1796566550.1466277, 3, None]
    texts = [*HOSTILE, None, HUGE]
    rows = [(n, doubles[n % len(doubles)], text) for n, text in enumerate(texts * 3)]
    conn = psycopg2.connect(postgres_schema_url)
    try:
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE copied (n INTEGER, x DOUBLE PRECISION, t TEXT)")
        cursor.execute("CREATE TABLE inserted (n INTEGER, x DOUBLE PRECISION, t TEXT)")
        assert pgcopy.copy_rows(cursor, "copied", ("n", "x", "t"), rows)
        execute_values(cursor, "INSERT INTO inserted (n, x, t) VALUES %s", rows)
        cursor.execute("SELECT n, x::text, t FROM copied ORDER BY n")  # the server's own digits for doubles
        copied = cursor.fetchall()
        cursor.execute("SELECT n, x::text, t FROM inserted ORDER BY n")
        inserted = cursor.fetchall()
        cursor.execute("SELECT x FROM copied ORDER BY n")
        doubles_back = [r[0] for r in cursor.fetchall()]
        assert copied == inserted and [(n, t) for n, _x, t in copied] == [(n, t) for n, _x, t in rows]
        for back, (_n, x, _t) in zip(doubles_back, rows, strict=True):
            assert (back is None) if x is None else (math.isnan(back) if math.isnan(x) else back == x)
        assert pgcopy.copy_rows(cursor, "copied", ("n", "x", "t"), [(-1, -0.0, "")] * pgcopy.COPY_MIN_ROWS)
        cursor.execute("SELECT DISTINCT x, t FROM copied WHERE n = -1")
        ((zero, empty),) = cursor.fetchall()
        assert math.copysign(1, zero) == -1 and empty == ""
    finally:
        conn.close()


def test_a_batch_meeting_rows_another_writer_stored_falls_back_to_on_conflict(postgres_schema_url: str,
                                                                            copies: list) -> None:
    examples = [Example(task="qa", inputs={"question": f"q{n}"}, outputs={"answer": "a"}) for n in range(200)]
    with tk.open(postgres_schema_url) as other:  # the concurrent writer, before this batch's COPY
        other.store.insert_examples([Example(task="qa", inputs={"question": f"q{n}"}, outputs={"answer": "a"})
                                     for n in (5, 150)], Event(kind="added"))
    copies.clear()
    with tk.open(postgres_schema_url) as kit:
        result = kit.store.insert_examples(examples, Event(kind="added", reason="batch"))
        assert copies[0] == ("examples", False)  # COPY met the unique index and was undone
        assert result.duplicates == (examples[5].id, examples[150].id)
        assert result.inserted == tuple(ex.id for n, ex in enumerate(examples) if n not in (5, 150))
        assert kit.count(task="qa") == 200
        (event,) = [e for e in kit.events() if e.reason == "batch"]  # the transaction went on after the undo
        assert tuple(event.example_ids) == result.inserted


def test_a_stored_id_is_still_an_integrity_error(postgres_schema_url: str) -> None:
    import psycopg2

    examples = [Example(task="qa", inputs={"question": f"q{n}"}, outputs={"answer": "a"}) for n in range(100)]
    with tk.open(postgres_schema_url) as kit:
        kit.store.insert_examples(examples[:1], Event(kind="added"))
        again = Example(task="qa", inputs={"question": "different"}, outputs={"answer": "a"}, id=examples[0].id)
        with pytest.raises(psycopg2.IntegrityError):
            kit.store.insert_examples([again, *examples[1:]], Event(kind="added"))
        assert kit.count() == 1


def test_nul_text_copy_cannot_carry_keeps_the_insert_error(postgres_schema_url: str, copies: list) -> None:
    examples = [Example(task="qa", inputs={"question": f"q{n}"}, outputs={"answer": "a"}) for n in range(100)]
    with tk.open(postgres_schema_url) as kit:
        with pytest.raises(StoreError, match="NUL"):
            kit.store.insert_examples(examples, Event(kind="added", reason="bad\x00reason"))
        assert kit.count() == 0
        assert ("examples", True) in copies  # the examples went by COPY, then the event failed: all rolled back
    assert pgcopy.csv_bytes([("a\x00b",)]) is None and pgcopy.csv_bytes([("\ud800",)]) is None
    assert pgcopy.csv_bytes([(True,)]) is None and pgcopy.csv_bytes([(b"bytes",)]) is None
    assert pgcopy.csv_bytes([("", None, 1, 0.5)]) == b'"",,1,0.5\n'


def test_a_connection_dropped_mid_import_keeps_the_committed_batches(postgres_schema_url: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg2

    source = tmp_path / "records.jsonl"
    source.write_text("".join(json.dumps({"question": f"question {n}", "answer": str(n)}) + "\n"
                              for n in range(500)), encoding="utf-8")
    (tmp_path / "trainkit.toml").write_text('[tasks.qa]\nsignature = "question -> answer"\n[intake]\n'
                                            "batch_size = 100\n", encoding="utf-8")
    name = f"tk_copy_drop_{uuid.uuid4().hex[:8]}"  # only this test's connections are dropped
    url = f"{postgres_schema_url}&application_name={name}"
    admin = psycopg2.connect(postgres_schema_url)
    admin.autocommit = True
    real = pgcopy.copy_new_rows
    calls = []

    def dropping(cursor: Any, table: str, *args: Any) -> bool:
        if table != "examples":  # neardup's signatures (example_data) go by COPY too
            return real(cursor, table, *args)
        calls.append(1)
        if len(calls) == 3:  # the third batch: the server goes away before its COPY
            admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE application_name = %s", (name,))
        return real(cursor, table, *args)

    tk.open(url).close()
    monkeypatch.setattr(pgcopy, "copy_new_rows", dropping)
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", url, "import", str(source), "--task", "qa", "-q"])
    assert result.exit_code != 0 and "lost the connection" in result.output, result.output
    with tk.open(postgres_schema_url) as kit:
        assert kit.count(task="qa") == 200  # the two batches committed before the drop
        assert sum(len(e.example_ids) for e in kit.events() if e.kind == "added") == 200
    monkeypatch.setattr(pgcopy, "copy_new_rows", real)
    result = runner.invoke(cli, ["--db", url, "import", str(source), "--task", "qa", "-q"])
    assert result.exit_code == 0, result.output
    with tk.open(postgres_schema_url) as kit:
        assert kit.count(task="qa") == 500  # the re-run stored the rest; the committed ones were found again
    admin.close()


def test_a_connection_ended_mid_copy_leaves_no_driver_fragments_on_stderr(postgres_schema_url: str,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture) -> None:
    """The server ending the connection while COPY data is being sent: psycopg2 printed fragments of its own
    error handling (`psycopg2.errors.AdminShutdown: ...`, `SystemError: <function decode ...>`) before the store's
    one-line error (a stranger's finding); they go to the debug log now, and the error is still raised."""
    import io
    import time
    from types import SimpleNamespace

    import psycopg2

    connection, admin = psycopg2.connect(postgres_schema_url), psycopg2.connect(postgres_schema_url)
    admin.autocommit = True
    cursor = connection.cursor()
    cursor.execute("CREATE TEMP TABLE copied (a text)")
    backend = connection.get_backend_pid()

    class EndingMidway(io.BytesIO):
        reads = 0

        def read(self, size: int | None = -1) -> bytes:
            EndingMidway.reads += 1
            if EndingMidway.reads == 2:  # the first chunk is sent: the server goes away
                admin.cursor().execute("SELECT pg_terminate_backend(%s)", (backend,))
                time.sleep(0.2)
            return super().read(size)

    monkeypatch.setattr(pgcopy, "io", SimpleNamespace(BytesIO=EndingMidway, StringIO=io.StringIO))
    rows = [(f"row {n} " + "x" * 200,) for n in range(20_000)]  # ~4 MiB: several reads of READ_SIZE
    with pytest.raises(Exception):  # noqa: B017 - psycopg2 raises what it raises; the store words it
        pgcopy.copy_rows(cursor, "copied", ["a"], rows)
    assert EndingMidway.reads >= 2
    printed = capsys.readouterr()
    assert "AdminShutdown" not in printed.err and "SystemError" not in printed.err, printed.err
    connection.close()
    admin.close()


def test_what_is_written_to_stderr_during_a_copy_is_kept_unless_it_is_the_drivers_failure(
        capsys: pytest.CaptureFixture) -> None:
    import sys

    with pgcopy._driver_output_held():
        sys.stderr.write("another thread's line\n")
    with pytest.raises(RuntimeError), pgcopy._driver_output_held():
        sys.stderr.write("a user's line\n")
        raise RuntimeError("not the driver")
    with pytest.raises(RuntimeError), pgcopy._driver_output_held():
        sys.stderr.write("psycopg2.errors.AdminShutdown: terminating connection\n")
        raise RuntimeError("the driver")
    assert capsys.readouterr().err == "another thread's line\na user's line\n"
