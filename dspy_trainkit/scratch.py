"""Temporary folders and half-written files that a killed run does not leave behind for good.

A backup stages its archive in a folder beside the output (with a copy of the whole store: 86 MB for a
mid-sized one), a restore unpacks into a folder under the system's temp folder, an export or a saved program is
written under a temporary name and renamed into place. Cleanup on the way out (`finally`) covers errors and
Ctrl-C, but not SIGKILL, an OOM kill or a power cut. So every such name carries its owner, the host and
process id as its last dot-separated part (`.trainkit-backup.HOST_PID_RANDOM`, `.out.jsonl.HOST_PID_RANDOM.part`),
and the next run that makes one in the same folder first removes those whose process is gone.

Only the owner's own host is judged: a folder on a shared disk made by another machine is left alone, since its
process cannot be checked from here; so is one whose process id is alive (even if reused by another program: it
is removed by a later run). Names without an owner (made by older versions) are never touched.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .workers import owner_is_dead

PART = ".part"


def _host() -> str:
    """This host's name as it goes into file names: no dots or underscores, which separate the tag's parts."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def owner_tag() -> str:
    """`HOST_PID_RANDOM`: who made a temporary name, and a part that keeps two of its names apart."""
    return f"{_host()}_{os.getpid()}_{secrets.token_hex(4)}"


def is_stale(tag: str) -> bool:
    """Whether `HOST_PID_RANDOM` names a process of this host that is gone (`workers.owner_is_dead` judges the
    process, zombies included)."""
    parts = tag.rsplit("_", 2)
    if len(parts) != 3 or not parts[1].isdigit() or parts[0] != _host():
        return False
    return owner_is_dead(f"{socket.gethostname()}:{parts[1]}:")


def clean_stale(folder: Path, prefix: str, suffix: str = "") -> list[Path]:
    """Remove the entries `PREFIX ... .HOST_PID_RANDOM SUFFIX` in `folder` whose process is gone; returns them.
    Errors (a folder that vanished meanwhile, no permission) are skipped: cleaning is a courtesy."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or not name.endswith(suffix) or len(name) <= len(prefix) + len(suffix):
            continue
        core = name[:len(name) - len(suffix)] if suffix else name
        if "." not in core or not is_stale(core.rsplit(".", 1)[1]):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


@contextmanager
def temporary_folder(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """A new folder `PREFIX.HOST_PID_RANDOM` in `parent` (default: the system's temp folder), readable only by
    its owner, removed with its contents on the way out; stale ones of dead processes there go first."""
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    clean_stale(parent, f"{prefix}.")
    folder = parent / f"{prefix}.{owner_tag()}"
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def partial_path(target: Path, suffix: str = PART) -> Path:
    """A temporary name beside `target` to write it under before renaming it into place:
    `.NAME.HOST_PID_RANDOM.part` (`suffix` for writers that go by the file ending, such as `.part.json`).
    Stale partial files of dead processes in that folder go first, whatever their target: a killed run whose
    target had a name of its own (a run id) would otherwise leave its partial file for good."""
    clean_stale(target.parent, ".", suffix)
    return target.with_name(f".{target.name}.{owner_tag()}{suffix}")


@contextmanager
def replacing(target: Path, suffix: str = PART) -> Iterator[Path]:
    """Write `target` whole or not at all: yields a `partial_path` to write, renamed onto `target` when the
    body ends normally and removed when it raises (a killed process leaves it to the next run's cleaning)."""
    partial = partial_path(target, suffix)
    try:
        yield partial
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@contextmanager
def terminated_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143) in the main thread instead of ending the process at
    once, so `finally` blocks and `replacing`/`except BaseException` clean-ups run (a backup's partial file is
    removed, not left to the next run); the previous handler is restored after. Elsewhere than the main thread,
    or when the process ignores SIGTERM, it changes nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        yield
        return

    def exit_now(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


class Terminated(KeyboardInterrupt):
    """SIGTERM during an import, handled as Ctrl-C is (a KeyboardInterrupt passes through plugin calls,
    which turn a SystemExit into a plugin's error; the import command exits 130 saying what is kept)."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM's default ends the process without `finally`: within the block (an import, serial or with
    workers), make it `Terminated` so that workers are shut down, the batch being written is committed or rolled
    back as a whole, and the command says what is kept and writes its rejects file, as on Ctrl-C."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise Terminated(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
