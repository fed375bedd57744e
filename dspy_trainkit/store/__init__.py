"""The store interface that storage plugins implement, and opening a store by URL.

A store keeps examples and the append-only event log, snapshots, generation plans, optimization runs,
per-example values, alerts and data plugins derive from examples; each
part of the interface lives in the module named after what it stores. Storage backends are plugins registered
through the `storage_backend` hook under a URL scheme (`sqlite`, `postgresql`, ...); the core only talks to
this interface.
"""

from __future__ import annotations

from ..redaction import redact_url
from .alerts import AlertStore
from .example_data import ExampleDataStore
from .examples import ExampleStore
from .plans import PlanStore
from .queries import GROUP_COLUMNS, ExampleQuery, InsertResult
from .runs import RunStore
from .snapshots import SnapshotStore
from .values import ValueStore


class Store(ExampleStore, SnapshotStore, PlanStore, RunStore, ValueStore, AlertStore, ExampleDataStore):
    """What every storage backend provides. Methods are called from one thread per store object."""

    url: str


from .opening import open_store, storage_schemes  # noqa: E402  (opening checks results against Store)

__all__ = ["GROUP_COLUMNS", "AlertStore", "ExampleDataStore", "ExampleQuery", "ExampleStore", "InsertResult",
           "PlanStore", "RunStore",
           "SnapshotStore", "Store", "ValueStore", "open_store", "redact_url", "storage_schemes"]
