"""The store's bulk insert path on both backends: the dedup probe finds every stored hash of a batch however
large, and on PostgreSQL a large first import refreshes the planner's statistics (ANALYZE) as it grows."""

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
