"""The audit trail's storage: event rows plus the `event_examples` link table, and migration 0007's changes.

Why a link table: an event used to hold its example ids as one JSON text, so `trainkit log --id X` scanned (and
parsed) every event ever written (1.1 s, 664 MiB on a million-example store), and building a trainset of a
million examples wrote one 35 MB row. Now each id is a row `(event_id, position, example_id)`: the primary key
gives an event its ids back in order, and an index on `example_id` finds an example's events directly.
Events written before the migration are moved into the table by it; an event row that still holds ids in its
JSON column (a store written by an older trainkit after a downgrade) is read from that column as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import peewee as pw

from dspy_trainkit.pluginkit import Event

from . import schema

LINK_TABLE = "event_examples"
LINK_COLUMNS = ("event_id", "position", "example_id")
#: Events read per round trip when reassembling their ids.
EVENT_PAGE = 500
#: Links written per statement (and held at once) when writing an event's ids.
LINK_PAGE = 2000


#: The events table's columns as written since migration 0007: `example_count` is how many ids the event has
#: in the link table, so listing events never counts (or reads) a million links.
WRITE_COLUMNS = (*schema.EVENT_COLUMNS, "example_count")


def event_row(event: Event) -> tuple[Any, ...]:
    """An event's row in `WRITE_COLUMNS` order; its ids go to the link table (`write_events`)."""
    return (event.id, event.time, event.kind, event.actor, event.reason, "[]", orjson.dumps(event.details).decode(),
            len(event.example_ids))


def write_events(database: pw.Database, events: Sequence[Event], *, ignore_conflicts: bool = False) -> None:
    """Insert events and their links inside the caller's transaction (restores skip ids already present)."""
    inserted = schema.insert_rows(database, "events", WRITE_COLUMNS, [event_row(e) for e in events],
                                  ignore_conflicts=ignore_conflicts)
    if ignore_conflicts and inserted < len(events):  # only link the events that were new
        ids = [e.id for e in events]
        have = _ids_with_links(database, ids)
        events = [e for e in events if e.id not in have]
    sqlite = isinstance(database, pw.SqliteDatabase)
    for event in events:  # a page of links at a time: a trainset's `used` event names a million examples
        for start in range(0, len(event.example_ids), LINK_PAGE):
            page = event.example_ids[start:start + LINK_PAGE]
            if sqlite:
                _link_json(database, event.id, start, page, ignore_conflicts)
                continue
            links = [(event.id, n, example_id) for n, example_id in enumerate(page, start)]
            schema.insert_rows(database, LINK_TABLE, LINK_COLUMNS, links, ignore_conflicts=ignore_conflicts,
                               chunk=LINK_PAGE)


def _link_json(database: pw.Database, event_id: str, start: int, ids: Sequence[str], ignore_conflicts: bool) -> None:
    """SQLite: one page of links in one statement, the ids as a JSON array read by `json_each`, which numbers
    them: no Python tuple and no parameter binding per link (a trainset's `used` event writes 800,000)."""
    tail = " WHERE true ON CONFLICT DO NOTHING" if ignore_conflicts else ""  # WHERE: SQLite's upsert grammar
    database.cursor().execute(f"INSERT INTO {LINK_TABLE} ({', '.join(LINK_COLUMNS)}) "
                              f"SELECT ?, key + ?, value FROM json_each(?){tail}",
                              (event_id, start, orjson.dumps(list(ids)).decode()))


def _ids_with_links(database: pw.Database, event_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start:start + 500]
        marks = ", ".join([database.param] * len(chunk))
        cursor = database.execute_sql(f"SELECT DISTINCT event_id FROM {LINK_TABLE} WHERE event_id IN ({marks})",
                                      chunk)
        found.update(r[0] for r in cursor.fetchall())
    return found


def iter_event_counts(database: pw.Database, stream: Any, example_id: str | None, since: float | None
                      ) -> Iterator[tuple[Event, int]]:
    """`(event without its ids, how many it names)`: the count kept in the event's row."""
    sql, params = _events_sql(database, example_id, since, extra="e.example_count")
    for row in stream(sql, params):
        values = dict(zip(schema.EVENT_COLUMNS, row[:-1], strict=True))
        stored = orjson.loads(values["example_ids"])  # pre-link rows still hold theirs
        values["example_ids"] = stored
        values["details"] = orjson.loads(values["details"])
        yield Event(**values), row[-1] if row[-1] is not None else len(stored)


def _events_sql(database: pw.Database, example_id: str | None, since: float | None, extra: str = ""
                ) -> tuple[str, list[Any]]:
    p = database.param
    columns = ", ".join(f"e.{c}" for c in schema.EVENT_COLUMNS) + (f", {extra}" if extra else "")
    where, params = [], []
    if example_id is not None:
        where.append(f"e.id IN (SELECT event_id FROM {LINK_TABLE} WHERE example_id = {p})")
        params.append(example_id)
    if since is not None:
        where.append(f"e.time >= {p}")
        params.append(since)
    sql = f"SELECT {columns} FROM events e" + (f" WHERE {' AND '.join(where)}" if where else "")
    return sql + " ORDER BY e.time, e.id", params


def iter_events(database: pw.Database, stream: Any, example_id: str | None, since: float | None
                ) -> Iterator[Event]:
    """Events in time order, optionally those naming `example_id` (through the link index) or after `since`.
    `stream(sql, params)` is the store's row streamer; ids are fetched a page of events at a time."""
    sql, params = _events_sql(database, example_id, since)
    page: list[tuple[Any, ...]] = []
    for row in stream(sql, params):
        page.append(row)
        if len(page) == EVENT_PAGE:
            yield from _with_ids(database, page)
            page = []
    if page:
        yield from _with_ids(database, page)


def _with_ids(database: pw.Database, rows: list[tuple[Any, ...]]) -> Iterator[Event]:
    ids: dict[str, list[str]] = {row[0]: [] for row in rows}
    marks = ", ".join([database.param] * len(ids))
    cursor = database.execute_sql(f"SELECT event_id, example_id FROM {LINK_TABLE} WHERE event_id IN ({marks}) "
                                  "ORDER BY event_id, position", list(ids))
    for event_id, example_id in cursor.fetchall():
        ids[event_id].append(example_id)
    for row in rows:
        values = dict(zip(schema.EVENT_COLUMNS, row, strict=True))
        linked = ids[values["id"]]
        values["example_ids"] = linked if linked else orjson.loads(values["example_ids"])  # pre-link rows
        values["details"] = orjson.loads(values["details"])
        yield Event(**values)


def migrate_read_paths(models: Any) -> None:
    """Migration 0007_read_paths: the link table (existing events' ids moved into it, their count kept in the
    new `events.example_count`), an index that serves
    `ORDER BY id` under task/status filters (trainsets, exports), and `source` added to the label index so
    `stats` counts every grouping in one pass over an index instead of the table."""
    database = models.Example._meta.database
    sqlite = isinstance(database, pw.SqliteDatabase)
    if sqlite:
        database.execute_sql(f"CREATE TABLE IF NOT EXISTS {LINK_TABLE} (event_id VARCHAR(32) NOT NULL, "
                             "position INTEGER NOT NULL, example_id VARCHAR(32) NOT NULL, "
                             "PRIMARY KEY (event_id, position)) WITHOUT ROWID")
        database.execute_sql(f"INSERT INTO {LINK_TABLE} (event_id, position, example_id) "
                             "SELECT e.id, CAST(j.key AS INTEGER), j.value FROM events e, json_each(e.example_ids) j "
                             "WHERE e.example_ids != '[]'")
    else:
        database.execute_sql(f"CREATE TABLE IF NOT EXISTS {LINK_TABLE} (event_id VARCHAR(32) NOT NULL, "
                             "position INTEGER NOT NULL, example_id VARCHAR(32) NOT NULL, "
                             "PRIMARY KEY (event_id, position))")
        database.execute_sql(f"INSERT INTO {LINK_TABLE} (event_id, position, example_id) "
                             "SELECT e.id, t.ord - 1, t.value FROM events e, "
                             "jsonb_array_elements_text(e.example_ids::jsonb) WITH ORDINALITY AS t(value, ord) "
                             "WHERE e.example_ids != '[]'")
    database.execute_sql("ALTER TABLE events ADD COLUMN example_count INTEGER")
    length = "json_array_length(example_ids)" if sqlite else "jsonb_array_length(example_ids::jsonb)"
    database.execute_sql(f"UPDATE events SET example_count = {length}")
    database.execute_sql("UPDATE events SET example_ids = '[]' WHERE example_ids != '[]'")
    database.execute_sql(f"CREATE INDEX IF NOT EXISTS {LINK_TABLE}_example_id ON {LINK_TABLE} (example_id)")
    database.execute_sql("CREATE INDEX IF NOT EXISTS examples_task_status_id ON examples (task, status, id)")
    database.execute_sql("CREATE INDEX IF NOT EXISTS examples_task_status_labels_source "
                         "ON examples (task, status, domain, topic, difficulty, source)")
    database.execute_sql("DROP INDEX IF EXISTS examples_task_status_domain_topic_difficulty")
