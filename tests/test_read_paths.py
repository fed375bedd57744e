"""Read paths over large stores: stats in one grouped pass, column-limited reads for exports and trainsets,
the event-to-example link table (migration 0007_read_paths) and `log --id` through it, on both backends."""

from __future__ import annotations

import json

import orjson
import pytest
from click.testing import CliRunner
from dspy_trainkit_sqlstore import schema
from dspy_trainkit_sqlstore.backend import example_row
from helpers import store_after_migrations

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.store import GROUP_COLUMNS, ExampleQuery

BEFORE_LINKS = [name for name, _ in schema.MIGRATIONS].index("0007_read_paths")


def _examples() -> list[tk.Example]:
    made = []
    for n in range(12):
        made.append(tk.Example(task="qa" if n % 3 else "math", inputs={"question": f"q{n}?"},
                               outputs={"answer": f"a{n}"}, domain=None if n % 4 == 0 else f"d{n % 2}",
                               topic=f"t{n % 3}", difficulty=None if n % 5 == 0 else "easy",
                               source="synthetic" if n % 2 else "imported",
                               status="accepted" if n % 3 != 1 else "candidate",
                               scores={"coherence": 0.5}, quality=0.5, metadata={"n": n}))
    return made


def _load(kit: tk.Kit) -> list[tk.Example]:
    examples = _examples()
    kit.store.load_examples(examples)
    return examples


def test_stats_in_one_pass_match_the_per_column_counts(kit):
    _load(kit)
    for filters in ({}, {"task": "qa"}, {"status": "candidate"}, {"source": "synthetic"}):
        query = ExampleQuery(**filters)
        stats = kit.stats(**filters)
        assert stats["total"] == kit.store.count(query)
        for column in GROUP_COLUMNS:
            expected = {k[0] if k[0] is not None else "(none)": n for k, n in kit.store.group_counts([column], query)}
            assert stats[f"by_{column}"] == expected
        cells = {(c["domain"], c["topic"], c["difficulty"]): c["count"] for c in stats["by_cell"]}
        assert cells == {tuple(k): n for k, n in kit.store.group_counts(["domain", "topic", "difficulty"], query)}
        from dspy_trainkit.generation.mixing import synthetic_share

        assert stats["synthetic_share"] == synthetic_share(kit, query)


def test_column_reads_hold_only_what_was_asked(kit):
    stored = {ex.id: ex for ex in _load(kit)}
    query = ExampleQuery(task="qa", status="accepted")
    partial = list(kit.store.iter_example_columns(query, ("task", "inputs", "outputs")))
    full = list(kit.store.iter_examples(query))
    assert [ex.id for ex in partial] == [ex.id for ex in full] == sorted(ex.id for ex in full)
    for ex in partial:
        assert (ex.inputs, ex.outputs) == (stored[ex.id].inputs, stored[ex.id].outputs)
        assert ex.scores == {} and ex.metadata == {} and ex.domain is None  # not read
    assert all(ex.scores == {"coherence": 0.5} and ex.metadata for ex in full)
    assert [ex.content_hash for ex in full] == [stored[ex.id].content_hash for ex in full]
    with pytest.raises(tk.StoreError, match="cannot read example column"):
        list(kit.store.iter_example_columns(query, ("inputs", "nonsense")))


def test_streamed_and_paged_reads_agree(kit):
    _load(kit)
    served = ExampleQuery(task="qa", status="accepted")  # the (task, status, id) index gives the order
    sql, params = kit.store._select(served, [kit.store.models.Example.id]).sql()
    assert kit.store._order_served(sql, params)
    by_quality = ExampleQuery(order="-quality")  # sorted: read by id pages instead
    sql, params = kit.store._select(by_quality, [kit.store.models.Example.id]).sql()
    assert not kit.store._order_served(sql, params)
    assert [ex.id for ex in kit.store.iter_examples(by_quality)] == list(kit.store.iter_ids(by_quality))
    descending = [ex.id for ex in kit.store.iter_examples(ExampleQuery(task="qa", order="-created"))]
    assert descending == sorted(descending, reverse=True) and len(descending) == 8


def test_events_link_their_examples_in_order(kit):
    a = kit.add(task="qa", inputs={"question": "one?"}, outputs={"answer": "1"})
    b = kit.add(task="qa", inputs={"question": "two?"}, outputs={"answer": "2"})
    kit.trainset("qa", status=None, signature="question -> answer")
    used = [e for e in kit.events() if e.kind == "used"]
    assert len(used) == 1 and used[0].example_ids == (a.id, b.id)
    assert [e.kind for e in kit.events(example_id=b.id)] == [e.kind for e in kit.events()
                                                              if b.id in e.example_ids]
    assert any(e.kind == "used" for e in kit.events(example_id=a.id))
    counted = list(kit.store.iter_event_counts(example_id=a.id))  # what `trainkit log` prints: counts, not ids
    assert [(e.id, n) for e, n in counted] == [(e.id, len(e.example_ids)) for e in kit.events(example_id=a.id)]
    assert [n for _, n in kit.store.iter_event_counts()] == [len(e.example_ids) for e in kit.events()]
    database = kit.store.db
    assert database.execute_sql("SELECT COUNT(*) FROM events WHERE example_ids != '[]'").fetchone()[0] == 0
    links = database.execute_sql("SELECT COUNT(*) FROM event_examples WHERE example_id = "
                                 f"{database.param}", [a.id]).fetchone()[0]
    assert links == len([e for e in kit.events() if a.id in e.example_ids])


def _old_store(url: str) -> list[tuple[str, list[str]]]:
    """A store as trainkit left it before the link table: events hold their ids as JSON."""
    examples = _examples()
    events = [(f"{n:032x}", [ex.id for ex in examples[n:n + 5]]) for n in range(0, 12, 4)]

    def fill(database) -> None:
        schema.insert_rows(database, "examples", schema.EXAMPLE_COLUMNS, [example_row(ex) for ex in examples])
        schema.insert_rows(database, "events", schema.EVENT_COLUMNS,
                           [(event_id, n, "added", "api", "", orjson.dumps(ids).decode(), "{}")
                            for n, (event_id, ids) in enumerate(events)])

    store_after_migrations(url, BEFORE_LINKS, fill)
    return events


def test_migration_moves_event_ids_into_the_link_table(store_url):
    events = _old_store(store_url)
    with tk.open(store_url) as kit:
        assert "0007_read_paths" in kit.store.applied_migrations()
        assert [(e.id, list(e.example_ids)) for e in kit.events()] == events
        shared = events[0][1][4]  # in the first two events
        assert [e.id for e in kit.events(example_id=shared)] == [events[0][0], events[1][0]]
        indexes = _index_names(kit.store)
        assert {"examples_task_status_id", "examples_task_status_labels_source", "event_examples_example_id"} \
            <= indexes
        assert "examples_task_status_domain_topic_difficulty" not in indexes
    result = CliRunner().invoke(cli, ["--db", store_url, "log", "--id", shared, "--json"])
    assert result.exit_code == 0, result.output
    assert [e["id"] for e in json.loads(result.stdout)] == [events[0][0], events[1][0]]


def test_events_written_before_the_links_are_still_read(kit):
    """A row holding its ids in JSON (written by an older trainkit after the migration ran) reads as before."""
    ids = ["a" * 32, "b" * 32]
    schema.insert_rows(kit.store.db, "events", schema.EVENT_COLUMNS,
                       [("f" * 32, 1.0, "added", "api", "", orjson.dumps(ids).decode(), "{}")])
    assert [e.example_ids for e in kit.events()] == [tuple(ids)]
    assert [n for _, n in kit.store.iter_event_counts()] == [2]


def _index_names(store) -> set[str]:
    if store.is_sqlite:
        rows = store.db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    else:
        rows = store.db.execute_sql("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()").fetchall()
    return {r[0] for r in rows}


def test_log_id_reads_the_link_index(tmp_path):
    """`log --id` asks the link table's example_id index, not a scan of every event."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with tk.open(url) as kit:
        kit.add(task="qa", inputs={"question": "one?"}, outputs={"answer": "1"})
        plan = kit.store.db.execute_sql("EXPLAIN QUERY PLAN SELECT event_id FROM event_examples "
                                        "WHERE example_id = ?", ["x"]).fetchall()
    assert any("event_examples_example_id" in str(row[-1]) for row in plan)


def test_a_large_event_links_every_id_in_order_across_pages(kit):
    from dspy_trainkit_sqlstore.events import LINK_PAGE

    from dspy_trainkit.models import Event

    ids = [f"{n:032x}" for n in range(2 * LINK_PAGE + 7)]  # three pages of links, the last one short
    kit.store.append_event(Event(kind="used", example_ids=ids, actor="test", reason="", details={}))
    (event,) = [e for e in kit.events() if e.kind == "used"]
    assert event.example_ids == tuple(ids)
    assert [e.id for e in kit.events(example_id=ids[LINK_PAGE])] == [event.id]
    assert [n for e, n in kit.store.iter_event_counts() if e.id == event.id] == [len(ids)]


def test_dspy_examples_made_directly_equal_the_public_way():
    pytest.importorskip("dspy")
    from dspy_trainkit_dspy import dspy_builder, to_dspy

    build = dspy_builder()
    assert build.__name__ == "direct"  # this DSPy's Example is the one the direct path was checked against
    for inputs, outputs in (({"question": "q", "context": ["a", "b"]}, {"answer": "x"}),
                            ({"base": "b", "question": "q"}, {"answer": "x"}),  # DSPy reads `base` itself
                            ({"question": "q"}, {})):
        stored = tk.Example(task="qa", inputs=inputs, outputs=outputs)
        made, public = build(inputs, outputs), to_dspy(stored)
        assert type(made) is type(public) and list(vars(made)) == list(vars(public))
        assert vars(made) == vars(public)
        assert made.inputs().toDict() == public.inputs().toDict()
        assert made.labels().toDict() == public.labels().toDict()


def test_trainset_leaves_callers_lists_and_the_garbage_collector_as_they_were(kit):
    import gc

    pytest.importorskip("dspy")
    a = kit.add(task="qa", inputs={"question": "one?"}, outputs={"answer": "1"}, status="accepted")
    examples = [a]
    converted = kit.convert(examples, "dspy", signature="question -> answer")  # kit.convert copies the list
    assert examples == [a] and converted.items[0].question == "one?"
    assert gc.isenabled()
    assert [ex.question for ex in kit.trainset("qa", status=None, signature="question -> answer")] == ["one?"]
    assert gc.isenabled()
    gc.disable()
    try:
        kit.trainset("qa", status=None, signature="question -> answer")
        assert not gc.isenabled()  # a caller that switched it off keeps it off
    finally:
        gc.enable()


def test_sqlite_readers_keep_the_small_page_cache_and_writers_get_the_big_one(tmp_path):
    from dspy_trainkit_sqlstore.database import WRITER_CACHE_KIB

    url = f"sqlite:///{tmp_path / 'store.db'}"
    with tk.open(url) as kit:
        kit.add(task="qa", inputs={"question": "one?"}, outputs={"answer": "1"})
    with tk.open(url, create=False) as kit:
        cache = kit.store.db.execute_sql("PRAGMA cache_size")
        assert cache.fetchone()[0] != -WRITER_CACHE_KIB
        kit.stats()
        assert kit.store.db.execute_sql("PRAGMA cache_size").fetchone()[0] != -WRITER_CACHE_KIB
        kit.add(task="qa", inputs={"question": "two?"}, outputs={"answer": "2"})
        assert kit.store.db.execute_sql("PRAGMA cache_size").fetchone()[0] == -WRITER_CACHE_KIB


def test_a_convert_wrapper_still_sees_every_example_after_a_trainset(tmp_path):
    pytest.importorskip("dspy")

    class Wrapper:
        seen: list[object] = []

        @tk.hookimpl(wrapper=True)
        def convert(self, examples, target, context, options):
            result = yield
            Wrapper.seen = list(examples)  # after the dspy plugin converted them
            return result

    with tk.open(f"sqlite:///{tmp_path / 'store.db'}", plugins=[("wrapper", Wrapper())]) as kit:
        a = kit.add(task="qa", inputs={"question": "one?"}, outputs={"answer": "1"})
        assert [ex.question for ex in kit.trainset("qa", status=None, signature="question -> answer")] == ["one?"]
    assert [ex.id for ex in Wrapper.seen] == [a.id]
