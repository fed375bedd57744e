"""Built-in storage plugin: SQLite (the embedded default) and PostgreSQL stores through peewee.

URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `postgresql://user@host:port/dbname`
(query parameters are passed to the driver, e.g. `?options=-c%20search_path%3Dteam_a`). The backend module is
imported only when a store is opened, so loading this plugin costs nothing at start-up.
"""

from __future__ import annotations

from typing import Any

from dspy_trainkit import hookimpl


def _open(url: str, settings: Any, *, create: bool = True, migrate: bool = True) -> Any:
    from .backend import PeeweeStore

    return PeeweeStore.open(url, settings, create=create, migrate=migrate)


@hookimpl
def storage_backend(register):
    for scheme in ("sqlite", "postgresql", "postgres"):
        register(scheme, _open)
