"""The store's tables as peewee models, and the named, recorded list of schema migrations.

Models are defined per database (`define_models`) instead of once globally, so that several stores can be
open in one process (tests, backup into another store) without rebinding shared classes.
A migration is a `(name, function)` pair; applied names are recorded in `trainkit_migrations`, and a store
opened by a newer trainkit applies the missing ones in order, each in its own transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from types import SimpleNamespace
from typing import Any

import peewee as pw

from . import pgcopy

EXAMPLE_COLUMNS = ("id", "task", "content_hash", "inputs", "outputs", "domain", "topic", "difficulty", "source",
                   "status", "scores", "quality", "findings", "provenance", "metadata", "created_at", "updated_at",
                   "last_used_at")
EVENT_COLUMNS = ("id", "time", "kind", "actor", "reason", "example_ids", "details")


class TableModel(pw.Model):
    """The parent of every trainkit table model: snake_case table names (peewee's current naming)."""

    class Meta:
        legacy_table_names = False


def bound(database: pw.Database, **models: type[pw.Model]) -> SimpleNamespace:
    """`models` bound to `database` (each store binds classes of its own), as a namespace by name."""
    for model in models.values():
        model.bind(database, bind_refs=False, bind_backrefs=False)
    return SimpleNamespace(**models)


def insert_rows(database: pw.Database, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                ignore_conflicts: bool = False, chunk: int = 500) -> int:
    """Bulk INSERT through the driver (sqlite3 `executemany`, psycopg2 `execute_values`; on PostgreSQL rows that
    may not conflict go by COPY, `pgcopy.copy_rows`), in chunks, inside the caller's transaction: peewee's
    `insert_many` builds SQL text and was measured ~2.5x slower. Returns
    how many rows were inserted (rows skipped by `ignore_conflicts` do not count)."""
    names = ", ".join(columns)
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    cursor = database.cursor()
    inserted = 0
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        if isinstance(database, pw.SqliteDatabase):
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}){tail}", part)
        elif not ignore_conflicts and pgcopy.copy_rows(cursor, table, columns, part):
            inserted += len(part)
            continue
        else:
            from psycopg2.extras import execute_values

            # one page per chunk, so rowcount covers the whole chunk
            execute_values(cursor, f"INSERT INTO {table} ({names}) VALUES %s{tail}", part, page_size=len(part))
        inserted += max(cursor.rowcount, 0)
    return inserted


def define_models(database: pw.Database) -> SimpleNamespace:
    """The Example, Event and Migration tables bound to `database`."""

    Base = TableModel

    class ExampleRow(Base):
        id = pw.CharField(primary_key=True, max_length=32)
        task = pw.CharField()
        content_hash = pw.CharField(max_length=64)
        inputs = pw.TextField()
        outputs = pw.TextField()
        domain = pw.CharField(null=True)
        topic = pw.CharField(null=True)
        difficulty = pw.CharField(null=True)
        source = pw.CharField(max_length=16)
        status = pw.CharField(max_length=16)
        scores = pw.TextField()
        quality = pw.DoubleField(null=True)
        findings = pw.TextField()
        provenance = pw.TextField()
        metadata = pw.TextField()
        created_at = pw.DoubleField()
        updated_at = pw.DoubleField()
        last_used_at = pw.DoubleField(null=True)

        class Meta:
            table_name = "examples"
            indexes = (
                (("task", "content_hash"), True),
                (("task", "status", "domain", "topic", "difficulty"), False),
                (("task", "quality"), False),
                (("created_at",), False),
            )

    class EventRow(Base):
        id = pw.CharField(primary_key=True, max_length=32)
        time = pw.DoubleField(index=True)
        kind = pw.CharField(max_length=32)
        actor = pw.CharField()
        reason = pw.TextField()
        example_ids = pw.TextField()
        details = pw.TextField()

        class Meta:
            table_name = "events"

    class MigrationRow(Base):
        name = pw.CharField(primary_key=True)
        applied_at = pw.DoubleField()

        class Meta:
            table_name = "trainkit_migrations"

    return bound(database, Example=ExampleRow, Event=EventRow, Migration=MigrationRow)


def _initial(models: SimpleNamespace) -> None:
    models.Example.create_table(safe=True)
    models.Event.create_table(safe=True)


def _snapshots(models: SimpleNamespace) -> None:
    from .snapshots import create_tables  # snapshot tables live with the snapshot code

    create_tables(models)


def _optimization_runs(models: SimpleNamespace) -> None:
    from .runs import create_tables  # run tables live with the run code

    create_tables(models)


def _generation_plans(models: SimpleNamespace) -> None:
    from .plans import create_tables  # plan tables live with the plan code

    create_tables(models)


def _example_values(models: SimpleNamespace) -> None:
    from .values import create_tables  # the values table lives with the values code

    create_tables(models)


def _read_paths(models: SimpleNamespace) -> None:
    from .events import migrate_read_paths  # the event link table lives with the event code

    migrate_read_paths(models)


def _alerts(models: SimpleNamespace) -> None:
    from .alerts import create_tables  # the alerts table lives with the alerts code

    create_tables(models)


def _last_used(models: SimpleNamespace) -> None:
    from .usage import create_table  # the last-use table lives with the code that marks use

    create_table(models)


def _example_data(models: SimpleNamespace) -> None:
    from .example_data import create_tables  # the derived-data table lives with its code

    create_tables(models)


#: Append only. Never rename or reorder an entry once released: stores record these names.
MIGRATIONS: list[tuple[str, Callable[[SimpleNamespace], None]]] = [
    ("0001_initial", _initial),
    ("0002_snapshots", _snapshots),
    ("0003_generation_plans", _generation_plans),
    ("0004_optimization_runs", _optimization_runs),
    ("0005_example_values", _example_values),
    ("0006_alerts", _alerts),
    ("0007_read_paths", _read_paths),
    ("0009_neardup_example_data", _example_data),
    ("0010_last_used", _last_used),
]


def applied(models: SimpleNamespace) -> list[str]:
    if not models.Migration.table_exists():
        return []
    return [row.name for row in models.Migration.select().order_by(models.Migration.applied_at,
                                                                    models.Migration.name)]


def migrate(models: SimpleNamespace, write_transaction: Callable[[], ContextManager]) -> list[str]:
    """Apply missing migrations, each in an exclusive write transaction so concurrent openers take turns.

    A store that is up to date (every opening after the first) is only read: taking the write lock here made
    every command, `trainkit stats` included, wait behind any writer (and fail after the lock timeout)."""
    if set(applied(models)) >= {name for name, _ in MIGRATIONS}:
        return []
    with write_transaction():
        models.Migration.create_table(safe=True)
    done: list[str] = []
    for name, step in MIGRATIONS:
        with write_transaction():
            if models.Migration.get_or_none(models.Migration.name == name) is not None:
                continue
            step(models)
            models.Migration.create(name=name, applied_at=time.time())
            done.append(name)
    return done
