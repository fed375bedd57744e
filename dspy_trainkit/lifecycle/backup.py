"""Backup: one file (a gzip'd tar) holding a consistent copy of a store, a `manifest.json` with counts, and
the sha256 and size of every other member, so `restore` can refuse a damaged or altered backup.

Two kinds, told apart by the manifest:

* `sqlite`: the store file copied with SQLite's online backup API (one read transaction on a WAL database:
  writers keep working, the copy holds exactly what was committed when it began), checked with
  `PRAGMA integrity_check` before it is packed;
* `portable`: JSON lines of examples (`examples.jsonl`), snapshots with their members' content
  (`snapshots.jsonl`), the audit trail (`events.jsonl`), optimization runs with their per-example results,
  candidates, champion mark and (for champions) the saved program file's content (`runs.jsonl`), and generation
  plans with their slots (`plans.jsonl`), read in one consistent read transaction from any backend; restorable
  into any backend. Version 1 archives (made before runs and plans were added) have the first three only.

The backup is written through `files.writing.SafeOutput`: beside its destination and renamed into place when
complete, or directly into a FIFO or `/dev/stdout`; a device node or folder is never replaced.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sqlite3
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from ..errors import TrainkitError
from ..files.writing import WRITE_ERRORS, SafeOutput, check_output
from ..scratch import temporary_folder
from ..store import redact_url
from .signing import SIGNATURE, backup_key, sign

if TYPE_CHECKING:
    from ..kit import Kit

log = logging.getLogger(__name__)

FORMAT = "trainkit-backup"
VERSION = 2
#: Versions restore reads: 1 had no runs.jsonl and plans.jsonl.
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
SQLITE_FILE = "store.db"
PORTABLE_FILES = ("examples.jsonl", "snapshots.jsonl", "events.jsonl", "runs.jsonl", "plans.jsonl")
PORTABLE_FILES_V1 = PORTABLE_FILES[:3]
CHUNK = 1 << 20


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///` store URL, or None for other backends (and in-memory stores)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?")[0]
    return None if path in ("", ":memory:") else Path(path)


class _Hashing:
    """A binary file wrapper that hashes and counts what is written."""

    def __init__(self, stream: IO[bytes]):
        self.stream, self.sha, self.size = stream, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.sha.update(data)
        self.size += len(data)


def file_digest(path: Path) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def backup(kit: Kit, output: Path, *, portable: bool | None = None,
           progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write a backup of the kit's store to `output`; returns the manifest. `portable=None` chooses the
    SQLite file copy for SQLite stores and the portable archive otherwise. The manifest is signed with
    `TRAINKIT_BACKUP_KEY` when that is set (see `signing`)."""
    output = Path(output)
    check_output(output, "backup")
    source = sqlite_path(kit.store.url)
    if portable is None:
        portable = source is None
    if not portable and source is None:
        raise TrainkitError(f"store {redact_url(kit.store.url)} is not a SQLite file; use a portable backup "
                            "(--portable)")
    key = backup_key()
    out = SafeOutput(output, "backup")
    try:  # the members are made beside the destination (same disk) unless it is a pipe or device
        with temporary_folder(".trainkit-backup", out.folder) as folder:  # a killed backup's goes next time
            if portable:
                files, counts = _write_portable(kit, folder, progress)
            else:
                files, counts = _copy_sqlite(source, folder / SQLITE_FILE)  # type: ignore[arg-type]
            created = time.time()
            manifest = {"format": FORMAT, "version": VERSION, "kind": "portable" if portable else "sqlite",
                        "created_at": created, "source": redact_url(kit.store.url), "counts": counts,
                        "files": files}
            if key is not None:
                manifest[SIGNATURE] = sign(manifest, key)
            with tarfile.open(fileobj=out.stream, mode="w|gz") as tar:
                data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(data), int(created), 0o644
                tar.addfile(info, io.BytesIO(data))
                for name in files:
                    tar.add(folder / name, arcname=name, recursive=False)
    except BaseException as exc:
        out.discard()
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRORS:
            raise TrainkitError(f"backup {output}: cannot be written ({exc.strerror})") from None
        raise
    out.commit()
    return manifest


def _copy_sqlite(source: Path, target: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """SQLite's online backup into `target`: a consistent copy while other connections keep writing."""
    if not source.exists():
        raise TrainkitError(f"no SQLite store at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
    dst = sqlite3.connect(target)
    try:
        src.execute("PRAGMA busy_timeout = 60000")
        src.backup(dst)  # all pages in one step: one read transaction, so one committed state
        dst.execute("PRAGMA journal_mode = DELETE")  # the copy is one self-contained file
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":  # pragma: no cover - a damaged source store
            raise TrainkitError(f"the store {source} fails its integrity check ({check}); backup not written")
        counts = {"examples": _count(dst, "examples"), "events": _count(dst, "events"),
                  "snapshots": _count(dst, "snapshots"), "runs": _count(dst, "optimization_runs"),
                  "plans": _count(dst, "generation_plans")}
    finally:
        dst.close()
        src.close()
    sha, size = file_digest(target)
    return {SQLITE_FILE: {"sha256": sha, "size": size}}, counts


def _count(conn: sqlite3.Connection, table: str) -> int:
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # a store made before the table's migration
        return 0


def _write_portable(kit: Kit, folder: Path,
                    progress: Callable[[int], None] | None) -> tuple[dict[str, Any], dict[str, int]]:
    from ..store import ExampleQuery

    store = kit.store
    counts = {"examples": 0, "snapshots": 0, "events": 0, "runs": 0, "plans": 0}
    files: dict[str, Any] = {}
    done = 0

    def write(name: str, lines: Iterator[dict[str, Any]], key: str) -> None:
        nonlocal done
        with open(folder / name, "wb") as raw:
            stream = _Hashing(raw)
            for line in lines:
                stream.write(orjson.dumps(line, option=orjson.OPT_NON_STR_KEYS) + b"\n")
                counts[key] += 1
                done += 1
                if progress is not None and done % 1000 == 0:
                    progress(done)
        files[name] = {"sha256": stream.sha.hexdigest(), "size": stream.size}

    with store.consistent_read():
        write("examples.jsonl", (ex.to_dict() for ex in store.iter_examples(ExampleQuery())), "examples")
        write("snapshots.jsonl", _snapshot_lines(kit), "snapshots")
        write("events.jsonl", (e.to_dict() for e in store.iter_events()), "events")
        write("runs.jsonl", _run_lines(kit), "runs")
        write("plans.jsonl", _plan_lines(kit), "plans")
    if progress is not None:
        progress(done)
    return files, counts


def _snapshot_lines(kit: Kit) -> Iterator[dict[str, Any]]:
    for info in kit.store.list_snapshots():
        yield {**info, "examples": [ex.to_dict() for ex in kit.store.iter_snapshot_examples(info["name"])]}


def _run_lines(kit: Kit) -> Iterator[dict[str, Any]]:
    """Each run's record, results and candidates, whether it is its task's champion (and since when), and for
    a champion its saved program: a name inside the programs folder and the file's content."""
    store = kit.store
    champions = {c["run_id"]: c for c in store.list_champions()}
    for record in store.list_runs():
        results, candidates = store.run_details(record["id"])
        champion = champions.get(record["id"])
        yield {"record": record, "results": results, "candidates": candidates,
               "champion": {"since": champion["since"]} if champion else None,
               "program": _program_file(kit, record) if champion else None}


def program_folder(kit: Kit, task: str) -> Path:
    """Where `kit` saves the programs of `task`: `[optimize] output_dir`, relative to the project folder."""
    folder = Path(kit.settings.optimize_for(task).output_dir)
    return folder if folder.is_absolute() else kit.settings.project_dir / folder


def _program_file(kit: Kit, record: dict[str, Any]) -> dict[str, Any] | None:
    """`{name, content}` of a champion's saved program file, or None (logged) when it cannot be read. `name` is
    its path inside the programs folder (`TASK/RUN.json`), whatever folder it was saved in."""
    path = record.get("program_path")
    if not path:
        return None
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("run %s: its saved program %s is not in the backup (%s)", record["id"], path, exc)
        return None
    try:
        name = path.resolve().relative_to(program_folder(kit, record["task"]).resolve()).as_posix()
    except ValueError:  # saved elsewhere (the setting changed since): the task's folder in the target
        name = f"{record['task']}/{path.name}"
    return {"name": name, "content": content}


def _plan_lines(kit: Kit) -> Iterator[dict[str, Any]]:
    for info in kit.store.list_plans():
        yield {**info, "slots": kit.store.plan_slot_records(info["name"])}
