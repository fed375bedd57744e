"""Database driver errors as one clear `StoreError`: a locked SQLite file, a full disk, a lost PostgreSQL
connection, text PostgreSQL cannot hold.

These are conditions of the environment, not bugs, so the user gets one line naming the store and what to do
(the CLI prints a StoreError as `Error: ...`; the collector retries it), never a driver traceback. Every
public store method runs inside `translated` (`translate_errors` wraps them), so no caller has to know which
driver is underneath. A transaction that failed this way was rolled back by the database, so the store stays
consistent; messages say so.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sqlite3
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import peewee as pw

from dspy_trainkit.pluginkit import StoreError, redact_url

from .database import connection_lost

T = TypeVar("T")

LOCKED = ("database is locked", "database table is locked", "database schema is locked")
DISK_FULL = ("database or disk is full", "no space left on device", "could not extend file", "disk full")


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (pw.OperationalError, pw.InterfaceError, sqlite3.OperationalError,
                                               sqlite3.InterfaceError)
    psycopg2 = sys.modules.get("psycopg2")  # not imported: no error of it can exist (a SQLite store never imports it)
    if psycopg2 is None:
        return errors
    return (*errors, psycopg2.OperationalError, psycopg2.InterfaceError)


def as_store_error(exc: BaseException, url: str, lock_timeout: float) -> StoreError | None:
    """The StoreError to show for a driver error `exc`, or None when `exc` is not one (a bug keeps its type).
    A known cause earlier in the chain wins (a failed ROLLBACK must not hide the full disk that caused it)."""
    if not isinstance(exc, _driver_errors()):
        return _known(exc, url, lock_timeout, generic=True)
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    for _ in range(4):
        if cause is None:
            break
        error = _known(cause, url, lock_timeout, generic=False)
        if error is not None:
            return error
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    return _known(exc, url, lock_timeout, generic=True)


def _known(exc: BaseException, url: str, lock_timeout: float, *, generic: bool) -> StoreError | None:
    text = str(exc).strip()
    lower = text.lower()
    reason = text.splitlines()[0] if text else type(exc).__name__
    where = f"store {redact_url(url)}"
    if isinstance(exc, ValueError):
        if "nul (0x00)" in lower:
            return StoreError(f"{where}: PostgreSQL cannot store NUL (0x00) characters in text; remove them from "
                              "the value (nothing of this change was written)")
        return None
    if not isinstance(exc, _driver_errors()) and getattr(exc, "pgcode", None) != "53100":
        return None
    if any(fragment in lower for fragment in LOCKED):
        return StoreError(f"{where} is locked: another process is writing to it and did not finish within "
                          f"{lock_timeout:g} s (SQLite lets one process write at a time). Try again when it has "
                          "finished, or let trainkit wait longer: `lock_timeout` (seconds) in [plugin.sqlstore]")
    if getattr(exc, "pgcode", None) == "53100" or any(fragment in lower for fragment in DISK_FULL):
        return StoreError(f"{where}: the disk is full ({reason}); the interrupted change was rolled back, so the "
                          "store is consistent. Free some space, then run it again")
    if connection_lost(exc):
        return StoreError(f"lost the connection to {where} ({reason}); the change in progress was rolled back. "
                          "trainkit reconnects on the next use: run it again when the server is back")
    if "readonly database" in lower or "read-only" in lower:
        return StoreError(f"{where} cannot be written ({reason}); check the permissions of the file and its folder")
    return StoreError(f"{where}: the database failed: {reason}") if generic else None


@contextlib.contextmanager
def translated(url: str, lock_timeout: float) -> Iterator[None]:
    """Raise a driver error from the block as its StoreError (the driver's error stays as `__cause__`)."""
    try:
        yield
    except Exception as exc:  # as_store_error picks the driver errors; anything else is re-raised as it is
        error = as_store_error(exc, url, lock_timeout)
        if error is None:
            raise
        raise error from exc


def _wrap(func: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            with translated(self.url, self.lock_timeout):
                yield from func(self, *args, **kwargs)

        return generator

    @functools.wraps(func)
    def plain(self: Any, *args: Any, **kwargs: Any) -> Any:
        with translated(self.url, self.lock_timeout):
            return func(self, *args, **kwargs)

    return plain


def translate_errors(cls: type[T], *, skip: tuple[str, ...] = ()) -> type[T]:
    """Wrap every public method `cls` defines or inherits from its own mixins (not from the abstract
    interface) in `translated`. Context-manager methods (`skip`) translate inside themselves."""
    for klass in reversed(cls.__mro__):
        if klass.__module__.split(".")[0] != cls.__module__.split(".")[0]:
            continue
        for name, value in list(vars(klass).items()):
            if name.startswith("_") or name in skip or not inspect.isfunction(value):
                continue
            setattr(cls, name, _wrap(value))
    return cls
