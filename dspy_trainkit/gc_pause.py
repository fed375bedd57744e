"""Python's cyclic garbage collector paused over bulk work that makes many short-lived objects and no cycles.

A trainset of a million examples, or an intake batch, makes millions of dicts, lists and tuples, none in a
cycle; every 700 new containers the collector ran, and every few of its runs it walked everything the process
holds (the plugins, peewee, the settings) again. Building the dspy.Examples of a trainset spent two thirds of
its time there; an import of 100,000 records spent about 1 s of its 9 s of CPU in 2,500 collections. Paused,
the work runs without them; when the pause ends the collector is switched back on (if it was on) and collects
whatever cycles were made meanwhile at its next run, so memory stays bounded by the work of one pause.
"""

from __future__ import annotations

import contextlib
import gc
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
