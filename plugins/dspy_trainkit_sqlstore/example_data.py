"""The `example_data` table and the derived-data half of `PeeweeStore` (a mixin): data plugins derive from an
example's content, keyed by (kind, example id) and remembering the content hash it was made from (see
`dspy_trainkit.store.example_data`). The neardup plugin keeps its MinHash signatures here.

Loading joins the examples of a query with their rows of one kind (a LEFT JOIN on id and content hash), so one
streamed query says both what is saved and what is missing or stale; on PostgreSQL a query by ids probes the
rows one primary-key lookup per example (a correlated subquery) instead, so its plan never depends on statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import peewee as pw

from dspy_trainkit.pluginkit import ExampleQuery

from . import pgcopy, schema

#: Rows per statement. On PostgreSQL they go by COPY (the data as bytea hex text, `\\x...`, which COPY's CSV
#: reads as it is) when none of them is stored yet, the usual case (an example just stored), in a transaction
#: whose commit does not wait for the WAL flush: ~20 us a row against ~35 through `execute_values`' upsert
#: (500-row saves into a 100k store, loaded machine). Rows already there (an edited example, a second process)
#: undo the COPY and take the upsert.
CHUNK = 500
DATA_COLUMNS = ("kind", "example_id", "content_hash", "data")
#: A query by at most this many ids is read in one fetch (neardup asks for 500 at a time).
PAGE_SIZE = 1000


def define_data_models(database: pw.Database) -> SimpleNamespace:
    """The `example_data` table."""

    class DataRow(schema.TableModel):
        kind = pw.CharField(max_length=64)
        example_id = pw.CharField(max_length=32)
        content_hash = pw.CharField(max_length=64)
        data = pw.BlobField()

        class Meta:
            table_name = "example_data"
            primary_key = pw.CompositeKey("kind", "example_id")

    return schema.bound(database, Data=DataRow)


def create_tables(models: SimpleNamespace) -> None:
    """Migration 0009_neardup_example_data."""
    define_data_models(models.Example._meta.database).Data.create_table(safe=True)


class ExampleDataStoreMixin:
    """Derived-data methods of the Store interface for peewee stores; PeeweeStore inherits them."""

    db: pw.Database
    models: SimpleNamespace
    is_sqlite: bool
    keeps_example_data = True

    @property
    def _data(self) -> SimpleNamespace:
        models = getattr(self, "_data_models", None)
        if models is None:
            models = self._data_models = define_data_models(self.db)
        return models

    def save_example_data(self, kind: str, rows: Sequence[tuple[str, str, bytes]]) -> None:
        upsert = (" ON CONFLICT (kind, example_id) DO UPDATE SET content_hash = excluded.content_hash, "
                  "data = excluded.data")
        alone = not self.is_sqlite and self.db.transaction_depth() == 0
        with self._transaction():  # type: ignore[attr-defined]
            cursor = self.db.cursor()
            if alone:  # derived data, recomputed when lost: its commit need not wait for the WAL flush
                cursor.execute("SET LOCAL synchronous_commit = off")
            for start in range(0, len(rows), CHUNK):
                part = [(kind, example_id, content_hash, data)
                        for example_id, content_hash, data in rows[start:start + CHUNK]]
                if self.is_sqlite:
                    cursor.executemany("INSERT INTO example_data (kind, example_id, content_hash, data) "
                                       f"VALUES (?, ?, ?, ?){upsert}", part)
                elif not pgcopy.copy_new_rows(cursor, "example_data", DATA_COLUMNS,
                                              [(*row[:3], "\\x" + row[3].hex()) for row in part]):
                    from psycopg2 import Binary
                    from psycopg2.extras import execute_values

                    execute_values(cursor, "INSERT INTO example_data (kind, example_id, content_hash, data) "
                                   f"VALUES %s{upsert}", [(*row[:3], Binary(row[3])) for row in part],
                                   page_size=len(part))

    def iter_example_data(self, kind: str, query: ExampleQuery) -> Iterator[tuple[str, bytes | None]]:
        e, d = self.models.Example, self._data.Data
        current = (d.kind == kind) & (d.example_id == e.id) & (d.content_hash == e.content_hash)
        if query.ids is not None and not self.is_sqlite:
            # a few ids (neardup's candidates, once per batch): one primary-key probe per example, whatever
            # the statistics say. As a join, PostgreSQL hashed every row of the kind for each query (its
            # estimates of a table never analyzed, or of one kind filling it): 40 ms a query at 30k rows,
            # growing with the store, 80% of a 30k import's time
            probe = d.select(d.data).where(current)
            selected = e.select(e.id, probe)
        else:  # a whole task: one join (a hash join on PostgreSQL), not a probe per example
            selected = e.select(e.id, d.data).join(d, pw.JOIN.LEFT_OUTER, on=current)
        sql, params = self._where(selected, query).sql()  # type: ignore[attr-defined]
        if query.ids is not None and len(query.ids) <= PAGE_SIZE and not self.is_sqlite:
            # at most one row per id: one round trip, not the six of a server-side cursor (BEGIN, DECLARE,
            # FETCH until empty, CLOSE, COMMIT)
            rows: Iterable[tuple[Any, ...]] = self.db.execute_sql(sql, params).fetchall()
        else:
            rows = self._stream(sql, params)  # type: ignore[attr-defined]
        for example_id, data in rows:
            yield example_id, (data if data is None or isinstance(data, bytes) else bytes(data))

    def drop_example_data(self, prefix: str, *, keep_prefix: str | None = None) -> int:
        d = self._data.Data
        condition: Any = d.kind.startswith(prefix)
        if keep_prefix is not None:
            condition &= ~d.kind.startswith(keep_prefix)
        with self._transaction():  # type: ignore[attr-defined]
            return int(d.delete().where(condition).execute())
