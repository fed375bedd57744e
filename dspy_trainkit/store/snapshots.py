"""The part of the store interface that keeps snapshots: immutable, named sets of examples as they were."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import Event, Example, Snapshot


class SnapshotStore(abc.ABC):
    """Snapshots: created once, never changed, read back in their order."""

    url: str

    @abc.abstractmethod
    def create_snapshot(self, snapshot: Snapshot, examples: Sequence[Example], event: Event | None,
                        digest: str) -> None:
        """Store a new snapshot holding `examples` as they are now (full content, in order) with `event`, in
        one transaction. A name that exists already is a StoreError: snapshots never change."""

    @abc.abstractmethod
    def snapshot_info(self, name: str) -> dict[str, Any] | None:
        """`{name, created_at, config, size, digest}` of a snapshot, or None."""

    @abc.abstractmethod
    def list_snapshots(self) -> list[dict[str, Any]]:
        """Every snapshot's info, oldest first."""

    @abc.abstractmethod
    def snapshot_members(self, name: str) -> Iterator[tuple[str, str, str, str | None, str | None, str | None]]:
        """Stream `(example id, content hash, task, domain, topic, difficulty)` of a snapshot, in its order."""

    @abc.abstractmethod
    def iter_snapshot_examples(self, name: str) -> Iterator[Example]:
        """Stream a snapshot's examples as they were when it was taken, in its order."""

    @abc.abstractmethod
    def snapshots_holding(self, example_ids: Sequence[str]) -> dict[str, list[str]]:
        """Example id -> the names of the snapshots holding it (only ids held by one)."""
