"""One thread owns the kit: every store read and write of the dashboard runs there, one at a time.

Why: a store object is used from one thread (the Store interface says so; peewee keeps its connection per
thread), while Starlette answers requests concurrently. Handing each call to a single worker thread serialises
them without a lock held across `await`s, keeps one connection (SQLite in WAL mode and PostgreSQL both let the
CLI or a collector write meanwhile), and opens and closes the kit in the thread that uses it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class KitWorker:
    """Runs `fn(kit, ...)` in the one thread that owns the kit, which `open_kit()` opens on first use."""

    def __init__(self, open_kit: Callable[[], Any]):
        self._open_kit = open_kit
        self._kit: Any = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="trainkit-web")

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        if self._kit is None:
            self._kit = self._open_kit()
        return fn(self._kit, *args, **kwargs)

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        future = self._executor.submit(self._call, fn, args, kwargs)
        return await asyncio.wrap_future(future)

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same from plain code (start-up checks, tests)."""
        return self._executor.submit(self._call, fn, args, kwargs).result()

    def close(self) -> None:
        """Close the kit in its own thread, then stop the thread. Idempotent."""
        def close_kit() -> None:
            if self._kit is not None:
                self._kit.close()
                self._kit = None

        try:
            self._executor.submit(close_kit).result()
        except RuntimeError:  # shut down already
            return
        self._executor.shutdown(wait=True)
