"""The cyclic garbage collector during a `trainkit` process's start-up: fewer passes while the command's modules
are imported and its store is opened, and none at all over what start-up built once it is done.

Start-up allocates tens of thousands of objects that live as long as the process (modules, classes, functions,
settings, the plugin manager, the open store) and none that are garbage. With the default threshold the collector
walked the young ones every 700 allocations (about 45 passes), and at exit Python's last full collection walked
all of them again: together about 15 ms of a 100 ms `trainkit stats` (docs/performance.md, "Start-up"). So the
console script (`main`) raises the first generation's threshold while it starts (`begin`), and when the command's
store is open (`end`, from `CliState.kit`) moves everything alive into the permanent generation with `gc.freeze()`
and puts the threshold back: the command's own work is collected as before, and the objects of start-up stay
freed by reference counting as always, only never walked again (a cycle among them, if one ever became garbage,
would stay until the process exits; start-up makes none). A command that never opens the store keeps the raised
threshold, which still collects, every STARTUP_THRESHOLD allocations instead of 700.

Only `main` begins it: a program or test calling the click group in-process (CliRunner) keeps its collector as
it is.
"""

from __future__ import annotations

import gc

#: First-generation threshold while starting (Python's default is 700).
STARTUP_THRESHOLD = 10_000
#: The thresholds before `begin`, kept until `end`.
_saved: tuple[int, ...] | None = None


def begin() -> None:
    """Raise the first generation's threshold for the start-up of this process's command."""
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
        gc.set_threshold(max(STARTUP_THRESHOLD, _saved[0]), *_saved[1:])


def end() -> None:
    """Start-up is over (the store is open): freeze what it built and restore the threshold (only after
    `begin`; a second call does nothing)."""
    global _saved
    if _saved is not None:
        gc.freeze()
        gc.set_threshold(*_saved)
        _saved = None
