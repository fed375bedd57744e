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
    handler can be set), then the handler before it restored. For the few milliseconds in which an interrupt
    would do harm: while a worker process is started (it inherits the ignored disposition across exec, so one
    still starting up never sees Ctrl-C), or while an interrupted import ends its workers."""
    held = active and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if held else None
    try:
        yield
    finally:
        if held:
            signal.signal(signal.SIGINT, previous)
