"""Who is doing a piece of long work, and whether that process still lives.

Bootstrap claims plan slots and an optimization run is recorded as "running" before its first LM call; both
name their worker (`host:pid:random`) so that a later process on the same host can tell work abandoned by a
killed process (take it over at once) from work still in progress (leave it alone).
"""

from __future__ import annotations

import os
import socket
import uuid


def new_owner() -> str:
    """A worker's name: `host:pid:random`, so a re-run on the same host can tell a dead worker's claims."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True when `owner` is a process of this host that no longer runs (its claims can be taken at once);
    False when it lives, or runs elsewhere (then only its lease expiring frees its slots)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed child not yet reaped by its parent still answers kill(pid, 0); /proc says it is a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
