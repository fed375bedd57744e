"""The peewee database classes the store runs on: a PostgreSQL database that reconnects after the server
dropped its connection, and a SQLite database whose ROLLBACK does not hide why a transaction failed.

Without reconnecting, one `pg_terminate_backend` (a server restart, a failover, an idle-connection reaper)
left every later call failing with "connection already closed" for the life of the process. Reconnecting is
only done where nothing can be lost or done twice, as peewee's `ReconnectMixin` does: a statement outside a
transaction (a read; the store writes only inside transactions) and a transaction's BEGIN are retried once on a
new connection. A connection lost inside a transaction is reported (the server rolled the transaction back) and
the next call starts on a new connection; COMMIT is never sent on a new connection, which would "succeed" with
nothing to commit.
"""

from __future__ import annotations

from typing import Any

import peewee as pw
from playhouse.shortcuts import ReconnectMixin

#: What psycopg2 says when the server or the network dropped the connection (peewee wraps these errors).
CONNECTION_LOST = ("server closed the connection", "terminating connection", "connection already closed",
                   "could not receive data from server", "could not send data to server",
                   "ssl connection has been closed", "no connection to the server", "connection not open")


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` says the database connection is gone (the server or the network dropped it)."""
    text = str(exc).lower()
    return any(fragment in text for fragment in CONNECTION_LOST)


class ReconnectingPostgresqlDatabase(ReconnectMixin, pw.PostgresqlDatabase):
    """`pw.PostgresqlDatabase` that survives a dropped connection (see the module docstring)."""

    reconnect_errors = tuple((error, fragment) for error in (pw.OperationalError, pw.InterfaceError)
                             for fragment in CONNECTION_LOST)

    def _driver_closed(self) -> bool:
        """psycopg2 marks its connection closed once an operation found it dropped."""
        return not self.is_closed() and bool(getattr(self._state.conn, "closed", 0))

    def _renew(self) -> None:
        self.close()  # closing a psycopg2 connection that is already closed is a no-op
        self.connect()

    def cursor(self, named_cursor: Any = None) -> Any:
        if self._driver_closed() and not self.in_transaction():
            self._renew()
        return super().cursor(named_cursor)

    def rollback(self) -> None:
        if self._driver_closed():  # the server rolled back when the connection went; start afresh next time
            self._state.reset()
            return
        super().rollback()

    def commit(self) -> None:
        if self._driver_closed():
            raise pw.InterfaceError("connection already closed before COMMIT; the transaction was rolled back")
        super().commit()


#: SQLite page cache (KiB) of a connection that writes: keeps the unique content-hash index in memory on large
#: imports. A connection that only reads keeps SQLite's default (2 MiB): a cache this big made a one-off scan
#: (`stats` over a million rows) allocate a fresh page for every page it read, a third slower than raw sqlite3.
WRITER_CACHE_KIB = 128 * 1024


class SqliteStoreDatabase(pw.SqliteDatabase):
    """`pw.SqliteDatabase` that skips ROLLBACK when SQLite has already rolled the transaction back itself (it
    does on a full disk and some I/O errors): peewee's ROLLBACK then failed with "cannot rollback - no
    transaction is active", and that error replaced the one saying the disk was full. Its write transactions
    (`BEGIN IMMEDIATE`) give the connection the writer's page cache first (`WRITER_CACHE_KIB`)."""

    def begin(self, lock_type: str | None = None) -> None:
        if (lock_type or self._lock_type) == "IMMEDIATE":  # a few microseconds per write transaction
            self.cursor().execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
        super().begin(lock_type)

    def rollback(self) -> None:
        if not self.is_closed() and not self._state.conn.in_transaction:
            return
        super().rollback()
