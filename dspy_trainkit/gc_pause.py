"""Python's cyclic garbage collector paused over bulk work that makes many short-lived objects and no cycles.

A trainset of a million examples, or an intake batch, makes millions of dicts, lists and tuples, none in a
cycle; every 700 new containers the collector ran, and every few of its runs it walked everything the process
holds (the plugins, peewee, the settings) again. Building the dspy.Examples of a trainset spent two thirds of
its time there; an import of 100,000 records spent about 1 s of its 9 s of CPU in 2,500 collections. Paused,
the work runs without them; when the pause ends the collector is switched back on (if it was on) and collects
whatever cycles were made meanwhile at its next run, so memory stays bounded by the work of one pause.

The switch is the process's, not the thread's: intake pauses it only on the main thread (an import, a bulk
add), never in a background thread such as the collection writer, which shares its process with a pipeline
whose own garbage must go on being collected (the writer is busy most of the time in a long run).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The collector off for the block, then back on if it was on (nested pauses leave it to the outer one)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def gc_paused_on_main_thread() -> contextlib.AbstractContextManager[None]:
    """`gc_paused()` on the main thread; nothing on another (see the module docstring)."""
    if threading.current_thread() is threading.main_thread():
        return gc_paused()
    return contextlib.nullcontext()
