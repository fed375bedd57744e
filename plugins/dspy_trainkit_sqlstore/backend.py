"""`PeeweeStore`: the Store interface over SQLite or PostgreSQL with peewee.

Bulk inserts bypass peewee's query builder: one transaction per batch and the driver's fastest bulk path
(sqlite3 `executemany`; on PostgreSQL COPY, `pgcopy.py`, with psycopg2 `execute_values` where COPY cannot
serve), since `insert_many` builds SQL text and measured ~2.5x slower. Reads use peewee queries and page
through results by primary key (ids are time-ordered), so a million-row listing never holds a million rows or
a long read transaction.
SQLite runs in WAL mode with a busy timeout and `BEGIN IMMEDIATE` for writes, so concurrent writers wait their
turn instead of failing with "database is locked"; opening a store that is up to date only reads, so readers never
wait for a writer. A PostgreSQL connection the server dropped is replaced (`database.py`), and driver errors
reach the user as one StoreError line (`errors.py`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sqlite3
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson
import peewee as pw

from dspy_trainkit.pluginkit import (
    GROUP_COLUMNS,
    Event,
    Example,
    ExampleQuery,
    Finding,
    InsertResult,
    Store,
    StoreError,
    redact_url,
    slot_setter,
    unknown_settings,
)

from . import pgcopy, schema
from .alerts import AlertStoreMixin
from .database import ReconnectingPostgresqlDatabase, SqliteStoreDatabase
from .driver import hand_over_psycopg2
from .errors import translate_errors, translated
from .events import iter_event_counts, iter_events, write_events
from .example_data import ExampleDataStoreMixin
from .plans import PlanStoreMixin
from .runs import RunStoreMixin
from .snapshots import SnapshotStoreMixin
from .usage import columns as select_columns
from .usage import follow_edits
from .values import ValueStoreMixin

PAGE_SIZE = 1000
#: PostgreSQL: seconds to wait for a connection (libpq `connect_timeout`) unless the store URL names its own.
CONNECT_TIMEOUT = 10
#: PostgreSQL: ANALYZE `examples` after an import has added this many rows and at least doubled the table.
ANALYZE_MIN_ROWS = 10_000
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
}  # the page cache grows when the connection first writes (database.WRITER_CACHE_KIB)
#: `[plugin.sqlstore]` keys and their defaults. lock_timeout: seconds a SQLite writer waits for another
#: process's write lock before giving up with a StoreError.
DEFAULTS: dict[str, Any] = {"lock_timeout": 60.0}


def store_options(settings: Any) -> dict[str, Any]:
    """The `[plugin.sqlstore]` table checked and merged over DEFAULTS."""
    table = dict((getattr(settings, "plugin_config", None) or {}).get("sqlstore", {}) or {})
    options = unknown_settings("sqlstore", table, DEFAULTS)
    timeout = options["lock_timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        from dspy_trainkit.pluginkit import ConfigError

        raise ConfigError(f"[plugin.sqlstore] lock_timeout = {timeout!r}: give a number of seconds above 0")
    options["lock_timeout"] = float(timeout)
    return options


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def example_row(ex: Example) -> tuple[Any, ...]:
    """An Example as a tuple in `schema.EXAMPLE_COLUMNS` order."""
    findings, metadata = ex.findings, ex.metadata  # (most examples have neither: their JSON is a constant)
    return (ex.id, ex.task, ex.content_hash, _dumps(ex.inputs), _dumps(ex.outputs), ex.domain, ex.topic,
            ex.difficulty, ex.source, ex.status, _dumps(ex.scores), ex.quality,
            _dumps([f.to_dict() for f in findings]) if findings else "[]", _dumps(ex.provenance),
            _dumps(metadata) if metadata else "{}", ex.created_at, ex.updated_at, ex.last_used_at)


_EXAMPLE_FIELDS = tuple(a.name for a in attrs.fields(Example))
_JSON_COLUMNS = frozenset({"inputs", "outputs", "scores", "provenance", "metadata"})
#: PostgreSQL: the columns `_analyze_if_grown` has ANALYZE sample: all but the JSON ones, which no plan filters on
#: and which took half its time (0.5 s against 0.25 s at 100k rows, a few times per first import). reltuples is
#: updated all the same, and autovacuum still analyzes every column later (a column list leaves its change count).
ANALYZED_COLUMNS = tuple(c for c in schema.EXAMPLE_COLUMNS if c not in _JSON_COLUMNS and c != "findings")
#: What a column not read holds in a partial example (`iter_example_columns`).
_ABSENT: dict[str, Any] = {"scores": {}, "findings": (), "provenance": {}, "metadata": {}, "source": "manual",
                           "status": "candidate", "created_at": 0.0, "updated_at": 0.0, "domain": None,
                           "topic": None, "difficulty": None, "quality": None, "last_used_at": None,
                           "inputs": {}, "outputs": {}}


def row_example(row: Sequence[Any], columns: Sequence[str] = schema.EXAMPLE_COLUMNS) -> Example:
    """A stored row as an Example, without running the validators again: every value was checked when the
    Example was made, before it was stored (validation was most of the cost of reading a million rows).
    With `columns` (a subset, `id` and `task` included), the other fields hold empty values, shared between
    examples: read-only, like the rest of an Example."""
    return _row_reader(tuple(columns))(row)


@functools.lru_cache(maxsize=32)
def _row_reader(columns: tuple[str, ...]) -> Any:
    """A function made for these columns that builds an Example from a row: one assignment per field,
    unrolled (a loop over field names cost 16 us per row; this is about 3, most of it JSON parsing),
    each through the field's slot setter. The fields a column-limited read leaves out are not set at all: the
    example is then of `_partial_class`, where they read as empty."""
    at = {name: n for n, name in enumerate(columns)}
    absent = tuple(name for name in _EXAMPLE_FIELDS if name not in at)
    lines = ["def read(row):", "    ex = new(Example)"]
    for name in (*_EXAMPLE_FIELDS, "content_hash"):
        if name not in at:
            continue  # computed from the content when asked for (content_hash); empty (the others)
        value = f"row[{at[name]}]"
        if name in _JSON_COLUMNS:
            value = f"loads({value})"
        elif name == "findings":
            value = f"findings({value})"
        lines.append(f"    set_{name}(ex, {value})")
    lines.append("    return ex")
    namespace = {"new": object.__new__, "Example": _partial_class(absent) if absent else Example,
                 "loads": orjson.loads, "findings": _findings,
                 **{f"set_{name}": slot_setter(name) for name in (*_EXAMPLE_FIELDS, "content_hash")}}
    exec("\n".join(lines), namespace)  # noqa: S102 - the source is built above from field names only
    return namespace["read"]


class _Empty:
    """The field of a partial example (`_partial_class`): the slot's value once set (by `attrs.evolve`, say),
    else the field's empty value; setting goes to the slot."""

    __slots__ = ("slot", "value")

    def __init__(self, slot: Any, value: Any):
        self.slot, self.value = slot, value

    def __get__(self, example: Any, owner: Any = None) -> Any:
        if example is None:
            return self.slot
        try:
            return self.slot.__get__(example, owner)
        except AttributeError:
            return self.value

    def __set__(self, example: Any, value: Any) -> None:
        self.slot.__set__(example, value)

    def __delete__(self, example: Any) -> None:
        self.slot.__delete__(example)


@functools.cache  # one class per column set for the process: equal partial examples must share their class
def _partial_class(absent: tuple[str, ...]) -> type[Example]:
    """A subclass of Example whose `absent` fields read as their empty values (`_ABSENT`) without being set.

    Why: a column-limited read (exports, trainsets) built a million examples and setting the 13 fields it did
    not read cost as much per example as everything else of the reader but the JSON parsing (0.4 us of 0.9).
    Readers see an Example (`isinstance`, the same attributes, `evolve`, `to_dict`, repr); it pickles and copies
    as a whole Example with those empty values. Two differences remain: `type(ex) is Example` is false, and
    attrs' `==` compares it equal only to a partial example of the same columns."""
    fields: dict[str, Any] = {name: _Empty(Example.__dict__[name], _ABSENT[name]) for name in absent}
    return type("Example", (Example,), {"__slots__": (), "__module__": Example.__module__,
                                        "__qualname__": Example.__qualname__, "__reduce__": _reduce_whole,
                                        **fields})


def _reduce_whole(example: Example) -> tuple[Any, tuple[Any, ...]]:
    return _whole, (tuple(getattr(example, name) for name in _EXAMPLE_FIELDS),)


def _whole(values: tuple[Any, ...]) -> Example:
    """An Example (the class itself) from its field values in `_EXAMPLE_FIELDS` order (unpickling a partial
    example)."""
    example = object.__new__(Example)
    for name, value in zip(_EXAMPLE_FIELDS, values, strict=True):
        slot_setter(name)(example, value)
    return example


def _findings(text: str) -> tuple[Finding, ...]:
    return tuple(Finding.from_dict(f) for f in orjson.loads(text)) if text != "[]" else ()


@functools.partial(translate_errors, skip=("write_transaction", "consistent_read", "close"))
class PeeweeStore(SnapshotStoreMixin, PlanStoreMixin, RunStoreMixin, ValueStoreMixin, AlertStoreMixin,
                  ExampleDataStoreMixin, Store):
    """A store in one SQLite file or one PostgreSQL database (schema chosen by the URL's search_path)."""

    def __init__(self, url: str, database: pw.Database, *, lock_timeout: float = DEFAULTS["lock_timeout"]):
        self.url = url
        self.db = database
        self.lock_timeout = lock_timeout
        self.models = schema.define_models(database)
        self.is_sqlite = isinstance(database, pw.SqliteDatabase)
        self._cursor_numbers = itertools.count()
        self._integrity_errors: tuple[type[Exception], ...] = (pw.IntegrityError, sqlite3.IntegrityError)
        self._analyzed_rows: int | None = None  # PostgreSQL: rows of `examples` at its last ANALYZE (estimated)
        self._grown = 0  # and rows inserted by this store since
        if not self.is_sqlite:
            import psycopg2

            self._integrity_errors += (psycopg2.IntegrityError,)

    # -- opening -----------------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, settings: Any = None, *, create: bool = True, migrate: bool = True) -> PeeweeStore:
        lock_timeout = store_options(settings)["lock_timeout"]
        with translated(url, lock_timeout):
            store = cls(url, _connect(url, create=create, lock_timeout=lock_timeout), lock_timeout=lock_timeout)
            try:
                if not create and not store.models.Example.table_exists():
                    raise StoreError(f"store {redact_url(url)} has no trainkit tables; run `trainkit init` first")
                if migrate:
                    schema.migrate(store.models, store.write_transaction)
            except BaseException:
                store.close()
                raise
        return store

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[None]:
        """An exclusive write transaction: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL."""
        with translated(self.url, self.lock_timeout):
            if self.is_sqlite:
                with self.db.atomic("IMMEDIATE"):
                    yield
            else:
                with self.db.atomic():
                    self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(b"dspy_trainkit"),))
                    yield

    def close(self) -> None:
        if not self.db.is_closed():
            with contextlib.suppress(pw.InterfaceError, pw.OperationalError):  # a dropped connection is closed
                self.db.close()

    def applied_migrations(self) -> list[str]:
        return schema.applied(self.models)

    def pending_migrations(self) -> list[str]:
        done = set(self.applied_migrations())
        return [name for name, _step in schema.MIGRATIONS if name not in done]

    def unknown_migrations(self) -> list[str]:
        known = {name for name, _step in schema.MIGRATIONS}
        return [name for name in self.applied_migrations() if name not in known]

    def migrate(self) -> list[str]:
        applied = schema.migrate(self.models, self.write_transaction)
        self.__dict__.pop("_has_last_used", None)
        return applied

    @functools.cached_property
    def _has_last_used(self) -> bool:
        """Whether the `last_used` table exists (migration 0010 applied): a store opened without migrating (read-only,
        or `migrate=False`) is read from the column alone until it is."""
        return "0010_last_used" in self.applied_migrations()

    def health_checks(self) -> list[dict[str, Any]]:
        from .health import postgres_checks, sqlite_checks

        return sqlite_checks(self.db) if self.is_sqlite else postgres_checks(self.db, self.pending_migrations())

    # -- writing -----------------------------------------------------------------------------------------
    def insert_examples(self, examples: Sequence[Example], event: Event) -> InsertResult:
        rows = [example_row(ex) for ex in examples]
        columns = ", ".join(schema.EXAMPLE_COLUMNS)
        with self._transaction():
            if self.is_sqlite:
                placeholders = ", ".join("?" * len(schema.EXAMPLE_COLUMNS))
                cursor = self.db.cursor()
                cursor.executemany(f"INSERT INTO examples ({columns}) VALUES ({placeholders}) "
                                   "ON CONFLICT (task, content_hash) DO NOTHING", rows)
                inserted = ([ex.id for ex in examples] if cursor.rowcount == len(rows)
                            else self._present_ids([ex.id for ex in examples]))
            else:
                inserted = self._insert_postgres(rows, columns)
                self._analyze_if_grown(len(inserted))
            if inserted:  # a batch that turned out all duplicates (another writer won) changed nothing
                self._append_event(attrs.evolve(event, example_ids=tuple(inserted)))
        inserted_set = set(inserted)
        return InsertResult(inserted=tuple(inserted),
                            duplicates=tuple(ex.id for ex in examples if ex.id not in inserted_set))

    def _insert_postgres(self, rows: list[tuple[Any, ...]], columns: str) -> list[str]:
        """The ids of `rows` that were inserted, in order. A batch is COPYed when none of its rows is stored
        yet (intake already left out the hashes it found, so that is the usual case); when COPY hits the unique
        (task, content_hash) index (a concurrent writer stored one first) it is undone and the batch goes
        through `INSERT ... ON CONFLICT DO NOTHING`, which skips exactly the rows the index already holds."""
        cursor = self.db.cursor()
        if pgcopy.copy_new_rows(cursor, "examples", schema.EXAMPLE_COLUMNS, rows):
            return [row[0] for row in rows]
        from psycopg2.extras import execute_values

        returned = execute_values(cursor, f"INSERT INTO examples ({columns}) VALUES %s "
                                  "ON CONFLICT (task, content_hash) DO NOTHING RETURNING id",
                                  rows, page_size=len(rows) or 1, fetch=True)
        return [r[0] for r in returned]

    def update_examples(self, examples: Sequence[Example], event: Event) -> None:
        columns = [c for c in schema.EXAMPLE_COLUMNS if c != "id"]
        assignments = ", ".join(f"{c} = {self.db.param}" for c in columns)
        sql = f"UPDATE examples SET {assignments} WHERE id = {self.db.param}"
        rows = [(*row[1:], row[0]) for row in map(example_row, examples)]
        try:
            with self._transaction():
                cursor = self.db.cursor()
                if self.is_sqlite:
                    cursor.executemany(sql, rows)
                else:
                    from psycopg2.extras import execute_batch

                    execute_batch(cursor, sql, rows, page_size=500)
                follow_edits(self.db, [(ex.id, ex.last_used_at) for ex in examples])
                self._append_event(event)
        except self._integrity_errors:
            for ex in examples:
                other = self.find_by_hash(ex.task, ex.content_hash)
                if other is not None and other.id != ex.id:
                    raise StoreError(f"example {ex.id} would become a duplicate of example {other.id} "
                                     "(same task and content); edit it differently or archive one") from None
            raise

    def _analyze_if_grown(self, added: int) -> None:
        """PostgreSQL: refresh the planner's statistics of `examples` once it has grown past twice the size
        they were taken at (and by at least ANALYZE_MIN_ROWS). A first import into an empty table otherwise
        runs with no statistics until autovacuum gets to it, and the planner's guesses for the dedup probe and
        the checks made per batch go wrong as the table grows. Doubling keeps it to a few ANALYZEs per import."""
        if self._analyzed_rows is None:
            cursor = self.db.cursor()
            cursor.execute("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'examples'::regclass")
            self._analyzed_rows = int(cursor.fetchone()[0])
            self._grown = 0
        self._grown += added
        if self._grown >= max(ANALYZE_MIN_ROWS, self._analyzed_rows):
            self.db.cursor().execute(f"ANALYZE examples ({', '.join(ANALYZED_COLUMNS)})")
            self._analyzed_rows += self._grown
            self._grown = 0

    def _transaction(self) -> Any:
        return self.db.atomic("IMMEDIATE") if self.is_sqlite else self.db.atomic()

    def append_event(self, event: Event) -> None:
        with self._transaction():
            self._append_event(event)

    def _present_ids(self, ids: list[str]) -> list[str]:
        model = self.models.Example
        present = {r[0] for r in model.select(model.id).where(model.id.in_(ids)).tuples()}
        return [i for i in ids if i in present]

    def _append_event(self, event: Event) -> None:
        write_events(self.db, [event])

    # -- reading -----------------------------------------------------------------------------------------
    def existing_hashes(self, task: str, hashes: Iterable[str]) -> set[str]:
        # Raw SQL: this runs once per intake batch with hundreds of parameters, and peewee's per-parameter
        # handling cost more than the index probes themselves (measured: ~6 us per hash).
        hashes = list(hashes)
        found: set[str] = set()
        if not self.is_sqlite:  # one probe of the unique (task, content_hash) index per hash, whatever the size
            for start in range(0, len(hashes), 5000):
                cursor = self.db.execute_sql("SELECT content_hash FROM examples WHERE task = %s "
                                             "AND content_hash = ANY(%s)", [task, hashes[start:start + 5000]])
                found.update(row[0] for row in cursor.fetchall())
            return found
        for start in range(0, len(hashes), 500):
            chunk = hashes[start:start + 500]
            marks = ", ".join([self.db.param] * len(chunk))
            cursor = self.db.execute_sql(f"SELECT content_hash FROM examples WHERE task = {self.db.param} "
                                         f"AND content_hash IN ({marks})", [task, *chunk])  # reconnects if need be
            found.update(row[0] for row in cursor.fetchall())
        return found

    def find_by_hash(self, task: str, content_hash: str) -> Example | None:
        model = self.models.Example
        return self._one(model.select(*self._columns()).where((model.task == task)
                                                              & (model.content_hash == content_hash)))

    def get(self, example_id: str) -> Example | None:
        model = self.models.Example
        return self._one(model.select(*self._columns()).where(model.id == example_id))

    def ids_matching(self, fragment: str, limit: int = 2) -> list[str]:
        model = self.models.Example
        fragment = fragment.lower()
        query = model.select(model.id).where(model.id.startswith(fragment) | model.id.endswith(fragment))
        return [r[0] for r in query.limit(limit).tuples()]

    def iter_examples(self, query: ExampleQuery) -> Iterator[Example]:
        return self.iter_example_columns(query, None)

    def iter_example_columns(self, query: ExampleQuery, columns: Sequence[str] | None) -> Iterator[Example]:
        """When an index serves the query's order (task/status filters ordered by id: trainsets, exports), the
        rows stream in one query. Otherwise the matching ids are streamed in order (one query, narrow rows: the
        sort stays small even over millions of examples) and the full rows fetched a page at a time by id:
        sorting whole rows held hundreds of MiB in SQLite's sorter; keyset paging re-sorted for every page.
        `columns`: read only these (plus id and task); the other fields of the examples hold empty values."""
        model = self.models.Example
        names = _read_columns(columns)
        fields = select_columns(model, names, self._has_last_used)
        sql, params = self._select(query, fields).sql()
        if self._order_served(sql, params):
            yield from map(_row_reader(names), self._stream(sql, params))  # no Python loop of its own per row
            return
        ids_sql, params = self._select(query, [model.id]).sql()
        page: list[str] = []
        for (example_id,) in self._stream(ids_sql, params):
            page.append(example_id)
            if len(page) == PAGE_SIZE:
                yield from self._rows_for(page, fields, names)
                page = []
        if page:
            yield from self._rows_for(page, fields, names)

    def _order_served(self, sql: str, params: Sequence[Any]) -> bool:
        """Whether the database reads this query in order from an index (no sort of whole rows), by its plan."""
        if self.is_sqlite:
            plan = self.db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            return not any("TEMP B-TREE" in str(row[-1]) for row in plan)
        plan = self.db.execute_sql(f"EXPLAIN {sql}", params).fetchall()
        return not any("Sort" in str(row[0]) for row in plan)

    def _rows_for(self, ids: list[str], fields: list[Any], names: Sequence[str]) -> Iterator[Example]:
        model = self.models.Example
        rows = {row[0]: row for row in model.select(*fields).where(model.id.in_(ids)).tuples()}
        read = _row_reader(tuple(names))
        for example_id in ids:
            if example_id in rows:  # deleted since the ids were read: skip it
                yield read(rows[example_id])

    def iter_ids(self, query: ExampleQuery) -> Iterator[str]:
        sql, params = self._select(query, [self.models.Example.id]).sql()
        for row in self._stream(sql, params):
            yield row[0]

    def _select(self, query: ExampleQuery, columns: list[pw.Field]) -> pw.Select:
        model = self.models.Example
        orders = {"created": (model.id,), "-created": (model.id.desc(),),
                  "-quality": (model.quality.desc(nulls="LAST"), model.id)}
        if query.order not in orders:
            raise StoreError(f"unknown order {query.order!r}; use {', '.join(orders)}")
        select = self._where(model.select(*columns), query).order_by(*orders[query.order])
        if query.after is not None:
            if query.order == "-quality":
                raise StoreError("keyset paging (after=) works with order 'created' or '-created', not '-quality'")
            select = select.where(model.id < query.after if query.order == "-created" else model.id > query.after)
        if query.limit is not None:
            select = select.limit(query.limit)
        if query.offset:
            if query.limit is None:  # OFFSET needs a LIMIT on SQLite; -1 means none
                select = select.limit(-1 if self.is_sqlite else None)
            select = select.offset(query.offset)
        return select

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        if self.is_sqlite:
            cursor = self.db.cursor()
            try:
                cursor.execute(sql, params)
                while rows := cursor.fetchmany(PAGE_SIZE):
                    yield from rows
            finally:
                # a reader stopped by Ctrl-C is closed by the collector after the store: its cursor is gone with
                # the connection ("Exception ignored ... Cannot operate on a closed database")
                with contextlib.suppress(sqlite3.ProgrammingError):
                    cursor.close()
            return
        name = f"trainkit_{id(self):x}_{next(self._cursor_numbers)}"
        with self.db.atomic():  # a server-side cursor lives inside a transaction (peewee runs in autocommit)
            cursor = self.db.cursor()
            cursor.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
            try:
                while True:
                    cursor.execute(f"FETCH FORWARD {PAGE_SIZE} FROM {name}")
                    rows = cursor.fetchall()
                    if not rows:
                        break
                    yield from rows
            finally:
                cursor.execute(f"CLOSE {name}")

    def count(self, query: ExampleQuery) -> int:
        # COUNT(*) lets the database count over the narrowest index; COUNT("id") read the id of every row
        return self._where(self.models.Example.select(pw.fn.COUNT(pw.SQL("*"))), query).scalar()

    def group_counts(self, columns: Sequence[str], query: ExampleQuery) -> list[tuple[tuple[Any, ...], int]]:
        model = self.models.Example
        unknown = [c for c in columns if c not in GROUP_COLUMNS]
        if unknown:
            raise StoreError(f"cannot group by {unknown[0]!r}; use {', '.join(GROUP_COLUMNS)}")
        fields = [getattr(model, c) for c in columns]
        select = self._where(model.select(*fields, pw.fn.COUNT(pw.SQL("*"))), query).group_by(*fields)
        rows = select.order_by(*fields).tuples()
        return [(tuple(r[:-1]), r[-1]) for r in rows]

    def distinct_values(self, column: str) -> list[Any]:
        """For `task`, the leading column of the (task, content_hash) index, a skip scan: one index seek per
        task (a recursive query; both SQLite and PostgreSQL would otherwise read the whole index). Other
        columns lead no index: one GROUP BY."""
        if column not in GROUP_COLUMNS:
            raise StoreError(f"no distinct values of {column!r}; use one of {', '.join(GROUP_COLUMNS)}")
        if column != "task":
            return super().distinct_values(column)
        cursor = self.db.execute_sql(
            "WITH RECURSIVE t(v) AS (SELECT MIN(task) FROM examples UNION ALL "
            "SELECT (SELECT MIN(task) FROM examples WHERE task > t.v) FROM t WHERE t.v IS NOT NULL) "
            "SELECT v FROM t WHERE v IS NOT NULL")
        return sorted(row[0] for row in cursor.fetchall())

    def iter_events(self, example_id: str | None = None, since: float | None = None) -> Iterator[Event]:
        """Through the event-to-example link table (`events.py`): `example_id` is an index lookup."""
        return iter_events(self.db, self._stream, example_id, since)

    def iter_event_counts(self, example_id: str | None = None, since: float | None = None
                          ) -> Iterator[tuple[Event, int]]:
        return iter_event_counts(self.db, self._stream, example_id, since)

    # -- helpers -----------------------------------------------------------------------------------------
    def _columns(self) -> list[Any]:
        return select_columns(self.models.Example, schema.EXAMPLE_COLUMNS, self._has_last_used)

    def _one(self, select: pw.Select) -> Example | None:
        row = select.limit(1).tuples().first()
        return row_example(row) if row else None

    def _where(self, select: pw.Select, query: ExampleQuery) -> pw.Select:
        model = self.models.Example
        for column, value in query.equalities().items():
            select = select.where(getattr(model, column) == value)
        if query.min_quality is not None:
            select = select.where(model.quality >= query.min_quality)
        if query.ids is not None:
            # one parameter for all the ids, the same plan as IN (primary-key probes): peewee builds a node per
            # id of an IN list (~5 us each), and neardup asks for hundreds of thousands of ids per import into a
            # large store
            if self.is_sqlite:
                select = select.where(model.id.in_(pw.SQL("(SELECT value FROM json_each(?))",
                                                          [orjson.dumps(list(query.ids)).decode()])))
            else:
                select = select.where(model.id == pw.SQL("ANY(%s)", [list(query.ids)]))
        for field, op, value in query.where:
            column = getattr(model, field)
            select = select.where(_OPERATORS[op](column, value))
        if query.text:
            select = select.where(self._has_text(model.inputs, query.text)
                                  | self._has_text(model.outputs, query.text))
        return select

    def _has_text(self, column: pw.Field, text: str) -> pw.Node:
        """`text` inside one of the values stored in `column` (JSON), not in its field names or punctuation:
        a cheap LIKE over the stored JSON text first, then the values themselves (SQLite's `json_tree`,
        PostgreSQL's `jsonb_path_query`) for the rows it lets through, so `answer` does not find every example
        whose output field is named answer."""
        like = pw.SQL("LIKE" if self.is_sqlite else "ILIKE")
        escape = pw.SQL("ESCAPE '\\'")
        prefilter = pw.NodeList((column, like, text_pattern(text), escape))
        value = like_pattern(text)
        if self.is_sqlite:
            inside = pw.NodeList((pw.SQL("EXISTS (SELECT 1 FROM json_tree("), column,
                                  pw.SQL(") AS j WHERE j.type IN ('text', 'integer', 'real') AND j.value LIKE ? "
                                         "ESCAPE '\\')", [value])), glue="")
        else:
            inside = pw.NodeList((pw.SQL("EXISTS (SELECT 1 FROM jsonb_path_query(CAST("), column,
                                  pw.SQL(" AS jsonb), 'strict $.**') AS j(v) WHERE jsonb_typeof(j.v) IN ('string', "
                                         "'number') AND (j.v #>> '{}') ILIKE %s ESCAPE '\\')", [value])), glue="")
        return prefilter & inside


def _read_columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    if columns is None:
        return schema.EXAMPLE_COLUMNS
    unknown = sorted(set(columns) - set(schema.EXAMPLE_COLUMNS))
    if unknown:
        raise StoreError(f"cannot read example column(s) {', '.join(unknown)}; known: "
                         f"{', '.join(schema.EXAMPLE_COLUMNS)}")
    wanted = {"id", "task", *columns}
    return tuple(c for c in schema.EXAMPLE_COLUMNS if c in wanted)


def like_pattern(text: str) -> str:
    """A LIKE pattern finding `text` as it is inside a value (LIKE's wildcards and the escape escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_pattern(text: str) -> str:
    """A LIKE pattern finding `text` inside stored JSON: the text is encoded as JSON string content first (so a
    quote or newline matches how it is stored), then LIKE's own wildcards are escaped (a `%` searches for `%`).
    SQLite's LIKE ignores case for ASCII letters only; PostgreSQL's ILIKE for every letter."""
    encoded = orjson.dumps(text).decode()[1:-1]
    escaped = encoded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_OPERATORS = {"=": lambda c, v: c == v,  # peewee: == None is IS NULL
              "!=": lambda c, v: (c != v) if v is None else ((c != v) | c.is_null()),  # unlabelled differ too
              "<": lambda c, v: c < v,
              "<=": lambda c, v: c <= v, ">": lambda c, v: c > v, ">=": lambda c, v: c >= v}


def _connect(url: str, *, create: bool, lock_timeout: float) -> pw.Database:
    scheme = url.split(":", 1)[0]
    if scheme == "sqlite":
        return _connect_sqlite(url, create=create, lock_timeout=lock_timeout)
    try:
        psycopg2 = hand_over_psycopg2()  # peewee may have been imported without it (a SQLite store opened first)
    except ImportError:
        raise StoreError(f"store {redact_url(url)}: PostgreSQL support needs psycopg2; "
                         "install it with: pip install 'dspy-trainkit[postgres]'") from None
    from playhouse import db_url  # here: it imports playhouse's PostgreSQL and pool modules, which SQLite never needs

    try:
        params = db_url.parse(url.replace("postgres://", "postgresql://", 1))
        # a server that takes the TCP connection and never answers would otherwise hang every command (a health
        # check included); `?connect_timeout=N` in the URL overrides it
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        database = ReconnectingPostgresqlDatabase(**params)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"store URL {redact_url(url)} is not a PostgreSQL URL ({exc}); use "
                         "postgresql://user[:password]@host[:port]/dbname") from None
    if not database.database:
        raise StoreError(f"store URL {redact_url(url)} names no database; use postgresql://user@host:5432/dbname")
    try:
        database.connect()
    except (pw.OperationalError, pw.ProgrammingError, psycopg2.Error) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot connect to PostgreSQL store {redact_url(url)}: {reason}. "
                         "Check the URL and that the server is running.") from None
    return database


def _connect_sqlite(url: str, *, create: bool, lock_timeout: float) -> pw.Database:
    """`sqlite:///relative.db` or `sqlite:////absolute.db` (`sqlite:///:memory:` for a throwaway store);
    nothing else: a host, a user or options in a SQLite URL are mistakes worth a clear message."""
    hint = "use sqlite:///relative/path.db or sqlite:////absolute/path.db"
    if not url.startswith("sqlite:///"):
        raise StoreError(f"store URL {url!r}: a SQLite URL has three slashes before the path; {hint}")
    path, _, query = url[len("sqlite:///"):].partition("?")
    if query:
        raise StoreError(f"store URL {url!r}: SQLite URLs take no options; {hint}")
    if not path:
        raise StoreError(f"store URL {url!r} names no file; {hint}")
    if path != ":memory:":
        file = Path(path)
        if not create and not file.exists():
            raise StoreError(f"no store at {file} (from {url}); run `trainkit init` to create one, "
                             "or point --db / store.url at an existing store")
        if not file.parent.is_dir():
            raise StoreError(f"store {url}: folder {file.parent} does not exist; create it first")
    pragmas = {**SQLITE_PRAGMAS, "busy_timeout": round(lock_timeout * 1000)}
    if path == ":memory:":
        # peewee opens a connection per thread, and a plain :memory: database is private to its connection:
        # the collector's writer thread would see an empty store. A named shared-cache memory database is one
        # database for every connection of this process, and lives while the opening connection is open.
        database = SqliteStoreDatabase(f"file:trainkit-{uuid.uuid4().hex}?mode=memory&cache=shared", uri=True,
                                     pragmas=pragmas, timeout=lock_timeout)
    else:
        database = SqliteStoreDatabase(path, pragmas=pragmas, timeout=lock_timeout)
    try:
        database.connect()
    except pw.OperationalError as exc:
        raise StoreError(f"cannot open SQLite store {path}: {exc}") from None
    return database
