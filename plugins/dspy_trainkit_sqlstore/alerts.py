"""The alerts table and the alerts half of `PeeweeStore` (a mixin). One row per alert; the columns a listing
filters on (task, status, times) beside the whole alert as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING

import attrs
import orjson
import peewee as pw

if TYPE_CHECKING:  # the value classes load when an alert is read: opening a store for `stats` needs none
    from dspy_trainkit.pluginkit import Alert

from . import schema


def define_alert_models(database: pw.Database) -> SimpleNamespace:
    """The `alerts` table."""

    class AlertRow(schema.TableModel):
        id = pw.CharField(primary_key=True, max_length=32)
        task = pw.CharField()
        rule = pw.CharField()
        status = pw.CharField(max_length=16)
        last_seen = pw.DoubleField()
        record = pw.TextField()

        class Meta:
            table_name = "alerts"
            indexes = ((("status", "task"), False),)

    return schema.bound(database, Alert=AlertRow)


def create_tables(models: SimpleNamespace) -> None:
    """Migration 0006_alerts."""
    define_alert_models(models.Example._meta.database).Alert.create_table(safe=True)


class AlertStoreMixin:
    """Alert methods of the Store interface for peewee stores; PeeweeStore inherits them."""

    db: pw.Database

    @property
    def _alerts(self) -> SimpleNamespace:
        models = getattr(self, "_alert_models", None)
        if models is None:
            models = self._alert_models = define_alert_models(self.db)
        return models

    def save_alert(self, alert: Alert) -> None:
        m = self._alerts
        row = {"id": alert.id, "task": alert.task, "rule": alert.rule, "status": alert.status,
               "last_seen": alert.last_seen, "record": orjson.dumps(attrs.asdict(alert)).decode()}
        with self._transaction():  # type: ignore[attr-defined]
            m.Alert.delete().where(m.Alert.id == alert.id).execute()
            m.Alert.insert(**row).execute()

    def list_alerts(self, *, task: str | None = None, statuses: Sequence[str] | None = None) -> list[Alert]:
        m = self._alerts
        select = m.Alert.select(m.Alert.record).order_by(m.Alert.last_seen.desc(), m.Alert.id)
        if task is not None:
            select = select.where(m.Alert.task == task)
        if statuses is not None:
            select = select.where(m.Alert.status.in_(list(statuses)))
        from dspy_trainkit.pluginkit import Alert

        return [Alert(**orjson.loads(row[0])) for row in select.tuples()]
