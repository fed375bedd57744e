"""Snapshot tables and the lifecycle half of `PeeweeStore` (a mixin): snapshots, last-used marks, grouped
quality, consistent reads for backups, and loading restored records.

A snapshot member row keeps the example's full stored record as it was when the snapshot was taken, so a
snapshot reads the same examples byte for byte after edits and archiving. Member rows are written in one
transaction with the snapshot row and its event; a snapshot is never updated afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import orjson
import peewee as pw

from dspy_trainkit.pluginkit import Event, Example, ExampleQuery, Snapshot, StoreError

from . import schema

SNAPSHOT_COLUMNS = ("name", "created_at", "config", "size", "digest")
MEMBER_COLUMNS = ("snapshot", "position", "example_id", "content_hash", "task", "domain", "topic", "difficulty",
                  "record")


def define_snapshot_models(database: pw.Database) -> SimpleNamespace:
    """The `snapshots` and `snapshot_members` tables bound to `database`."""

    Base = schema.TableModel

    class SnapshotRow(Base):
        name = pw.CharField(primary_key=True)
        created_at = pw.DoubleField()
        config = pw.TextField()
        size = pw.IntegerField()
        digest = pw.CharField(max_length=64)

        class Meta:
            table_name = "snapshots"

    class MemberRow(Base):
        snapshot = pw.CharField()
        position = pw.IntegerField()
        example_id = pw.CharField(max_length=32)
        content_hash = pw.CharField(max_length=64)
        task = pw.CharField()
        domain = pw.CharField(null=True)
        topic = pw.CharField(null=True)
        difficulty = pw.CharField(null=True)
        record = pw.TextField()  # the example's stored row (schema.EXAMPLE_COLUMNS) as a JSON list

        class Meta:
            table_name = "snapshot_members"
            primary_key = pw.CompositeKey("snapshot", "position")
            indexes = ((("snapshot", "example_id"), True), (("example_id",), False))

    return schema.bound(database, Snapshot=SnapshotRow, Member=MemberRow)


def create_tables(models: SimpleNamespace) -> None:
    """Migration 0002_snapshots."""
    snap = define_snapshot_models(models.Example._meta.database)
    snap.Snapshot.create_table(safe=True)
    snap.Member.create_table(safe=True)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class SnapshotStoreMixin:
    """Lifecycle methods of the Store interface for peewee stores; PeeweeStore inherits them."""

    db: pw.Database
    models: SimpleNamespace
    is_sqlite: bool

    @property
    def _snap(self) -> SimpleNamespace:
        models = getattr(self, "_snapshot_models", None)
        if models is None:
            models = self._snapshot_models = define_snapshot_models(self.db)
        return models

    # -- snapshots ---------------------------------------------------------------------------------------
    def create_snapshot(self, snapshot: Snapshot, examples: Sequence[Example], event: Event | None,
                        digest: str) -> None:
        from .backend import example_row

        rows = [(snapshot.name, n, ex.id, ex.content_hash, ex.task, ex.domain, ex.topic, ex.difficulty,
                 _dumps(list(example_row(ex)))) for n, ex in enumerate(examples)]
        with self._transaction():  # type: ignore[attr-defined]
            # ON CONFLICT DO NOTHING: a process creating the same name at the same time (its row not committed
            # yet when we looked) makes this insert wait for it and then insert nothing, where a plain INSERT
            # ended in a UniqueViolation traceback on PostgreSQL.
            created = schema.insert_rows(self.db, "snapshots", SNAPSHOT_COLUMNS,
                                         [(snapshot.name, snapshot.created_at, _dumps(snapshot.config), len(rows),
                                           digest)], ignore_conflicts=True)
            if not created:
                raise StoreError(f"snapshot {snapshot.name!r} exists already; snapshots never change, so pick "
                                 "another name (see `trainkit snapshot list`)")
            schema.insert_rows(self.db, "snapshot_members", MEMBER_COLUMNS, rows)
            if event is not None:
                self._append_event(event)  # type: ignore[attr-defined]

    def snapshot_info(self, name: str) -> dict[str, Any] | None:
        model = self._snap.Snapshot
        row = model.select(*(getattr(model, c) for c in SNAPSHOT_COLUMNS)).where(model.name == name).tuples().first()
        return _info(row) if row else None

    def list_snapshots(self) -> list[dict[str, Any]]:
        model = self._snap.Snapshot
        select = model.select(*(getattr(model, c) for c in SNAPSHOT_COLUMNS)).order_by(model.created_at, model.name)
        return [_info(row) for row in select.tuples()]

    def snapshot_members(self, name: str) -> Iterator[tuple[str, str, str, str | None, str | None, str | None]]:
        """`(example id, content hash, task, domain, topic, difficulty)` in snapshot order."""
        model = self._snap.Member
        select = (model.select(model.example_id, model.content_hash, model.task, model.domain, model.topic,
                               model.difficulty).where(model.snapshot == name).order_by(model.position))
        sql, params = select.sql()
        yield from self._stream(sql, params)  # type: ignore[attr-defined]

    def iter_snapshot_examples(self, name: str) -> Iterator[Example]:
        from .backend import row_example

        model = self._snap.Member
        sql, params = model.select(model.record).where(model.snapshot == name).order_by(model.position).sql()
        for (record,) in self._stream(sql, params):  # type: ignore[attr-defined]
            yield row_example(orjson.loads(record))

    def snapshots_holding(self, example_ids: Sequence[str]) -> dict[str, list[str]]:
        """Example id -> names of the snapshots that hold it (for ids that are in one)."""
        model = self._snap.Member
        found: dict[str, list[str]] = {}
        for start in range(0, len(example_ids), 500):
            chunk = list(example_ids[start:start + 500])
            for example_id, snapshot in (model.select(model.example_id, model.snapshot)
                                         .where(model.example_id.in_(chunk)).tuples()):
                found.setdefault(example_id, []).append(snapshot)
        return found

    # -- usage and statistics ------------------------------------------------------------------------------
    def mark_used(self, example_ids: Sequence[str], when: float, event: Event) -> None:
        """Into the `last_used` table (usage.py), not the examples' rows."""
        from .usage import mark

        with self._transaction():  # type: ignore[attr-defined]
            mark(self.db, example_ids, when)
            self._append_event(event)  # type: ignore[attr-defined]

    def group_quality(self, columns: Sequence[str],
                      query: ExampleQuery) -> list[tuple[tuple[Any, ...], int, float | None]]:
        model = self.models.Example
        fields = [getattr(model, c) for c in columns]
        select = self._where(model.select(*fields, pw.fn.COUNT(model.id), pw.fn.AVG(model.quality)),  # type: ignore[attr-defined]
                             query).group_by(*fields).order_by(*fields)
        return [(tuple(r[:-2]), r[-2], r[-1]) for r in select.tuples()]

    def iter_times(self, query: ExampleQuery) -> Iterator[tuple[Any, ...]]:
        """`(task, domain, topic, difficulty, created_at, last_used_at)` of the matching examples, streamed."""
        from .usage import last_used_at

        model = self.models.Example
        used = last_used_at(model, self._has_last_used)  # type: ignore[attr-defined]
        cols = [model.task, model.domain, model.topic, model.difficulty, model.created_at, used]
        sql, params = self._where(model.select(*cols), query).order_by(model.id).sql()  # type: ignore[attr-defined]
        yield from self._stream(sql, params)  # type: ignore[attr-defined]

    # -- backup and restore ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def consistent_read(self) -> Iterator[None]:
        """Every read inside sees one committed state of the store while writers keep working (one read
        transaction: WAL snapshot on SQLite, REPEATABLE READ on PostgreSQL)."""
        with self.db.atomic():
            if not self.is_sqlite:
                self.db.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            else:
                self.db.execute_sql("SELECT count(*) FROM examples")  # starts the read snapshot now
            yield

    def load_examples(self, examples: Sequence[Example]) -> int:
        """Store examples exactly as given (ids, statuses, times, hashes); ones whose id is stored are skipped.
        No event: restore copies the audit trail itself."""
        from .backend import example_row

        rows = [example_row(ex) for ex in examples]
        with self._transaction():  # type: ignore[attr-defined]
            return schema.insert_rows(self.db, "examples", schema.EXAMPLE_COLUMNS, rows, ignore_conflicts=True)

    def load_events(self, events: Sequence[Event]) -> None:
        from .events import write_events

        with self._transaction():  # type: ignore[attr-defined]
            write_events(self.db, events, ignore_conflicts=True)  # as _append_event writes them

    def is_empty(self) -> bool:
        """No examples, snapshots, optimization runs or generation plans (a restore target)."""
        return not (self.models.Example.select().exists() or self._snap.Snapshot.select().exists()
                    or self._runs.Run.select().exists()  # type: ignore[attr-defined]
                    or self._plans.Plan.select().exists())  # type: ignore[attr-defined]


def _info(row: Sequence[Any]) -> dict[str, Any]:
    info = dict(zip(SNAPSHOT_COLUMNS, row, strict=True))
    info["config"] = orjson.loads(info["config"])
    return info
