"""The store's bulk insert path on both backends: the dedup probe finds every stored hash of a batch however
large, on PostgreSQL a large first import refreshes the planner's statistics (ANALYZE) as it grows, and
example_data read by ids is probed by primary key whatever the statistics."""

from __future__ import annotations

import dspy_trainkit_sqlstore.backend as backend

import dspy_trainkit as tk
from dspy_trainkit.models import Event, Example


def _examples(n: int, start: int = 0) -> list[Example]:
    return [Example(task="qa", inputs={"q": f"question {i}"}, outputs={"a": str(i)}) for i in range(start, start + n)]


def test_existing_hashes_finds_every_stored_hash_of_a_large_batch(store_url):
    with tk.open(store_url) as kit:
        stored = _examples(6000)
        kit.store.insert_examples(stored, Event(kind="added"))
        fresh = _examples(100, start=6000)
        asked = [ex.content_hash for ex in stored[::2]] + [ex.content_hash for ex in fresh]
        assert kit.store.existing_hashes("qa", asked) == {ex.content_hash for ex in stored[::2]}
        assert kit.store.existing_hashes("other", asked) == set()


def test_postgres_analyzes_examples_as_a_first_import_grows(postgres_schema_url, monkeypatch):
    monkeypatch.setattr(backend, "ANALYZE_MIN_ROWS", 300)
    analyzes = []
    real = backend.PeeweeStore._analyze_if_grown

    def counting(self, added):
        before = self._analyzed_rows
        real(self, added)
        if self._grown == 0:
            analyzes.append((before, self._analyzed_rows))

    monkeypatch.setattr(backend.PeeweeStore, "_analyze_if_grown", counting)
    with tk.open(postgres_schema_url) as kit:
        def planner_rows() -> float:  # pg_class.reltuples: -1 until the table is first analyzed (PostgreSQL 14+)
            return float(kit.store.db.execute_sql(
                "SELECT reltuples FROM pg_class WHERE oid = 'examples'::regclass").fetchone()[0])

        records = [{"task": "qa", "inputs": {"q": f"question {i}"}, "outputs": {"a": f"answer {i}."}}
                   for i in range(1400)]
        kit.add_many(records[:200])
        assert planner_rows() <= 0 and analyzes == []  # below the minimum: no ANALYZE
        kit.add_many(records[200:])
        assert planner_rows() >= 300  # the planner now knows the table is not empty
        assert 1 <= len(analyzes) <= 3  # doubling: a few ANALYZEs, not one per batch
        analyzed = {row[0] for row in kit.store.db.execute_sql(
            "SELECT attname FROM pg_stats WHERE tablename = 'examples' AND schemaname = current_schema()")}
        assert {"task", "content_hash", "status", "id"} <= analyzed  # what the dedup probe and reads filter on


def test_postgres_reads_example_data_by_ids_with_index_probes_whatever_the_statistics(postgres_schema_url):
    """neardup asks for the rows of a few hundred candidate ids per batch: the plan must probe example_data by
    its primary key, not hash every row of the kind for each query (what PostgreSQL chose for a table never
    analyzed, or with one kind filling it), which made an import quadratic."""
    with tk.open(postgres_schema_url) as kit:
        store = kit.store
        examples = _examples(4000)
        store.insert_examples(examples, Event(kind="added"))
        store.save_example_data("k", [(ex.id, ex.content_hash, b"x" * 200) for ex in examples])
        store.save_example_data("k", [(examples[0].id, "stale", b"old")])  # made from other content: None
        streamed = []
        real_stream, real_execute = store._stream, store.db.execute_sql

        def recording(real):
            def run(sql, params=None):
                if sql.startswith("SELECT") and "example_data" in sql:
                    streamed.append((sql, params))
                return real(sql, params)
            return run

        store._stream, store.db.execute_sql = recording(real_stream), recording(real_execute)
        wanted = examples[::8]
        got = dict(store.iter_example_data("k", tk.ExampleQuery(ids=tuple(ex.id for ex in wanted))))
        assert got == {ex.id: (None if ex is examples[0] else b"x" * 200) for ex in wanted}
        for analyzed in (False, True):
            if analyzed:
                real_execute("ANALYZE example_data")
            plan = "\n".join(row[0] for row in real_execute(f"EXPLAIN {streamed[-1][0]}",
                                                                    streamed[-1][1]).fetchall())
            assert "example_data_pkey" in plan and "Seq Scan on example_data" not in plan, plan
            assert "Hash" not in plan and "Bitmap Heap Scan on example_data" not in plan, plan
