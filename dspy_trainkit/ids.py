"""Identifiers for examples and events: time-ordered UUIDv7 strings.

Time-ordered keys append to the end of the store's primary-key index instead of splitting random pages, which
keeps bulk inserts fast at millions of rows, and listing by id is listing by creation time. The layout follows
RFC 9562 section 5.7 (48-bit millisecond timestamp, version, variant, 74 random bits), with the monotonic
random method of section 6.2: within one millisecond a process's ids still increase.
"""

from __future__ import annotations

import os
import threading
import time

_RANDOM_BITS = 74
#: Random bytes drawn from the OS at once, for this many ids: one `os.urandom` call (a system call) per id was
#: a tenth of the cost of building an Example on import.
_POOL_IDS = 512
_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, 74 random bits) of the previous id
_pool: list[int] = []  # random 80-bit values not used yet, taken from the end


def _forget_pool() -> None:
    """A forked child draws its own random bits: with the parent's pool both would make the same ids."""
    _pool.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def new_id() -> str:
    """Return a new UUIDv7 as 32 lowercase hex characters, greater than the previous one of this process."""
    global _last
    with _lock:
        millis = time.time_ns() // 1_000_000
        if not _pool:
            data = os.urandom(10 * _POOL_IDS)
            _pool.extend(int.from_bytes(data[i:i + 10], "big") for i in range(0, len(data), 10))
        rand = _pool.pop() >> (80 - _RANDOM_BITS)
        last_millis, last_rand = _last
        if millis <= last_millis:
            millis, rand = last_millis, last_rand + 1 + (rand & 0xFFFF)
            if rand >> _RANDOM_BITS:
                millis, rand = millis + 1, rand & ((1 << _RANDOM_BITS) - 1)
        _last = (millis, rand)
    value = (millis << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0x2 << 62) | (rand & ((1 << 62) - 1))
    return f"{value:032x}"
