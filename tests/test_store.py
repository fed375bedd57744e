"""The store through the public API, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import gc

import attrs
import pytest
from dspy_trainkit_sqlstore.schema import MIGRATIONS
from helpers import qa

import dspy_trainkit as tk
from dspy_trainkit import Event, Example, ExampleQuery, NotFoundError, StoreError


def test_migrations_are_recorded_and_reopening_applies_nothing(store_url):
    with tk.open(store_url) as kit:
        assert kit.store.applied_migrations() == [name for name, _ in MIGRATIONS]
        kit.add(qa("kept?"))
    with tk.open(store_url) as kit:
        assert kit.store.applied_migrations() == [name for name, _ in MIGRATIONS]
        assert kit.count() == 1


def test_insert_skips_stored_content_and_records_event_atomically(kit):
    a = Example(task="qa", inputs={"question": "a"}, outputs={"answer": "1"})
    b = Example(task="qa", inputs={"question": "b"}, outputs={"answer": "2"})
    first = kit.store.insert_examples([a, b], Event(kind="added", actor="test"))
    assert set(first.inserted) == {a.id, b.id} and first.duplicates == ()
    same_a = Example(task="qa", inputs={"question": " a "}, outputs={"answer": "1"})
    c = Example(task="qa", inputs={"question": "c"}, outputs={"answer": "3"})
    second = kit.store.insert_examples([same_a, c], Event(kind="added", actor="test"))
    assert second.inserted == (c.id,) and second.duplicates == (same_a.id,)
    events = list(kit.events())
    assert [set(e.example_ids) for e in events] == [{a.id, b.id}, {c.id}]
    assert kit.store.existing_hashes("qa", [a.content_hash, "f" * 64]) == {a.content_hash}
    assert kit.store.existing_hashes("other", [a.content_hash]) == set()


def test_same_content_in_another_task_is_not_a_duplicate(kit):
    kit.add(qa("shared"))
    kit.add({**qa("shared"), "task": "qa2"})
    assert kit.count() == 2


def test_round_trip_keeps_every_field(kit):
    ex = Example(task="qa", inputs={"question": "ünïcode ✓", "n": 3}, outputs={"answer": ["a", {"b": None}]},
                 domain="math", topic="sets", difficulty="hard", source="imported",
                 provenance={"origin": "file.jsonl:3"}, metadata={"k": [1, 2]}, created_at=1000.5)
    kit.store.insert_examples([ex], Event(kind="added"))
    got = kit.get(ex.id)
    assert got == ex and got.content_hash == ex.content_hash


def test_filters_paging_order_and_prefix(kit):
    records = [qa(f"q{i}", domain="math" if i % 2 else "art", difficulty="easy" if i < 5 else "hard")
               for i in range(12)]
    report = kit.add_many(records)
    assert report.stored == 12
    assert kit.count(domain="math") == 6 and kit.count(domain="math", difficulty="hard") == 4
    ordered = [ex.inputs["question"] for ex in kit.examples()]
    assert ordered == [f"q{i}" for i in range(12)]
    assert [ex.inputs["question"] for ex in kit.examples(limit=3, offset=4)] == ["q4", "q5", "q6"]
    assert [ex.inputs["question"] for ex in kit.examples(order="-created", limit=2)] == ["q11", "q10"]
    assert len(list(kit.examples(ids=tuple(report.ids[:3])))) == 3
    first = report.ids[0]
    unique = next(n for n in range(4, 33) if sum(i.startswith(first[:n]) for i in report.ids) == 1)
    assert kit.get(first[:unique]).id == first
    with pytest.raises(NotFoundError, match="matches several"):
        kit.get(first[:4])
    last = report.ids[-1]
    assert kit.get(last[-8:]).id == last
    with pytest.raises(NotFoundError, match="no example"):
        kit.get("ffff0000")


def test_streaming_pages_past_the_page_size(kit, monkeypatch):
    from dspy_trainkit_sqlstore import backend

    monkeypatch.setattr(backend, "PAGE_SIZE", 7)
    kit.add_many(qa(f"q{i}") for i in range(30))
    assert [ex.inputs["question"] for ex in kit.examples()] == [f"q{i}" for i in range(30)]
    assert len(list(kit.examples(limit=16, offset=3))) == 16
    assert len(list(kit.examples(order="-quality"))) == 30


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_reader_closed_after_its_store_raises_nothing(tmp_path):
    """Ctrl-C during `trainkit list` closes the store first; the collector then closed the stopped reader, whose
    cursor went with the connection: "Exception ignored in: <generator object PeeweeStore._stream ...>
    sqlite3.ProgrammingError: Cannot operate on a closed database" (a stranger's finding)."""
    kit = tk.open(f"sqlite:///{tmp_path / 'reader.db'}")
    kit.add_many([qa(f"q{i}") for i in range(3)])
    reader = kit.examples()
    next(reader)
    kit.close()
    reader.close()  # its inner reader raised, printed as "Exception ignored"
    gc.collect()


def test_stats_groups(kit):
    kit.add_many([qa("a", domain="math", topic="sets"), qa("b", domain="math", topic="sets"),
                  qa("c", domain="art"), {**qa("d"), "outputs": {"answer": ""}}])
    stats = kit.stats()
    assert stats["total"] == 4
    assert stats["by_status"] == {"accepted": 3, "rejected": 1}
    assert stats["by_domain"] == {"(none)": 1, "art": 1, "math": 2} or stats["by_domain"] == {
        "art": 1, "math": 2, "(none)": 1}
    assert {"domain": "math", "topic": "sets", "difficulty": None, "count": 2} in stats["by_cell"]
    assert kit.stats(task="nothing")["total"] == 0


def test_group_by_unknown_column_is_refused(kit):
    with pytest.raises(StoreError, match="cannot group by"):
        kit.store.group_counts(["inputs"], ExampleQuery())


def test_events_filter_by_example_and_time(kit):
    one = kit.add(qa("one"))
    two = kit.add(qa("two"))
    assert [e.example_ids for e in kit.events(example_id=one.id)] == [(one.id,)]
    last = list(kit.events())[-1]
    assert [e.example_ids for e in kit.events(since=last.time)] == [(two.id,)]


def test_unknown_scheme_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="unknown scheme 'mongodb'.*sqlite://"):
        tk.open("mongodb://localhost/x")


def test_missing_sqlite_store_without_create(tmp_path):
    with pytest.raises(StoreError, match="no store at .*trainkit init"):
        tk.open(f"sqlite:///{tmp_path / 'none.db'}", create=False)
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(StoreError, match="does not exist"):
        tk.open(f"sqlite:///{tmp_path / 'no' / 'dir.db'}")


def test_unreachable_postgres_is_one_clear_error():
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL store postgresql://nobody:\\*\\*\\*@"
                                         "127.0.0.1:1/x.*server is running"):
        tk.open("postgresql://nobody:secret@127.0.0.1:1/x")


def test_loading_restored_rows_counts_new_ones_and_skips_stored_ids(kit):
    a, b, c = (Example(task="qa", inputs={"question": q}, outputs={"answer": q}) for q in "abc")
    assert kit.store.load_examples([a, b]) == 2
    assert kit.store.load_examples([b, c]) == 1  # b's id is stored: skipped, not counted
    assert kit.store.load_examples([]) == 0 and kit.count() == 3
    first = Event(kind="added", actor="old", reason="r", example_ids=(a.id, b.id), details={"n": [1, None]},
                  time=100.0)
    second = Event(kind="archived", actor="old", example_ids=(c.id,), time=200.0)
    kit.store.load_events([first])
    kit.store.load_events([attrs.evolve(first, reason="changed"), second])  # first's id is stored: kept as it was
    assert list(kit.events()) == [first, second]


def test_is_empty_sees_each_kind_of_record(kit):
    assert kit.store.is_empty()
    kit.add(qa("one"))
    assert not kit.store.is_empty()


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://nobody:secret@127.0.0.1:1/x", "postgresql://nobody:***@127.0.0.1:1/x"),
    ("postgresql://u:p@ss@host/db?options=-csearch_path%3Dteam", "postgresql://u:***@host/db?options=-csearch_path%3Dteam"),
    ("postgresql://host/db?user=u&Password=pw&sslmode=require", "postgresql://host/db?user=u&Password=***&sslmode=require"),
    ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
    ("sqlite:////abs/store.db", "sqlite:////abs/store.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
])
def test_redact_url_hides_only_the_password(url, shown):
    from dspy_trainkit.store import redact_url

    assert redact_url(url) == shown
