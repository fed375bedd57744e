"""The store interface that storage plugins implement, and opening a store by URL.

A store keeps examples and the append-only event log. Storage backends are plugins registered through the
`storage_backend` hook under a URL scheme (`sqlite`, `postgresql`, ...); the core only talks to this interface.
Writes are batched (one transaction per call) and every mutation writes its Event in the same transaction, so
the audit trail can never miss a committed change. Reads stream.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import attrs

from .errors import StoreError
from .registry import Registration, collect_registrations

if TYPE_CHECKING:
    import pluggy

    from .generation.plan import PlanSlot, SlotResult
    from .models import Event, Example, Snapshot
    from .settings import Settings

#: Columns `stats` can group by, and `ExampleQuery` can filter on.
GROUP_COLUMNS = ("task", "status", "source", "domain", "topic", "difficulty")


def _as_ids(value: Any) -> tuple[str, ...] | None:
    """`ids="0192..."` or any iterable of ids -> a tuple, so API callers need not build one."""
    if value is None or isinstance(value, tuple):
        return value
    return (value,) if isinstance(value, str) else tuple(value)


def _as_conditions(value: Any) -> tuple[tuple[str, str, object], ...]:
    """`where="quality<0.5"`, a list of such strings, or parsed (field, op, value) triples -> parsed triples."""
    from .where import parse_where

    items = [value] if isinstance(value, str) else list(value or ())
    return tuple(parse_where(item) if isinstance(item, str) else tuple(item) for item in items)


@attrs.frozen(kw_only=True)
class ExampleQuery:
    """A filter over examples: exact matches on the label columns, a minimum quality, paging and order."""

    task: str | None = None
    status: str | None = None
    source: str | None = None
    domain: str | None = None
    topic: str | None = None
    difficulty: str | None = None
    min_quality: float | None = None
    ids: tuple[str, ...] | None = attrs.field(default=None, converter=lambda v: _as_ids(v))
    # (field, op, value) from dspy_trainkit.where, ANDed; "quality<0.5" strings are parsed here
    where: tuple[tuple[str, str, object], ...] = attrs.field(default=(), converter=lambda v: _as_conditions(v))
    limit: int | None = None
    offset: int = 0
    order: str = "created"  # "created" | "-created" | "-quality"

    def equalities(self) -> dict[str, str]:
        return {col: getattr(self, col) for col in GROUP_COLUMNS if getattr(self, col) is not None}


@attrs.frozen
class InsertResult:
    """What a batch insert did: the ids stored and the ones skipped as duplicates (same task + content hash)."""

    inserted: tuple[str, ...]
    duplicates: tuple[str, ...]


class Store(abc.ABC):
    """What every storage backend provides. Methods are called from one thread per store object."""

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

    @abc.abstractmethod
    def iter_ids(self, query: ExampleQuery) -> Iterator[str]:
        """Stream the ids of the examples matching `query`, in its order."""

    @abc.abstractmethod
    def count(self, query: ExampleQuery) -> int:
        """How many examples match `query` (paging ignored)."""

    @abc.abstractmethod
    def group_counts(self, columns: Sequence[str], query: ExampleQuery) -> list[tuple[tuple[Any, ...], int]]:
        """Counts of matching examples grouped by `columns` (a subset of GROUP_COLUMNS)."""

    @abc.abstractmethod
    def iter_events(self, example_id: str | None = None, since: float | None = None) -> Iterator[Event]:
        """Stream the audit trail in time order, optionally for one example or after a time."""

    @abc.abstractmethod
    def applied_migrations(self) -> list[str]:
        """Names of the schema migrations applied to this store, in order."""

    # -- lifecycle: snapshots, usage, backup (see dspy_trainkit.lifecycle) ---------------------------------
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

    @abc.abstractmethod
    def load_examples(self, examples: Sequence[Example]) -> int:
        """Store restored examples exactly as given (ids, statuses, times, hashes), skipping stored ids, with
        no event; returns how many were new."""

    @abc.abstractmethod
    def load_events(self, events: Sequence[Event]) -> None:
        """Append restored audit-trail events as they are (skipping ids already present)."""

    # -- generation plans (see dspy_trainkit.generation.plan); not abstract, so older backends still open -------
    def ensure_plan(self, plan: str, task: str, config: dict[str, Any],
                    slots: Sequence[tuple[str | None, str | None, str | None, int]]) -> int:
        """Create plan `plan` of `task` if new and add the `(domain, topic, difficulty, index)` slots it lacks
        (pending), in one transaction; returns how many slots were added."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def plan_info(self, plan: str) -> dict[str, Any] | None:
        """`{name, task, created_at, config}` of a plan, or None."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def plan_slots(self, plan: str, *, state: str | None = None, domain: str | None = None,
                   max_index: int | None = None, cells: Sequence[Any] | None = None) -> list[PlanSlot]:
        """The plan's slots (optionally in one state, of one domain, with index < max_index, in the given
        `(domain, topic, difficulty)` cells), in cell order. `cells` is the task's current grid, so slots of
        cells since removed from the settings are left out; the same holds for the slot methods below."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def slot_counts(self, plan: str, *, domain: str | None = None, max_index: int | None = None,
                    cells: Sequence[Any] | None = None) -> dict[str, int]:
        """How many of the plan's (matching) slots are in each state."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def reopen_failed_slots(self, plan: str, *, domain: str | None = None, max_index: int | None = None,
                            cells: Sequence[Any] | None = None) -> int:
        """Make failed slots pending again (attempts reset), for a re-run; returns how many."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def release_claims(self, plan: str, owner: str | None = None, *, owner_is_dead: Any = None) -> int:
        """Make claimed slots pending again: those of `owner`, or of every owner for which `owner_is_dead(owner)`
        is true; returns how many."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def claim_slots(self, plan: str, owner: str, limit: int, lease_seconds: float, *, domain: str | None = None,
                    max_index: int | None = None, cells: Sequence[Any] | None = None) -> list[PlanSlot]:
        """Atomically claim up to `limit` pending (or lease-expired) slots for `owner` for `lease_seconds`; two
        concurrent claimers never get the same slot. Each claim counts an attempt."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def renew_claims(self, plan: str, owner: str, lease_seconds: float) -> int:
        """Extend the leases of `owner`'s claimed slots to now + lease_seconds; returns how many."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def attach_slot_examples(self, plan: str, owner: str,
                             attached: Iterable[tuple[str | None, str | None, str | None, int, str, int]],
                             ) -> list[tuple[str | None, str | None, str | None, int]]:
        """Record `(domain, topic, difficulty, index, example_id, attempt)`: the id a claimed slot's example will
        be stored under, before storing it, so a crash in between is recognised on resume. Returns the slots
        `owner` still holds in that attempt (for the others the lease ran out and the slot was claimed again:
        their results must be dropped)."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def finish_slots(self, plan: str, owner: str, results: Iterable[SlotResult]) -> int:
        """Move `owner`'s claimed slots to the results' states in one transaction; a slot no longer claimed by
        `owner` is left alone. Returns how many changed."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def list_plans(self) -> list[dict[str, Any]]:
        """Every plan's `{name, task, created_at, config}`, oldest first (backups)."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def plan_slot_records(self, plan: str) -> list[dict[str, Any]]:
        """Every slot of the plan with all it holds (`domain, topic, difficulty, index, state, owner,
        lease_until, attempts, reason, last_error, example_id, updated_at`), in cell order (backups)."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def load_plan(self, info: dict[str, Any], slots: Sequence[dict[str, Any]]) -> None:
        """Store a restored plan (`plan_info`) and its slots (`plan_slot_records`) exactly as given, in one
        transaction, with no event. A plan of that name stored already is a StoreError."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    @abc.abstractmethod
    def is_empty(self) -> bool:
        """True when the store holds no examples, snapshots, optimization runs or generation plans."""

    # -- optimization runs (see dspy_trainkit.optimization); not abstract, so older backends still open ---------
    def iter_qualities(self, query: ExampleQuery) -> Iterator[tuple[str | None, float | None]]:
        """Stream `(domain, quality)` of the matching examples (readiness's quality distribution). This default
        reads whole examples; a backend should read the two columns only."""
        for example in self.iter_examples(query):
            yield example.domain, example.quality

    def save_run(self, record: dict[str, Any], results: Sequence[dict[str, Any]] | None = None,
                 candidates: Sequence[dict[str, Any]] | None = None, event: Event | None = None) -> None:
        """Insert or replace run `record["id"]` (a `Run.record()`), and when given its per-example results and
        candidates (replacing earlier ones), with `event`, in one transaction."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The record of run `run_id`, or None."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def list_runs(self, task: str | None = None) -> list[dict[str, Any]]:
        """Every run record (optionally of one task), oldest first."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def run_details(self, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(per-example results, candidates) of a run, in the order saved."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def set_champion(self, task: str, run_id: str, since: float, event: Event | None = None, *,
                     replacing: str | None = None) -> bool:
        """Make run `run_id` the champion of `task`, with `event`, in one serialised transaction, but only when
        the current champion is still `replacing` (None: no champion); returns whether it did. Two runs
        finishing at once cannot both win against the same champion."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def champion_id(self, task: str) -> str | None:
        """The id of the champion run of `task`, or None."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def list_champions(self) -> list[dict[str, Any]]:
        """Every task's champion as `{task, run_id, since}`, by task (backups)."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""


def redact_url(url: str) -> str:
    """`url` with its password shown as `***` (in the user part and in a `password=` option), for messages,
    manifests and snapshot configs; everything else as given."""
    scheme, sep, rest = url.partition("://")
    if sep:
        authority = rest.split("/", 1)[0]
        userinfo, at, host = authority.rpartition("@")
        if at and ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:***@{host}{rest[len(authority):]}"
        url = f"{scheme}://{rest}"
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


def storage_schemes(pm: pluggy.PluginManager) -> dict[str, Registration]:
    """Every URL scheme a loaded plugin can open, with the plugin that registered it."""

    def make(plugin: str, scheme: str, factory: Any) -> Registration:
        if not isinstance(scheme, str) or not scheme.isidentifier():
            raise ValueError(f"scheme {scheme!r} must be a word such as 'sqlite'")
        if not callable(factory):
            raise ValueError(f"factory for scheme {scheme!r} is not callable")
        return Registration(key=scheme, value=factory, plugin=plugin)

    return collect_registrations(pm, "storage_backend", make)


def open_store(url: str, settings: Settings, pm: pluggy.PluginManager, *, create: bool = True) -> Store:
    """Open the store named by `url` with the backend plugin registered for its scheme.

    With `create=False` a store that does not exist yet is an error (the CLI's commands other than `init`)."""
    scheme = url.split(":", 1)[0] if ":" in url else ""
    schemes = storage_schemes(pm)
    if scheme not in schemes:
        known = ", ".join(f"{s}://" for s in sorted(schemes)) or "none (is the sqlstore plugin disabled?)"
        raise StoreError(f"store URL {url!r}: unknown scheme {scheme!r}; known schemes: {known}")
    store = schemes[scheme].value(url, settings, create=create)
    if not isinstance(store, Store):
        raise StoreError(f"plugin {schemes[scheme].plugin!r} returned {type(store).__name__} for {url!r}, "
                         "which does not implement dspy_trainkit.store.Store")
    return store
