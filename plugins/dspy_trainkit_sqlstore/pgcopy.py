"""PostgreSQL bulk writes with COPY: rows as CSV that PostgreSQL reads back exactly, sent with psycopg2's
`copy_expert`.

Why: a 1000-row batch took ~60 us a row through `execute_values` (one long INSERT statement the server parses
and plans, plus the client quoting each value with `mogrify`); COPY streams the same rows at about half that,
and the event link rows (one per inserted example) at a fraction. Measured in docs/performance.md.

Why CSV, written here: COPY's text format makes backslashes, tabs and newlines escapes (the classic way to
store something other than what was given); CSV has one rule, a quoted field holds every character as it is
except `"`, which is doubled. Every string is quoted, so an empty string ("") stays distinct from NULL (an
empty unquoted field) and a field can never be read as the `\\.` end-of-data line. Floats are written as
`repr`, which PostgreSQL parses back to the same double. The bytes are UTF-8 and the COPY says so, whatever
the connection's client_encoding.

Rows COPY cannot carry exactly are never sent through it: text with a NUL character (PostgreSQL stores none)
or a value of another type. Callers then run their INSERT, which fails or succeeds as it always did, so the
errors users see (the NUL StoreError) do not change.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

log = logging.getLogger("dspy_trainkit.sqlstore")

#: Below this many rows a plain INSERT is one round trip against COPY's three (savepoint, copy, release).
COPY_MIN_ROWS = 64
#: Bytes handed to the driver per read of the CSV buffer (psycopg2's default is 8 KiB).
READ_SIZE = 1 << 20


class _NotCopyable(Exception):
    """A value COPY would not store exactly as an INSERT does; the caller INSERTs instead."""


def _field(value: Any) -> str:
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        return '"' + value.replace('"', '""') + '"'
    if kind is float:
        return repr(value)  # shortest text that parses back to the same double; nan/inf as PostgreSQL reads them
    if kind is int:
        return str(value)
    raise _NotCopyable(kind.__name__)


def csv_bytes(rows: Sequence[Sequence[Any]]) -> bytes | None:
    """`rows` as UTF-8 CSV for `COPY ... (FORMAT csv)`, or None when a row holds a value COPY cannot carry
    exactly (a NUL character, a lone surrogate, a value that is not str, float, int or None: a bool is one, since
    INSERT sends it typed and COPY as text)."""
    try:
        text = "".join([",".join(map(_field, row)) + "\n" for row in rows])
    except _NotCopyable:
        return None
    if "\x00" in text:
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


@contextlib.contextmanager
def _driver_output_held() -> Iterator[None]:
    """Hold what is written to `sys.stderr` during a COPY. When the server ends the connection mid-COPY,
    psycopg2 prints fragments of its own error handling there (`psycopg2.errors.AdminShutdown: ...`, then
    `SystemError: <function decode ...> returned a result with an exception set`) before the error the store
    turns into one clear line; those go to the debug log. Anything else held (another thread's output in those
    milliseconds) is written out as it was."""
    held, previous = io.StringIO(), sys.stderr
    sys.stderr = held
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        sys.stderr = previous
        text = held.getvalue()
        if text and failed and ("psycopg2" in text or "SystemError" in text):
            log.debug("the driver's output while a COPY failed: %s", text)
        elif text:
            previous.write(text)


def _copy(cursor: Any, table: str, columns: Sequence[str], data: bytes) -> None:
    with _driver_output_held():
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')",
                           io.BytesIO(data), size=READ_SIZE)


def copy_rows(cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bool:
    """COPY `rows` into `table` inside the caller's transaction; False (nothing sent) when they are too few to
    gain from it or cannot be carried exactly, for the caller to INSERT. A constraint violation raises as an
    INSERT's would (the caller's transaction is then aborted)."""
    if len(rows) < COPY_MIN_ROWS:
        return False
    data = csv_bytes(rows)
    if data is None:
        return False
    _copy(cursor, table, columns, data)
    return True


def copy_new_rows(cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bool:
    """COPY `rows` into `table` if none of them violates a unique constraint: True when all were stored.
    False when nothing was stored: too few rows, rows COPY cannot carry, or a unique violation (a row
    already stored, e.g. by a concurrent writer; COPY has no ON CONFLICT), which is undone with a savepoint
    so the caller's transaction goes on and its `INSERT ... ON CONFLICT` decides row by row."""
    if len(rows) < COPY_MIN_ROWS:
        return False
    data = csv_bytes(rows)
    if data is None:
        return False
    import psycopg2.errors

    cursor.execute("SAVEPOINT trainkit_copy")
    try:
        _copy(cursor, table, columns, data)
    except psycopg2.errors.UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT trainkit_copy")
        cursor.execute("RELEASE SAVEPOINT trainkit_copy")
        return False
    cursor.execute("RELEASE SAVEPOINT trainkit_copy")
    return True
