"""The part of the store interface that keeps examples and the append-only event log.

Writes are batched (one transaction per call) and every mutation writes its Event in the same transaction, so
the audit trail can never miss a committed change. Reads stream.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import Event, Example
    from .queries import ExampleQuery, InsertResult


class ExampleStore(abc.ABC):
    """Examples, their usage and quality reads, the audit trail, and bulk loading for restores."""

    url: str

    @abc.abstractmethod
    def insert_examples(self, examples: Sequence[Example], event: Event) -> InsertResult:
        """Insert a batch in one transaction, skipping examples whose (task, content hash) is stored already,
        and record `event` (with the ids actually inserted) in the same transaction."""

    @abc.abstractmethod
    def update_examples(self, examples: Sequence[Example], event: Event) -> None:
        """Store new values of already stored examples (matched by id) in one transaction, with `event`.

        Raises StoreError when an edit would make an example equal (same task and content hash) to another
        stored one, naming it; nothing of the batch is written then."""

    @abc.abstractmethod
    def append_event(self, event: Event) -> None:
        """Record an event that goes with no change of examples (a batch that was all duplicates)."""

    @abc.abstractmethod
    def existing_hashes(self, task: str, hashes: Iterable[str]) -> set[str]:
        """Which of `hashes` are stored for `task` already (for exact dedup before scoring)."""

    @abc.abstractmethod
    def find_by_hash(self, task: str, content_hash: str) -> Example | None:
        """The stored example of `task` with this content hash, or None."""

    @abc.abstractmethod
    def get(self, example_id: str) -> Example | None:
        """The example with this id, or None."""

    @abc.abstractmethod
    def ids_matching(self, fragment: str, limit: int = 2) -> list[str]:
        """Up to `limit` ids that start or end with `fragment`, so users can type a short unique part. Ids are
        time-ordered, so ids made together share their start; their ends tell them apart."""

    @abc.abstractmethod
    def iter_examples(self, query: ExampleQuery) -> Iterator[Example]:
        """Stream the examples matching `query`, without loading them all at once."""

    def iter_example_columns(self, query: ExampleQuery, columns: Sequence[str] | None) -> Iterator[Example]:
        """Stream the examples matching `query` reading only `columns` (names of Example fields; id and task
        always), for readers that use a few fields of millions of examples (exports, trainsets): the other
        fields hold empty values. `None` reads everything. This default reads whole examples; a backend
        should read the columns asked for only."""
        return self.iter_examples(query)

    @abc.abstractmethod
    def iter_ids(self, query: ExampleQuery) -> Iterator[str]:
        """Stream the ids of the examples matching `query`, in its order."""

    @abc.abstractmethod
    def count(self, query: ExampleQuery) -> int:
        """How many examples match `query` (paging ignored)."""

    @abc.abstractmethod
    def group_counts(self, columns: Sequence[str], query: ExampleQuery) -> list[tuple[tuple[Any, ...], int]]:
        """Counts of matching examples grouped by `columns` (a subset of GROUP_COLUMNS)."""

    def distinct_values(self, column: str) -> list[Any]:
        """The distinct non-null values of label column `column` (one of GROUP_COLUMNS), sorted. This default
        groups every example; a backend should answer from an index where it has one (the task list of a
        million-example store is read on every dashboard page)."""
        from .queries import ExampleQuery

        return [key[0] for key, _ in self.group_counts([column], ExampleQuery()) if key[0] is not None]

    @abc.abstractmethod
    def iter_events(self, example_id: str | None = None, since: float | None = None) -> Iterator[Event]:
        """Stream the audit trail in time order, optionally for one example or after a time."""

    def iter_event_counts(self, example_id: str | None = None, since: float | None = None
                          ) -> Iterator[tuple[Event, int]]:
        """`(event, how many examples it names)` as `iter_events` streams them, for readers that show the count
        only (`trainkit log`): a backend may leave the events' `example_ids` empty, so that an event naming a
        million examples is not read whole to print "1000000 examples". This default reads them whole."""
        for event in self.iter_events(example_id=example_id, since=since):
            yield event, len(event.example_ids)

    @abc.abstractmethod
    def applied_migrations(self) -> list[str]:
        """Names of the schema migrations applied to this store, in order."""

    def pending_migrations(self) -> list[str]:
        """Names of the schema migrations this trainkit knows and the store lacks, in the order they would run.
        This default (a backend without migrations) has none."""
        return []

    def unknown_migrations(self) -> list[str]:
        """Migrations applied to the store that this trainkit does not know: a newer trainkit upgraded it."""
        return []

    def migrate(self) -> list[str]:
        """Apply the pending migrations; returns their names. A store opened with `migrate=False` (doctor,
        `trainkit migrate --check`) has not applied them yet."""
        return []

    def health_checks(self) -> list[dict[str, Any]]:
        """The backend's own checks (`trainkit doctor`): dicts of `name`, `status` ("ok", "warning", "error"),
        `message` and `fix` (what to do when not ok). SQLite runs `PRAGMA quick_check`, PostgreSQL checks the
        privileges trainkit needs. This default has none."""
        return []

    @abc.abstractmethod
    def mark_used(self, example_ids: Sequence[str], when: float, event: Event) -> None:
        """Set `last_used_at` of these examples to `when` and record `event`, in one transaction."""

    @abc.abstractmethod
    def group_quality(self, columns: Sequence[str], query: ExampleQuery) -> list[tuple[tuple[Any, ...], int,
                                                                                      float | None]]:
        """`(group key, count, mean quality)` of matching examples grouped by `columns`."""

    @abc.abstractmethod
    def iter_times(self, query: ExampleQuery) -> Iterator[tuple[Any, ...]]:
        """Stream `(task, domain, topic, difficulty, created_at, last_used_at)` of the matching examples."""

    @abc.abstractmethod
    def consistent_read(self) -> AbstractContextManager[None]:
        """A context in which every read sees one committed state while writers keep working (backups)."""

    def write_transaction(self) -> AbstractContextManager[None]:
        """An exclusive write transaction: every write made inside (by this store's methods, which nest)
        commits together when the block ends, or not at all when it raises or the process dies. Restore runs
        in one, so a failed or killed restore leaves the store as it was. This default is no transaction at
        all (a backend without transactions: a failed restore then leaves a partial store); backends with
        transactions override it."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def load_examples(self, examples: Sequence[Example]) -> int:
        """Store restored examples exactly as given (ids, statuses, times, hashes), skipping stored ids, with
        no event; returns how many were new."""

    @abc.abstractmethod
    def load_events(self, events: Sequence[Event]) -> None:
        """Append restored audit-trail events as they are (skipping ids already present)."""

    def iter_qualities(self, query: ExampleQuery) -> Iterator[tuple[str | None, float | None]]:
        """Stream `(domain, quality)` of the matching examples (readiness's quality distribution). This default
        reads whole examples; a backend should read the two columns only."""
        for example in self.iter_examples(query):
            yield example.domain, example.quality

    @abc.abstractmethod
    def is_empty(self) -> bool:
        """True when the store holds no examples, snapshots, optimization runs or generation plans."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""
