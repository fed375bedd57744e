"""Importing files: pick a reader per file, map its records to example fields, and feed the one intake path.

Every path is checked before anything is read (missing, a folder, unknown format), so a typo never leaves a
half-done import. Then each file streams through its reader in batches: good records are stored, bad ones are
reported with file and line (and written to a rejects file on request), and a re-run skips what is stored.
`-` names standard input (with --format), shown as `<stdin>` in positions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import TrainkitError
from ..intake import IntakeReport, RejectCallback
from ..json_values import bytes_escaped
from .formats import FormatError, ReadOptions, check_encoding, import_formats, is_stdin, pick_format
from .mapping import FieldMap, FieldsMissing, MappingError, TaskFieldsUnknown

if TYPE_CHECKING:
    from ..kit import Kit


@attrs.define
class ImportReport:
    """The summary of an import: per-file intake reports and their totals."""

    files: dict[str, IntakeReport] = attrs.field(factory=dict)

    def total(self, counter: str) -> int:
        return sum(getattr(r, counter) for r in self.files.values())

    @property
    def read(self) -> int:
        return self.total("read")

    @property
    def imported(self) -> int:
        """Stored as accepted or candidate (for review)."""
        return self.total("accepted") + self.total("candidates")

    @property
    def duplicates(self) -> int:
        return self.total("duplicates")

    @property
    def rejected(self) -> int:
        """Records not stored because they could not be read or mapped, plus those stored as rejected."""
        return self.total("invalid") + self.total("rejected")

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "imported": self.imported, "duplicates": self.duplicates,
                "rejected": self.rejected, "files": {p: r.to_dict() for p, r in self.files.items()}}


#: How standard input is named in positions (`<stdin>:line 3`) and provenance.
STDIN_NAME = "<stdin>"


def check_paths(kit: Kit, paths: list[Path], format_name: str | None, encoding: str | None = None
                ) -> list[tuple[Path, Any]]:
    """Each path with its format registration; one clear error for the first bad path or a bad encoding."""
    if not paths:
        raise TrainkitError("no files given; name one or more files to import")
    check_encoding(encoding)
    formats = import_formats(kit.pm)
    checked = []
    if sum(is_stdin(path) for path in paths) > 1:
        raise TrainkitError("- (standard input) is named more than once; it can be read only once")
    for path in paths:
        if is_stdin(path):
            checked.append((path, pick_format(formats, path, format_name, "import")))
            continue
        if not path.exists():
            raise TrainkitError(f"{path}: no such file")
        if path.is_dir():
            raise TrainkitError(f"{path}: is a folder; name the files in it (e.g. {path}/*.jsonl)")
        checked.append((path, pick_format(formats, path, format_name, "import")))
    return checked


def shown_path(path: Path) -> str:
    """`path` as text that prints and stores: a byte of a file name that is not UTF-8 (which Python holds as a
    lone surrogate, refused by the store: the import failed with a traceback) is written as `\\xff`."""
    return bytes_escaped(str(path))


def import_files(kit: Kit, paths: list[Path], *, field_map: FieldMap, format_name: str | None = None,
                 read_options: ReadOptions | None = None, dry_run: bool = False,
                 on_reject: RejectCallback | None = None,
                 progress: Callable[[str, IntakeReport], None] | None = None) -> ImportReport:
    """Import `paths` through intake; returns per-file counts. See the module docstring."""
    read_options = read_options or ReadOptions()
    report = ImportReport()
    for path, registration in check_paths(kit, paths, format_name, read_options.encoding):
        name = STDIN_NAME if is_stdin(path) else shown_path(path)
        read = functools.partial(registration.value, path, read_options)  # called inside _mapped, see there
        records = _mapped(read, field_map, name, registration.key,
                          check_at=min(FIELDS_CHECK_AT, kit.settings.batch_size))
        report.files[name] = kit.intake(
            records, defaults={"source": "imported"}, actor="import", reason=f"import {name}", dry_run=dry_run,
            on_reject=on_reject, progress=(lambda r, _n=name: progress(_n, r)) if progress else None)
    return report


#: How many records of a file are looked at before deciding that the file does not match the task's fields.
FIELDS_CHECK_AT = 50


def _mapped(read: Callable[[], Iterator[tuple[str, Any]]], field_map: FieldMap, name: str, fmt: str,
            check_at: int = FIELDS_CHECK_AT) -> Iterator[tuple[str, Any]]:
    """Reader output -> `(file:position, example fields or exception)`, with provenance. A reader's complaint
    about the whole file ends that file as one problem; the other files go on. When most of the first
    `check_at` records (or of a shorter file) have none of the task's fields, the import stops with the
    reason; `check_at` is at most one intake batch, so nothing of the file has been stored by then."""
    fields = _FieldsCheck(name, check_at)
    try:
        for position, record in read():
            where = f"{name}:{position}"
            if isinstance(record, BaseException):
                yield where, record
                continue
            try:
                values = field_map.apply(record)
            except MappingError as exc:
                fields.count(exc)
                yield where, _Unmappable(str(exc), record)
                continue
            fields.count(None)
            found = values.get("provenance")
            earlier: dict[str, Any] = found if isinstance(found, dict) else {}
            values["provenance"] = {**earlier, "origin": where, "format": fmt,
                                    **({"earlier_origin": earlier["origin"]} if "origin" in earlier else {})}
            yield where, values
    except FormatError as exc:
        yield name, exc
    fields.finish()


class _FieldsCheck:
    """Stops an import whose records mostly have none of the task's fields: each would be rejected with the
    same reason, which says more once, early, than a thousand times."""

    def __init__(self, name: str, check_at: int):
        self.name, self.check_at = name, check_at
        self.seen = self.missing = 0
        self.first: FieldsMissing | None = None

    def count(self, problem: MappingError | None) -> None:
        self.seen += 1
        if isinstance(problem, FieldsMissing):
            self.missing += 1
            self.first = self.first or problem
        if self.seen == self.check_at:
            self.finish()

    def finish(self) -> None:
        if self.seen <= self.check_at and self.first is not None and self.missing * 2 > self.seen:
            what = ("name a task that declares no fields" if isinstance(self.first, TaskFieldsUnknown)
                    else "have none of the task's fields")
            raise TrainkitError(f"{self.name}: most records {what} ({self.missing} of {self.seen} read), so the "
                                f"import stopped before storing any of this file: {self.first}")


class _Unmappable(TrainkitError):
    """Carries the original record so the rejects file can hold it."""

    def __init__(self, message: str, record: Any):
        super().__init__(message)
        self.record = record
