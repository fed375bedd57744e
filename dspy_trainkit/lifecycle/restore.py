"""Restore: check a backup completely before anything is written, then load it into an empty store.

Checks, in order: the file is a readable gzip'd tar whose first member is `manifest.json`, a trainkit backup
manifest naming exactly the other members with their sizes (and, when `TRAINKIT_BACKUP_KEY` is set, signed with
it: see `signing`); every member is a regular file with a plain name (no absolute path, no `..`, no folder, no
symlink or hard link) that the manifest lists with the size its header gives, and none appears twice; each
member's size and sha256 match the manifest (a truncated or altered file fails here); a SQLite copy passes
`PRAGMA integrity_check`. Sizes are checked against a limit (`unpack_limit`) from the manifest and each header
before anything is unpacked, and again while unpacking, so a tar bomb is refused at its first bytes. Members
are read into a private temporary folder under names chosen here, never under the archive's names.

Only then is the target written, in one write transaction: it must be empty; examples keep their ids,
statuses, times and content hashes; snapshots keep their members' content; the audit trail is copied as it
was; optimization runs keep their ids, scores, results, candidates and champion marks; generation plans keep
every slot's state. A line that is not a valid record, or counts that differ from the manifest's, roll the
whole restore back; so does a killed process (the transaction never commits), so a restore either completes or
leaves the store empty and can be run again.

A champion's saved program file (its content is in `runs.jsonl`) is written under the target project's programs
folder (`[optimize] output_dir` of the target kit's settings), and the run's `program_path` updated to it, only
when that path is inside the target project folder; a name in the archive that is absolute or climbs out with
`..` is refused before anything is written, like an unsafe member name. When the programs folder itself lies
outside the project folder the file is not written and the run keeps its old `program_path` (listed in the
result under `programs.not_written`).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sqlite3
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from ..errors import TrainkitError
from ..models import Event, Example, Snapshot
from ..scratch import replacing, temporary_folder
from ..store import redact_url
from .backup import (
    CHUNK,
    FORMAT,
    MANIFEST,
    PORTABLE_FILES,
    PORTABLE_FILES_V1,
    READABLE_VERSIONS,
    SQLITE_FILE,
    program_folder,
)
from .signing import backup_key, signature_problem

BATCH = 1000
#: a backup may unpack to RATIO times its size (at least FLOOR bytes) unless restore is given max_bytes
RATIO = 200
FLOOR = 256 << 20
MANIFEST_LIMIT = 16 << 20
log = logging.getLogger(__name__)


class BackupError(TrainkitError):
    """A backup file that cannot be restored: damaged, truncated, altered, unsafe, or not a backup."""


def _refuse(path: Path, why: str) -> BackupError:
    return BackupError(f"cannot restore {path}: {why}; nothing was written")


def _safe_name(name: str) -> bool:
    pure = PurePosixPath(name)
    return (bool(name) and not name.startswith(("/", "\\")) and "\\" not in name and ".." not in pure.parts
            and len(pure.parts) == 1 and ":" not in name)


def unpack_limit(path: Path, folder: Path, max_bytes: int | None = None) -> int:
    """How many bytes a backup may unpack to: `max_bytes` when given, else RATIO times the archive's size
    (at least FLOOR), and never more than the free space of `folder`."""
    limit = max_bytes if max_bytes is not None else max(FLOOR, RATIO * path.stat().st_size)
    return min(limit, shutil.disk_usage(folder).free)


def verify(path: Path, folder: Path, *, max_bytes: int | None = None) -> dict[str, Any]:
    """Check the backup at `path` and unpack its members into `folder`; returns the manifest. Nothing is
    unpacked beyond `unpack_limit` (a tar bomb stops at its header, or at the limit while unpacking)."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    limit = unpack_limit(path, folder, max_bytes)
    try:
        manifest, digests = _unpack(path, folder, limit)
    except BackupError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise _refuse(path, f"the file is damaged or truncated, or not a trainkit backup ({exc})") from None
    _check_digests(path, manifest, digests)
    if manifest["kind"] == "sqlite":
        _check_sqlite(path, folder / (SQLITE_FILE + ".data"))
    return manifest


def _unpack(path: Path, folder: Path, limit: int) -> tuple[dict[str, Any], dict[str, tuple[str, int]]]:
    """Read the manifest (the first member) and check it, then unpack each member the manifest lists with
    the size the manifest gives, stopping at `limit` bytes in all; returns the manifest and each member's
    (sha256, size)."""
    digests: dict[str, tuple[str, int]] = {}
    manifest: dict[str, Any] | None = None
    used = 0
    with tarfile.open(path, "r|gz") as tar:
        for member in tar:
            name = _check_member(path, member, digests)
            if manifest is None:
                if name != MANIFEST or member.size > MANIFEST_LIMIT:
                    raise _refuse(path, "it does not start with a manifest.json (not a trainkit backup)")
                data, sha, size = _read_member(path, tar, member, folder / (MANIFEST + ".data"), MANIFEST_LIMIT)
                manifest = _check_manifest(path, data, limit)
                digests[name] = (sha, size)
                continue
            want = manifest["files"].get(name)
            if not isinstance(want, dict) or want.get("size") != member.size:
                raise _refuse(path, f"{name} does not match its checksum in manifest.json (altered or damaged: "
                                    f"{member.size} bytes, the manifest gives "
                                    f"{want.get('size') if isinstance(want, dict) else 'none'})")
            if used + member.size > limit:
                raise _too_big(path, limit)
            _, sha, size = _read_member(path, tar, member, folder / (name + ".data"), limit - used)
            digests[name] = (sha, size)
            used += size
    if manifest is None:
        raise _refuse(path, "it has no manifest.json (not a trainkit backup)")
    return manifest, digests


def _check_member(path: Path, member: tarfile.TarInfo, seen: dict[str, Any]) -> str:
    """The member's name, after refusing unsafe names, links, folders, unknown and repeated members."""
    name = member.name
    if not _safe_name(name):
        raise _refuse(path, f"archive member {name!r} has a path that leaves the target folder")
    if not member.isreg():
        raise _refuse(path, f"archive member {name!r} is not a regular file (links and folders are refused)")
    if name not in {MANIFEST, SQLITE_FILE, *PORTABLE_FILES}:
        raise _refuse(path, f"archive member {name!r} is not part of a trainkit backup")
    if name in seen:
        raise _refuse(path, f"archive member {name!r} appears twice")
    return name


def _read_member(path: Path, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path,
                 limit: int) -> tuple[bytes, str, int]:
    """Copy one member to `target` (never more than `limit` bytes); returns (the data when it is the
    manifest, else b"", its sha256, its size)."""
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have data
        raise _refuse(path, f"archive member {member.name!r} has no data")
    sha, size, kept = hashlib.sha256(), 0, bytearray()
    with open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise _too_big(path, limit)
            sha.update(chunk)
            out.write(chunk)
            if member.name == MANIFEST:
                kept += chunk
    if size != member.size:
        raise _refuse(path, f"archive member {member.name!r} is truncated")
    return bytes(kept), sha.hexdigest(), size


def _too_big(path: Path, limit: int) -> BackupError:
    return _refuse(path, f"it unpacks to more than {limit // (1 << 20)} MiB (the limit is {RATIO} times the "
                         "archive's size, at least 256 MiB, and the free space of the temporary folder); if you "
                         "trust the file, raise the limit with --max-unpacked MiB")


def _check_manifest(path: Path, data: bytes, limit: int) -> dict[str, Any]:
    """The parsed manifest, after checking its format, version, kind, member list, signature (when a key is
    set) and that the sizes it gives fit in `limit`."""
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _refuse(path, f"manifest.json is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _refuse(path, "manifest.json is not a trainkit backup manifest")
    version = manifest.get("version")
    if version not in READABLE_VERSIONS:
        raise _refuse(path, f"backup version {version!r} is not supported (this trainkit reads versions "
                            f"{', '.join(map(str, READABLE_VERSIONS))}; a newer trainkit made it?)")
    files, kind = manifest.get("files"), manifest.get("kind")
    portable = set(PORTABLE_FILES_V1 if version == 1 else PORTABLE_FILES)
    expected = {SQLITE_FILE} if kind == "sqlite" else portable if kind == "portable" else None
    if expected is None or not isinstance(files, dict) or set(files) != expected:
        raise _refuse(path, f"manifest.json lists {sorted(files) if isinstance(files, dict) else files!r} "
                            f"for a backup of kind {kind!r}")
    problem = signature_problem(manifest, backup_key())
    if problem:
        raise _refuse(path, problem)
    sizes = [entry.get("size") if isinstance(entry, dict) else None for entry in files.values()]
    if not all(isinstance(size, int) and size >= 0 for size in sizes):
        raise _refuse(path, "manifest.json gives a member without a size")
    if sum(size for size in sizes if isinstance(size, int)) > limit:
        raise _too_big(path, limit)
    return manifest


def _check_digests(path: Path, manifest: dict[str, Any], digests: dict[str, tuple[str, int]]) -> None:
    """Every member the manifest lists is present with its size and sha256."""
    expected = set(manifest["files"])
    present = set(digests) - {MANIFEST}
    if present != expected:
        missing = sorted(expected - present)
        raise _refuse(path, f"the file is damaged or truncated: member(s) "
                            f"{', '.join(missing) or sorted(present - expected)} missing")
    for name in sorted(expected):
        sha, size = digests[name]
        want = manifest["files"][name]
        if want.get("size") != size or want.get("sha256") != sha:
            raise _refuse(path, f"{name} does not match its checksum in manifest.json (altered or damaged)")


def _check_sqlite(path: Path, db: Path) -> None:
    try:
        conn = sqlite3.connect(db)
        try:
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise _refuse(path, f"{SQLITE_FILE} is not a SQLite database ({exc})") from None
    if check != "ok":
        raise _refuse(path, f"{SQLITE_FILE} fails its integrity check ({check})")


def restore(path: Path, target: Any, *, open_store: Callable[[str], Any] | None = None,
            progress: Callable[[int], None] | None = None, max_bytes: int | None = None) -> dict[str, Any]:
    """Restore the backup at `path` into `target` (an open Kit whose store must be empty). `open_store` opens
    a SQLite copy as a kit (needed for backups of kind sqlite); `max_bytes` overrides `unpack_limit`. Returns
    the counts restored.

    The whole load is one write transaction of the target store: a bad line, a count that does not match, an
    interrupted or killed restore leaves the store as empty as it was, so the same command can simply run
    again."""
    path = Path(path)
    with temporary_folder("trainkit-restore") as folder:  # a killed restore's is removed next time
        manifest = verify(path, folder, max_bytes=max_bytes)
        store = target.store
        with store.write_transaction():
            if not store.is_empty():
                raise BackupError(f"cannot restore {path}: the store {redact_url(store.url)} is not empty; "
                                  "restore into a new store with --into URL; nothing was written")
            if manifest["kind"] == "portable":
                source = _PortableSource(path, folder)
                programs = _ProgramTargets(path, target, source)
                counts = _load(source, store, progress, programs)
            else:
                if open_store is None:  # pragma: no cover - the CLI and API always pass one
                    raise BackupError("restoring a SQLite backup needs a way to open it")
                copy = folder / SQLITE_FILE
                (folder / (SQLITE_FILE + ".data")).rename(copy)
                programs = None
                with open_store(f"sqlite:///{copy}") as source_kit:
                    counts = _load(_StoreSource(source_kit.store), store, progress, None)
            want = {k: int(v) for k, v in manifest.get("counts", {}).items()}
            if {k: counts.get(k, 0) for k in want} != want:  # a version 1 manifest counts no runs and plans
                raise _refuse(path, f"it holds {counts} but its manifest says {want}")
    return {"kind": manifest["kind"], "counts": counts, "created_at": manifest.get("created_at"),
            "programs": programs.summary() if programs is not None else {"written": [], "not_written": []}}


def _example(data: dict[str, Any]) -> Example:
    stored = data.get("content_hash")
    example = Example.from_dict(data)
    if stored:
        object.__setattr__(example, "content_hash", stored)  # as the source store recorded it
    return example


def _with_keys(*keys: str) -> Callable[[Any], dict[str, Any]]:
    """A check that a line is a mapping holding `keys` (KeyError otherwise)."""
    def check(data: Any) -> dict[str, Any]:
        missing = [key for key in keys if key not in data]
        if missing or not isinstance(data, dict):
            raise KeyError(", ".join(missing) or "not a mapping")
        return data
    return check


class _PortableSource:
    """The members of a verified portable archive, line by line. A line that is not JSON or not the record
    its file holds (valid checksums prove only that the manifest lists it) is one BackupError naming the file
    and line; the restore's transaction then leaves the target as it was."""

    def __init__(self, path: Path, folder: Path):
        self.path, self.folder = path, folder

    def _numbered(self, name: str) -> Iterator[tuple[int, Any]]:
        with open(self.folder / (name + ".data"), "rb") as stream:
            for number, line in enumerate(stream, start=1):
                if line.strip():
                    try:
                        yield number, orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        raise self._bad(name, number, f"not JSON ({exc})") from None

    def _bad(self, name: str, number: int, why: str) -> BackupError:
        return _refuse(self.path, f"{name} line {number} is {why}")

    def _parsed(self, name: str, make: Callable[[Any], Any]) -> Iterator[Any]:
        for number, data in self._numbered(name):
            try:
                yield make(data)
            except (KeyError, TypeError, ValueError, AttributeError, TrainkitError) as exc:
                raise self._bad(name, number, f"not a valid record ({type(exc).__name__}: {exc})") from None

    def examples(self) -> Iterator[Example]:
        return self._parsed("examples.jsonl", _example)

    def snapshots(self) -> Iterator[tuple[dict[str, Any], list[Example]]]:
        return self._parsed("snapshots.jsonl", lambda data: (data, [_example(e) for e in data["examples"]]))

    def events(self) -> Iterator[Event]:
        return self._parsed("events.jsonl",
                            lambda data: Event(**{**data, "example_ids": tuple(data["example_ids"])}))

    def runs(self) -> Iterator[dict[str, Any]]:
        """`{record, results, candidates, champion, program}` per run (none in a version 1 archive)."""
        if (self.folder / "runs.jsonl.data").exists():
            yield from self._parsed("runs.jsonl", _with_keys("record", "results", "candidates"))

    def plans(self) -> Iterator[dict[str, Any]]:
        """`{name, task, created_at, config, slots}` per plan (none in a version 1 archive)."""
        if (self.folder / "plans.jsonl.data").exists():
            yield from self._parsed("plans.jsonl", _with_keys("name", "slots"))


class _StoreSource:
    def __init__(self, store: Any):
        self.store = store

    def examples(self) -> Iterator[Example]:
        from ..store import ExampleQuery

        return self.store.iter_examples(ExampleQuery())

    def snapshots(self) -> Iterator[tuple[dict[str, Any], list[Example]]]:
        for info in self.store.list_snapshots():
            yield info, list(self.store.iter_snapshot_examples(info["name"]))

    def events(self) -> Iterator[Event]:
        return self.store.iter_events()

    def runs(self) -> Iterator[dict[str, Any]]:
        """Runs of the SQLite copy; their program files stay where they are (program_path unchanged)."""
        champions = {c["run_id"]: c for c in self.store.list_champions()}
        for record in self.store.list_runs():
            results, candidates = self.store.run_details(record["id"])
            champion = champions.get(record["id"])
            yield {"record": record, "results": results, "candidates": candidates,
                   "champion": {"since": champion["since"]} if champion else None, "program": None}

    def plans(self) -> Iterator[dict[str, Any]]:
        for info in self.store.list_plans():
            yield {**info, "slots": self.store.plan_slot_records(info["name"])}


def _safe_program_name(name: Any) -> bool:
    if not isinstance(name, str) or not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name:
        return False
    parts = PurePosixPath(name).parts
    return bool(parts) and all(part not in ("..", ".", "") for part in parts)


class _ProgramTargets:
    """Where each champion's program file from a portable archive goes in the target project. Every name is
    checked when this is built, before the store is written; files are written as their runs are loaded."""

    def __init__(self, path: Path, kit: Any, source: _PortableSource):
        self.targets: dict[str, Path | None] = {}
        self.written: list[str] = []
        self.not_written: list[str] = []
        project = Path(kit.settings.project_dir).resolve()
        for line in source.runs():
            program, record = line.get("program"), line["record"]
            if not program:
                continue
            name = program.get("name")
            if not _safe_program_name(name) or not isinstance(program.get("content"), str):
                raise _refuse(path, f"the program file {name!r} of run {record['id']} has a path that leaves the "
                                    "programs folder")
            folder = program_folder(kit, record["task"]).resolve()
            target = (folder / name).resolve()
            if not target.is_relative_to(folder):  # a symlink in the target project pointing out of it
                raise _refuse(path, f"the program file {name!r} of run {record['id']} would be written to "
                                    f"{target}, outside the programs folder {folder}")
            if not target.is_relative_to(project):
                self.targets[record["id"]] = None
                continue
            if target.exists() and (not target.is_file()
                                    or target.read_text(encoding="utf-8") != program["content"]):
                raise _refuse(path, f"{target} exists with other content (the program of run {record['id']}); "
                                    "move it away first")
            self.targets[record["id"]] = target

    def place(self, line: dict[str, Any]) -> dict[str, Any]:
        """Write the run's program file (when it has one to write) and return its record pointing to it."""
        record = line["record"]
        if record["id"] not in self.targets:
            return record
        target = self.targets[record["id"]]
        if target is None:
            log.warning("run %s: its program file is not restored: the programs folder is outside the project "
                        "folder; program_path stays %s", record["id"], record.get("program_path"))
            self.not_written.append(record["id"])
            return record
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as partial:
            partial.write_text(line["program"]["content"], encoding="utf-8")
        self.written.append(str(target))
        return {**record, "program_path": str(target)}

    def summary(self) -> dict[str, list[str]]:
        return {"written": self.written, "not_written": self.not_written}


def _load(source: Any, store: Any, progress: Callable[[int], None] | None,
          programs: _ProgramTargets | None) -> dict[str, int]:
    counts = {"examples": 0, "snapshots": 0, "events": 0, "runs": 0, "plans": 0}
    done = 0

    def batches(items: Iterator[Any]) -> Iterator[list[Any]]:
        batch: list[Any] = []
        for item in items:
            batch.append(item)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def load(items: Iterable[Any], write: Callable[[list[Any]], Any], what: str) -> None:
        nonlocal done
        for batch in batches(iter(items)):
            written = write(batch)
            if what == "examples" and isinstance(written, int) and written != len(batch):
                raise TrainkitError(f"the archive holds {len(batch) - written} example(s) whose id is used twice "
                                    "(or is in the store already); nothing was written")
            counts[what] += len(batch)
            done += len(batch)
            if progress is not None:
                progress(done)

    load(source.examples(), store.load_examples, "examples")
    for info, examples in source.snapshots():
        members = [(ex.id, ex.content_hash) for ex in examples]
        snapshot = Snapshot(name=info["name"], members=members, config=info["config"],
                            created_at=info["created_at"])
        store.create_snapshot(snapshot, examples, None, info["digest"])
        counts["snapshots"] += 1
    for line in source.runs():
        record = programs.place(line) if programs is not None else line["record"]
        store.save_run(record, line["results"], line["candidates"])
        if line.get("champion") and not store.set_champion(record["task"], record["id"], line["champion"]["since"]):
            raise BackupError(f"task {record['task']!r} has two champions in the backup; nothing was written")
        counts["runs"] += 1
    for plan in source.plans():
        store.load_plan({k: v for k, v in plan.items() if k != "slots"}, plan["slots"])
        counts["plans"] += 1
    load(source.events(), store.load_events, "events")
    return counts
