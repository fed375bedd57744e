"""Timestamped backups in a folder, and rotation that keeps the newest N.

Why names carry the time: a backup timer writes one file per run into one folder, and an operator restoring
after a lost host wants the newest by name, not by a modification time that a copy may have changed. Names are
`trainkit-YYYYMMDDTHHMMSSZ.tgz` (UTC), with `-2`, `-3`... when two backups start in the same second (always
above the highest number there, so names sort in the order the backups were made).

Rotation deletes only what it can prove it made for this store: a name of that exact form whose archive starts
with a trainkit manifest naming the same store (its `source`, the store URL with any password masked). Files of
another store backed up into the same folder, files an operator dropped there, half-written temporary files and
the backup just written are never deleted.
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
import time
import zlib
from pathlib import Path
from typing import Any

import orjson

from ..scratch import is_stale, owner_tag
from .backup import FORMAT, MANIFEST

log = logging.getLogger(__name__)

PREFIX = "trainkit-"
SUFFIX = ".tgz"
NAME = re.compile(r"^trainkit-(\d{8}T\d{6}Z)(?:-(\d+))?\.tgz$")
#: What a reserved name holds until the backup is renamed over it: this, then the owner tag (`scratch.owner_tag`).
RESERVED = "trainkit backup in progress: "


def backup_name(folder: Path, now: float | None = None) -> Path:
    """A free `trainkit-YYYYMMDDTHHMMSSZ[-N].tgz` in `folder` for a backup started at `now`, reserved: the name
    is created empty and exclusively (O_EXCL), so two backups started in the same second (a timer and a manual
    run, or two stores sharing the folder) cannot both pick it and overwrite each other. The backup is renamed
    over the reservation when written; the caller removes it if the backup fails."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    while True:
        taken = [_order(p)[1] for p in folder.glob(f"{PREFIX}{stamp}*{SUFFIX}") if NAME.match(p.name)]
        # above every number in use, never a gap left by rotation: a later backup must sort after earlier ones
        name = folder / (f"{PREFIX}{stamp}{SUFFIX}" if not taken else f"{PREFIX}{stamp}-{max(taken) + 1}{SUFFIX}")
        try:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue  # another backup took it between the look and the create: look again
        try:  # who holds it: a backup killed with SIGKILL leaves the reservation, and a later run removes it
            os.write(fd, f"{RESERVED}{owner_tag()}".encode())
        finally:
            os.close(fd)
        return name


def reserved_by(path: Path) -> str | None:
    """The owner tag of a name `backup_name` reserved and no backup has been renamed over yet (None: not one;
    an empty file counts as one of an older version, with an unknown owner "")."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 200:
            return None
        content = path.read_bytes().decode("ascii", "replace")
    except OSError:
        return None
    if content == "":
        return ""
    return content[len(RESERVED):] if content.startswith(RESERVED) else None


def clean_reservations(folder: Path) -> list[Path]:
    """Remove the reservations (`backup_name`) in `folder` whose backup process is gone (killed before it could
    remove its own); a reservation of a running backup, or of another host, stays. Returns what was removed."""
    removed = []
    for path in folder.glob(f"{PREFIX}*{SUFFIX}"):
        owner = reserved_by(path) if NAME.match(path.name) else None
        if owner and is_stale(owner):
            try:
                path.unlink()
            except OSError:
                continue
            removed.append(path)
    return removed


def _order(path: Path) -> tuple[str, int]:
    match = NAME.match(path.name)
    assert match is not None
    return match.group(1), int(match.group(2) or 1)


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of a trainkit backup (its first member), or None when `path` is not one. Reads only the
    start of the file."""
    try:
        with tarfile.open(path, "r|gz") as tar:
            member = tar.next()
            if member is None or member.name != MANIFEST or not member.isfile() or member.size > 16 << 20:
                return None
            stream = tar.extractfile(member)
            data = orjson.loads(stream.read()) if stream is not None else None
    except (OSError, tarfile.TarError, EOFError, zlib.error, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def backups_of(folder: Path, source: str) -> list[Path]:
    """The rotation candidates in `folder`: trainkit-named backups whose manifest names `source`, oldest
    first."""
    found = []
    for path in folder.iterdir():
        if NAME.match(path.name) and path.is_file() and not path.is_symlink():
            manifest = read_manifest(path)
            if manifest is not None and manifest.get("source") == source:
                found.append(path)
    return sorted(found, key=_order)


def rotate(folder: Path, source: str, keep: int, written: Path) -> list[Path]:
    """Delete all but the newest `keep` backups of `source` in `folder` (never `written`); returns what was
    deleted. A file that cannot be deleted is logged and left."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    candidates = [p for p in backups_of(folder, source) if p.resolve() != written.resolve()]
    doomed = candidates[:max(0, len(candidates) - (keep - 1))]
    deleted = []
    for path in doomed:
        try:
            path.unlink()
        except OSError as exc:
            log.warning("backup rotation: cannot delete %s (%s); left in place", path, exc.strerror or exc)
            continue
        deleted.append(path)
    return deleted
