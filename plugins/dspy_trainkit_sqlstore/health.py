"""The store's own checks for `trainkit doctor`: SQLite's `PRAGMA quick_check`, PostgreSQL's privileges.

Why here: only the backend knows its database. The doctor asks `store.health_checks()` and shows each result
with what to do when it is not ok.
"""

from __future__ import annotations

from typing import Any

import peewee as pw

#: The tables every trainkit command writes to; a role lacking a privilege on one fails on first use.
WRITTEN_TABLES = ("examples", "events", "snapshots", "snapshot_members", "optimization_runs", "alerts")
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


def sqlite_checks(database: pw.Database) -> list[dict[str, Any]]:
    """`PRAGMA quick_check` (the O(N) subset of integrity_check: pages, records, no index cross-check)."""
    try:
        rows = [row[0] for row in database.execute_sql("PRAGMA quick_check").fetchall()]
    except pw.DatabaseError as exc:
        rows = [str(exc)]
    if rows == ["ok"]:
        return [{"name": "sqlite quick_check", "status": "ok", "message": "PRAGMA quick_check: ok", "fix": None}]
    shown = "; ".join(rows[:3]) + (f" (and {len(rows) - 3} more)" if len(rows) > 3 else "")
    return [{"name": "sqlite quick_check", "status": "error", "message": f"PRAGMA quick_check: {shown}",
             "fix": "stop the writers, restore the latest backup into a new store (`trainkit restore FILE --db "
                    "sqlite:///new.db`) and point store.url at it; `sqlite3 FILE .recover` may save newer rows"}]


def postgres_checks(database: pw.Database, pending: list[str]) -> list[dict[str, Any]]:
    """The server's version and, per trainkit table, the privileges the connected role lacks (and CREATE on
    the schema when migrations are pending, since they create tables)."""
    cursor = database.execute_sql("SELECT current_user, current_schema(), current_setting('server_version')")
    user, schema, version = cursor.fetchone()
    checks: list[dict[str, Any]] = [{"name": "postgresql connection", "status": "ok",
                                     "message": f"PostgreSQL {version} as {user}, schema {schema}", "fix": None}]
    missing = []
    for table in WRITTEN_TABLES:
        exists = database.execute_sql("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.{table}",)).fetchone()[0]
        if not exists:
            continue  # created by a pending migration
        for privilege in PRIVILEGES:
            granted = database.execute_sql("SELECT has_table_privilege(%s, %s)",
                                           (f"{schema}.{table}", privilege)).fetchone()[0]
            if not granted:
                missing.append(f"{privilege} on {table}")
    if pending and not database.execute_sql("SELECT has_schema_privilege(%s, 'CREATE')", (schema,)).fetchone()[0]:
        missing.append(f"CREATE on schema {schema} (pending migrations create tables)")
    if missing:
        checks.append({"name": "postgresql privileges", "status": "error",
                       "message": f"role {user} lacks " + ", ".join(missing),
                       "fix": f"as the tables' owner: GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
                              f"{schema} TO {user}; (and GRANT CREATE ON SCHEMA {schema} TO {user}; for migrations)"})
    else:
        checks.append({"name": "postgresql privileges", "status": "ok",
                       "message": f"role {user} can read and write every trainkit table", "fix": None})
    return checks
