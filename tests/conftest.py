"""Shared fixtures: a hermetic environment, and store URLs for SQLite and (for real) PostgreSQL.

Tests marked by the `store_url` fixture run once per backend. PostgreSQL tests use the server named by
TRAINKIT_TEST_POSTGRES_URL, each in a schema of its own; when the variable is set but the server is unreachable
they fail (CI sets it), and when it is not set they are skipped with the reason.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator

import pytest

import dspy_trainkit as tk

POSTGRES_ENV = "TRAINKIT_TEST_POSTGRES_URL"

# A suite started as a background job of a non-interactive shell (`pytest &` in a script) inherits SIGINT
# ignored, and so would every command it starts: the tests that press Ctrl-C on a command would see it run to
# the end and exit 0. A handler of our own becomes the default again in each child (exec resets it).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No TRAINKIT_* settings from the developer's shell, and no trainkit.toml found above the test folder."""
    for name in list(os.environ):
        if name.startswith("TRAINKIT_") and name != POSTGRES_ENV:
            monkeypatch.delenv(name)
    # a plugin hook table per test, beside (not in) the test's folder, which tests list
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path.parent / f"{tmp_path.name}-cache"))
    monkeypatch.chdir(tmp_path)


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set (CI sets it; see README)")
    return url


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL store URL whose search_path is a fresh schema, dropped afterwards."""
    import psycopg2

    base = postgres_url()
    schema = f"tk_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(base)  # an unreachable server fails the test here, as CI requires
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-c%20search_path%3D{schema}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


@pytest.fixture
def postgres_database_url() -> Iterator[str]:
    """A new PostgreSQL database (not just a schema) on the test server, dropped afterwards: for restore drills
    and deployment tests that start as after a lost host, on a database that has never seen trainkit."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg2

    parts = urlsplit(postgres_url())
    name = f"tk_db_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(urlunsplit(parts._replace(query="")))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(parts._replace(path=f"/{name}", query=""))
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_schema_url")


@pytest.fixture
def kit(store_url: str) -> Iterator[tk.Kit]:
    with tk.open(store_url) as opened:
        yield opened
