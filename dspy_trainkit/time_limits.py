"""A wall-clock limit on one plugin hook call, so a hung plugin ends the command with an error naming it
instead of hanging it forever.

The limit is an interval timer (`SIGALRM`) whose handler raises `TimeLimitExceeded` inside the running plugin
code: that interrupts pure-Python loops and blocking sleeps and socket reads alike, at the cost of two
`setitimer` calls per hook call (about 2 us; the data hooks are called once per batch). `TimeLimitExceeded`
derives from BaseException, so a plugin's `except Exception` does not swallow it.

Signals reach only the main thread, so the limit applies there (the `trainkit` commands, scripts, tests); a
hook called from another thread (a web request, a worker pool) runs without one. Nested limits (a hook that
opens a kit whose hooks run with their own limit) each keep their own deadline: the timer is always armed for
the earliest, and the exception says which limit ran out, so the call that owns it reports it.

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

    def __init__(self, entry: tuple[float, float]):
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


def start(seconds: float | None) -> tuple[float, float] | None:
    """Begin a limit of `seconds` (None or 0: none, and none where `_ready` says no); pass the result to
    `stop` in a `finally`. Two functions rather than a context manager: this runs on every hook call."""
    if not seconds or not _ready():
        return None
    now = time.monotonic()
    entry = (now + seconds, seconds)
    _deadlines.append(entry)
    _arm(now)
    return entry


def stop(entry: tuple[float, float] | None) -> None:
    """End the limit `start` began (the timer is re-armed for an outer one, or disarmed)."""
    if entry is not None:
        if entry in _deadlines:  # not when it fired
            _deadlines.remove(entry)
        _arm(time.monotonic())
