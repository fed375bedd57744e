"""A wall-clock limit on one plugin hook call, so a hung plugin ends the command with an error naming it
instead of hanging it forever.

The limit is an interval timer (`SIGALRM`) whose handler raises `TimeLimitExceeded` inside the running plugin
code: that interrupts pure-Python loops and blocking sleeps and socket reads alike, at the cost of two
`setitimer` calls per hook call (about 2 us; the data hooks are called once per batch). `TimeLimitExceeded`
derives from BaseException, so a plugin's `except Exception` does not swallow it.

Signals reach only the main thread. In other threads (a web request of `trainkit serve`, DSPy's parallel
workers calling `collect`) a watcher thread raises it in the late thread instead (CPython's
`PyThreadState_SetAsyncExc`, about 2 us per call to register the deadline): that interrupts Python code, but not
a call blocked in C (a sleep, a socket read without timeout) until it returns. Nested limits (a hook that
opens a kit whose hooks run with their own limit) each keep their own deadline, and the exception says which
limit ran out, so the call that owns it reports it.

The SIGALRM handler is installed on first use when the program has none, and stays (installing one costs
~8 us, too much to repeat per call); a program that uses SIGALRM itself gets no limits rather than a clash.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any


class TimeLimitExceeded(BaseException):  # noqa: N818 - it is not an error of the code it interrupts
    """Raised inside a call that ran past its limit (by the SIGALRM handler)."""

    _entry: tuple[float, float] = (0.0, 0.0)  # set on the subclass the watcher raises (it cannot pass arguments)

    def __init__(self, entry: tuple[float, float] | None = None):
        entry = entry if entry is not None else type(self)._entry
        super().__init__(f"no result within {entry[1]:g} s")
        self.entry = entry  # the limit (as `start` returned it) that ran out
        self.seconds = entry[1]


_deadlines: list[tuple[float, float]] = []  # (deadline on the monotonic clock, limit), outermost first


def _on_alarm(signum: int, frame: Any) -> None:
    now = time.monotonic()
    for entry in reversed(_deadlines):
        if entry[0] <= now:
            _deadlines.remove(entry)  # fired: it must not fire again, even if its `stop` never runs
            _arm(now)
            raise TimeLimitExceeded(entry)
    _arm(now)  # woken early (timer granularity), or a deadline that is gone: wait for the rest


def _arm(now: float) -> None:
    if _deadlines:
        signal.setitimer(signal.ITIMER_REAL, max(min(d for d, _ in _deadlines) - now, 1e-4))
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)


_installed = False  # our SIGALRM handler is in place


def _ready() -> bool:
    """Whether a limit can be set here: the main thread, a system with `setitimer`, and SIGALRM either ours or
    unused (then ours from now on: installing a handler costs ~8 us, too much to repeat per call)."""
    global _installed
    if threading.get_ident() != threading.main_thread().ident or not hasattr(signal, "setitimer"):
        return False
    if _installed:
        return True
    handler = signal.getsignal(signal.SIGALRM)
    if handler is not _on_alarm and (handler not in (signal.SIG_DFL, None)
                                     or signal.getitimer(signal.ITIMER_REAL)[0]):
        return False  # the program uses SIGALRM itself: leave it alone
    signal.signal(signal.SIGALRM, _on_alarm)
    _installed = True
    return True


def start(seconds: float | None) -> tuple[float, ...] | None:
    """Begin a limit of `seconds` (None or 0: none); pass the result to `stop` in a `finally`. Two functions
    rather than a context manager: this runs on every hook call."""
    if not seconds:
        return None
    if threading.get_ident() != threading.main_thread().ident:
        return _watcher.start(seconds)
    if not _ready():
        return None
    now = time.monotonic()
    entry = (now + seconds, seconds)
    _deadlines.append(entry)
    _arm(now)
    return entry


def stop(entry: tuple[float, ...] | None) -> None:
    """End the limit `start` began (the timer is re-armed for an outer one, or disarmed)."""
    if entry is None:
        return
    if len(entry) == 3:
        _watcher.stop(entry)
        return
    if entry in _deadlines:  # not when it fired
        _deadlines.remove(entry)
    _arm(time.monotonic())


class _Watcher:
    """Limits of calls in threads other than the main one: a daemon thread sleeps until the earliest deadline
    and raises `TimeLimitExceeded` in the thread whose call is late. Entries are `(deadline, seconds, thread)`;
    the active ones are few (one per thread inside a hook), so the earliest is found by a scan, and a finished
    call costs one dict removal."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active: dict[tuple[float, ...], None] = {}
        self.pending: dict[int, tuple[float, ...]] = {}  # thread -> the entry raised there, not yet seen
        self.wake_at = float("inf")
        self.pid = 0  # the process the watcher thread runs in (none after a fork)

    def start(self, seconds: float) -> tuple[float, ...]:
        import os

        entry = (time.monotonic() + seconds, seconds, threading.get_ident())
        with self.cond:
            if self.pid != os.getpid():
                self.pid = os.getpid()
                threading.Thread(target=self._run, name="trainkit-time-limits", daemon=True).start()
            self.active[entry] = None
            if entry[0] < self.wake_at:
                self.cond.notify()
        return entry

    def stop(self, entry: tuple[float, ...]) -> None:
        with self.cond:
            thread = int(entry[2])
            if self.active.pop(entry, None) is None and self.pending.get(thread) is entry:
                # fired as the call returned and not raised yet: withdraw it (the call did finish)
                del self.pending[thread]
                _raise_in(thread, None)

    def _run(self) -> None:
        from .thread_signals import block_in_this_thread

        block_in_this_thread()  # a SIGTERM must reach the main thread, where its handler runs
        with self.cond:
            while True:
                now = time.monotonic()
                due = [e for e in self.active if e[0] <= now]
                for entry in due:
                    del self.active[entry]
                    self.pending[int(entry[2])] = entry
                    _raise_in(int(entry[2]), type("TimeLimitExceeded", (TimeLimitExceeded,), {"_entry": entry}))
                self.wake_at = min((e[0] for e in self.active), default=float("inf"))
                self.cond.wait(None if self.wake_at == float("inf") else self.wake_at - now)


def _raise_in(thread: int, exception: type[BaseException] | None) -> None:
    """Make `thread` raise `exception` at its next Python instruction (None: withdraw a pending one)."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exception)
                                               if exception is not None else None)


_watcher = _Watcher()
