"""Keep process signals off trainkit's own background threads.

Python runs signal handlers in the main thread only, but the kernel delivers a process-directed signal (a
`kill PID`, systemd's SIGTERM) to any thread that does not block it; when that is a background thread, the C
handler only sets a flag, and a main thread blocked in C (a pipeline's `time.sleep`, a socket read) never wakes to
run the Python handler: the collector's SIGTERM handling (collection.py) then waited as long as the sleep. With
the signals blocked in the threads trainkit starts, the kernel must pick a thread that takes them, the main one.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: The signals whose Python handlers trainkit (or the program using it) relies on.
PROCESS_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def block_in_this_thread() -> None:
    """Block SIGTERM and SIGINT in the calling thread: call it first in any background thread a plugin starts
    (as a `ThreadPoolExecutor(initializer=...)`), so those signals reach the main thread, where trainkit's
    handlers keep what was collected or imported; a no-op where threads have no signal masks."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, PROCESS_SIGNALS)


@contextlib.contextmanager
def interrupts_ignored(active: bool = True) -> Iterator[None]:
    """Ctrl-C ignored in this process for the block (when `active`, and only on the main thread, the one place a
    handler can be set), then the handler before it restored. For the few milliseconds in which a second Ctrl-C
    would do harm: while an interrupted import ends its workers."""
    held = active and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if held else None
    try:
        yield
    finally:
        if held:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def interrupts_deferred(active: bool = True) -> Iterator[None]:
    """Ctrl-C held back for the block and delivered when it ends (when `active`, on the main thread), for starting
    a worker process: blocked in the starting thread, SIGINT stays blocked in the child across fork and exec, so
    a worker still starting up never sees Ctrl-C (it printed Python's "Fatal Python error: init_import_site"),
    while this process still gets it, once the worker is started. Ignoring it instead (SIG_IGN, which the child
    inherits too) lost a Ctrl-C pressed in those milliseconds: the import ran on to the end. The standard
    library starts its resource tracker the same way (bpo-33613), and unblocks SIGINT after doing so: start the
    tracker before the block (`multiprocessing.resource_tracker.ensure_running()`)."""
    held = active and threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    if not held:
        yield
        return
    arrived: list[int] = []
    # a thread not blocking SIGINT may still take it: the Python handler then runs in this thread mid-block
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: arrived.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending SIGINT reaches one of the two handlers:
        signal.signal(signal.SIGINT, previous)  # the one that records, or (a moment later) the one restored
        if arrived:
            signal.raise_signal(signal.SIGINT)  # delivered to the restored handler
