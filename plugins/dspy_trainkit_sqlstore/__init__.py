"""Built-in storage plugin: SQLite (the embedded default) and PostgreSQL stores through peewee.

URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `postgresql://user@host:port/dbname`
(query parameters are passed to the driver, e.g. `?options=-c%20search_path%3Dteam_a`). The backend module is
imported only when a store is opened, so loading this plugin costs nothing at start-up; opening a SQLite store
imports peewee without the PostgreSQL driver (`driver.py`).
"""

from __future__ import annotations

from typing import Any

from dspy_trainkit import hookimpl


def _open(url: str, settings: Any, *, create: bool = True, migrate: bool = True) -> Any:
    if url.startswith("sqlite:"):
        from .driver import import_peewee_without_psycopg2

        import_peewee_without_psycopg2()  # before the backend's modules import peewee
    from .backend import PeeweeStore

    return PeeweeStore.open(url, settings, create=create, migrate=migrate)


@hookimpl
def storage_backend(register):
    for scheme in ("sqlite", "postgresql", "postgres"):
        register(scheme, _open)
