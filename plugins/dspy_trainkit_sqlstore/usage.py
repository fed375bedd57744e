"""When each example was last used: the narrow `last_used` table (migration 0010_last_used) and marking use.

Why a table of its own: a trainset marks every example it returns as used. Writing `examples.last_used_at`
rewrote every page of the examples table that held one (a million-example trainset rewrote nearly the whole
table, through the WAL and back), about half the time of building the trainset. A row `(example_id, used_at)`
of `last_used` is ~45 bytes; on PostgreSQL the ids of a mark are written in sorted order, so concurrent
trainsets lock rows in the same order.

Readers see the same `last_used_at` as before: every read of that field is the later of `last_used.used_at`
and `examples.last_used_at` (`last_used_at`). The column still holds what was written before the
migration, by a restore (`load_examples`) or by an edit (`update_examples`, which also sets the table's row when
there is one, so an edit stores the Example's value as it did). Marks made since the migration are in the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import peewee as pw

TABLE = "last_used"
#: Ids marked per statement (one JSON array on SQLite, one array parameter on PostgreSQL).
MARK_PAGE = 10_000


def create_table(models: Any) -> None:
    """Migration 0010_last_used. Nothing is copied: values marked before stay in `examples.last_used_at`, which
    reads fall back to."""
    database = models.Example._meta.database
    tail = " WITHOUT ROWID" if isinstance(database, pw.SqliteDatabase) else ""
    database.execute_sql(f"CREATE TABLE IF NOT EXISTS {TABLE} (example_id VARCHAR(32) NOT NULL PRIMARY KEY, "
                         f"used_at DOUBLE PRECISION NOT NULL){tail}")


def last_used_at(model: Any, table: bool = True) -> Any:
    """The `last_used_at` of the examples row being read, as an SQL expression in place of the column: the later
    of the table's row and the column (an older trainkit still marking a migrated store writes the column, and its
    marks are the newer ones then; an edit sets both). With `table` False (a store opened without migrating, whose
    migration 0010 is pending: read-only, or `migrate=False`) the column, which holds every mark then."""
    if not table:
        return model.last_used_at
    if isinstance(model._meta.database, pw.SqliteDatabase):  # max() of SQLite is NULL when an argument is
        later = pw.NodeList((pw.SQL("MAX(used_at, COALESCE("), model.last_used_at, pw.SQL(", used_at))")), glue="")
    else:  # GREATEST skips NULLs
        later = pw.NodeList((pw.SQL("GREATEST(used_at, "), model.last_used_at, pw.SQL(")")), glue="")
    return pw.NodeList((pw.SQL("COALESCE((SELECT "), later, pw.SQL(f" FROM {TABLE} WHERE example_id = "), model.id,
                        pw.SQL("), "), model.last_used_at, pw.SQL(")")), glue="")


def columns(model: Any, names: Sequence[str], table: bool = True) -> list[Any]:
    """The select list for these example columns, `last_used_at` read as `last_used_at(model, table)`."""
    return [last_used_at(model, table) if name == "last_used_at" else getattr(model, name) for name in names]


def mark(database: pw.Database, example_ids: Sequence[str], when: float) -> None:
    """Set the last use of these examples to `when`, inside the caller's transaction. On SQLite the ids go as one
    JSON array per statement (`json_each`): no Python tuple and no parameter binding per id. Ids are not checked
    against `examples` (a probe per id): an id no example has gets a row nobody reads (examples are never
    deleted, and ids are never reused)."""
    sqlite = isinstance(database, pw.SqliteDatabase)
    if not sqlite:  # rows locked in one order by every writer: two trainsets over the same examples cannot deadlock
        example_ids = sorted(set(example_ids))
    cursor = database.cursor()
    for start in range(0, len(example_ids), MARK_PAGE):
        page = list(example_ids[start:start + MARK_PAGE])
        if sqlite:
            cursor.execute(f"INSERT INTO {TABLE} (example_id, used_at) SELECT value, ? FROM json_each(?) WHERE true "
                           "ON CONFLICT (example_id) DO UPDATE SET used_at = excluded.used_at",
                           (when, orjson.dumps(page).decode()))
        else:
            cursor.execute(f"INSERT INTO {TABLE} (example_id, used_at) SELECT id, %s FROM unnest(%s::text[]) "
                           "WITH ORDINALITY AS ids(id, n) ORDER BY n "
                           "ON CONFLICT (example_id) DO UPDATE SET used_at = EXCLUDED.used_at", (when, page))


def follow_edits(database: pw.Database, rows: Sequence[tuple[str, float | None]]) -> None:
    """`(example id, last_used_at)` of edited examples, inside the caller's transaction: where the table has a
    row for one, it takes the edit's value as the column does (a None removes the row, so the column's None
    shows)."""
    param = database.param
    updates = [(when, example_id) for example_id, when in rows if when is not None]
    deletes = [(example_id,) for example_id, when in rows if when is None]
    for sql, params in ((f"UPDATE {TABLE} SET used_at = {param} WHERE example_id = {param}", updates),
                        (f"DELETE FROM {TABLE} WHERE example_id = {param}", deletes)):
        if not params:
            continue
        cursor = database.cursor()
        if isinstance(database, pw.SqliteDatabase):
            cursor.executemany(sql, params)
        else:
            from psycopg2.extras import execute_batch

            execute_batch(cursor, sql, params, page_size=500)
