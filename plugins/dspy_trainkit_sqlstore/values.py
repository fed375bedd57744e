"""The per-example values table and the values half of `PeeweeStore` (a mixin): stored by `trainkit value`,
read by `trainkit value --stored` and recommendations, flagged stale when an example changes.

One row per (task, example id) holds the combined value, its standard error and observation count as columns
(so ranking is one indexed query on a large store) and the signals behind it as JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import orjson
import peewee as pw

if TYPE_CHECKING:  # the value classes load when a value is read: opening a store for `stats` needs none
    from dspy_trainkit.pluginkit import Event, ExampleValue

from . import schema

VALUE_COLUMNS = ("task", "example_id", "value", "stderr", "observations", "signals", "computed_at", "stale")
BATCH = 500


def define_value_models(database: pw.Database) -> SimpleNamespace:
    """The `example_values` table."""

    class ValueRow(schema.TableModel):
        task = pw.CharField()
        example_id = pw.CharField(max_length=32)
        value = pw.DoubleField()
        stderr = pw.DoubleField(null=True)
        observations = pw.IntegerField()
        signals = pw.TextField()
        computed_at = pw.DoubleField()
        stale = pw.BooleanField(default=False)

        class Meta:
            table_name = "example_values"
            primary_key = pw.CompositeKey("task", "example_id")
            indexes = ((("task", "value"), False), (("example_id",), False))

    return schema.bound(database, Value=ValueRow)


def create_tables(models: SimpleNamespace) -> None:
    """Migration 0005_example_values."""
    define_value_models(models.Example._meta.database).Value.create_table(safe=True)


class ValueStoreMixin:
    """Value methods of the Store interface for peewee stores; PeeweeStore inherits them."""

    db: pw.Database

    @property
    def _values(self) -> SimpleNamespace:
        models = getattr(self, "_value_models", None)
        if models is None:
            models = self._value_models = define_value_models(self.db)
        return models

    def save_values(self, task: str, values: Sequence[ExampleValue], event: Event | None = None) -> None:
        m = self._values
        rows = [(task, v.example_id, float(v.value), v.stderr, int(v.observations),
                 orjson.dumps(v.signals).decode(), float(v.computed_at), False) for v in values]
        with self._transaction():  # type: ignore[attr-defined]
            m.Value.delete().where(m.Value.task == task).execute()
            schema.insert_rows(self.db, "example_values", VALUE_COLUMNS, rows)
            if event is not None:
                self._append_event(event)  # type: ignore[attr-defined]

    def iter_values(self, task: str, *, example_ids: Sequence[str] | None = None, order: str = "value",
                    limit: int | None = None) -> Iterator[ExampleValue]:
        m = self._values
        ordering = {"value": (m.Value.value, m.Value.example_id), "-value": (m.Value.value.desc(),
                                                                                m.Value.example_id),
                    "example": (m.Value.example_id,)}[order]
        if example_ids is not None:
            ids = list(example_ids)
            for start in range(0, len(ids), BATCH):
                select = m.Value.select().where((m.Value.task == task) & m.Value.example_id.in_(
                    ids[start:start + BATCH])).order_by(*ordering)
                yield from (_value(row) for row in select.tuples())
            return
        select = m.Value.select().where(m.Value.task == task).order_by(*ordering)
        if limit is not None:
            select = select.limit(limit)
        sql, params = select.sql()
        yield from (_value(row) for row in self._stream(sql, params))  # type: ignore[attr-defined]

    def mark_values_stale(self, example_ids: Sequence[str]) -> int:
        m = self._values
        ids, changed = list(example_ids), 0
        with self._transaction():  # type: ignore[attr-defined]
            for start in range(0, len(ids), BATCH):
                changed += m.Value.update(stale=True).where(m.Value.example_id.in_(ids[start:start + BATCH])
                                                            & (m.Value.stale == False)).execute()  # noqa: E712
        return changed


def _value(row: tuple[Any, ...]) -> ExampleValue:
    from dspy_trainkit.pluginkit import ExampleValue

    task, example_id, value, stderr, observations, signals, computed_at, stale = row
    return ExampleValue(task=task, example_id=example_id, value=value, stderr=stderr, observations=observations,
                        signals=orjson.loads(signals), computed_at=computed_at, stale=bool(stale))
