"""File formats: what `import_format` and `export_format` plugins register, and picking one for a path.

A reader turns a file into `(position, record)` pairs lazily, so memory does not grow with the file; a record
is a mapping, or an exception saying why that part of the file could not be read (the rest goes on).
A writer streams examples into a binary file object. Formats are picked by extension unless named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs

from ..errors import TrainkitError
from ..plugin_manager import Registration, collect_registrations

if TYPE_CHECKING:
    import pluggy

    from ..models import Example

Reader = Callable[[Path, "ReadOptions"], Iterator[tuple[str, Any]]]
Writer = Callable[[Iterable["Example"], IO[bytes], "WriteOptions"], int]


@attrs.frozen(kw_only=True)
class ReadOptions:
    """How to read a file: its text encoding (None: UTF-8, with or without BOM)."""

    encoding: str | None = None


@attrs.frozen(kw_only=True)
class WriteOptions:
    """How to write: `provenance` adds id, status, source, scores, quality, provenance and times per example;
    `task_fields` maps a task to its declared (inputs, outputs), for formats that need a fixed column set;
    `keep_formulas` asks spreadsheet formats to write text that starts like a formula (`= + - @`) as it is
    instead of neutralising it (a spreadsheet would run it)."""

    provenance: bool = False
    task_fields: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = attrs.field(factory=dict)
    keep_formulas: bool = False


class FormatError(TrainkitError):
    """A whole file cannot be read (wrong encoding, not the format at all)."""


class RecordError(ValueError):
    """One record could not be read. `record` keeps its raw content (a line's text, a row's cells), so the
    rejects file holds it for the user to fix."""

    def __init__(self, message: str, record: Any = None):
        super().__init__(message)
        self.record = record


def check_encoding(encoding: str | None) -> None:
    """A clear error for an encoding name Python does not know, before any file is read."""
    if encoding is None:
        return
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise TrainkitError(f"--encoding {encoding!r}: unknown encoding; use a name such as utf-8, latin-1, "
                            "cp1252 or utf-16") from None


def _make(kind: str) -> Callable[..., Registration]:
    def make(plugin: str, name: str, extensions: Iterable[str], function: Callable[..., Any]) -> Registration:
        if not isinstance(name, str) or not name.replace("-", "").isalnum():
            raise ValueError(f"{kind} format name {name!r} must be a short word such as 'jsonl'")
        if isinstance(extensions, str) or not all(isinstance(e, str) for e in extensions):
            raise ValueError(f"extensions for {name!r} must be a tuple of strings such as ('jsonl', 'ndjson')")
        if not callable(function):
            raise ValueError(f"the {kind} for {name!r} is not callable")
        return Registration(key=name, value=function, plugin=plugin,
                            extra={"extensions": tuple(e.lower().lstrip(".") for e in extensions)})

    return make


def import_formats(pm: pluggy.PluginManager) -> dict[str, Registration]:
    return collect_registrations(pm, "import_format", _make("reader"))


def export_formats(pm: pluggy.PluginManager) -> dict[str, Registration]:
    return collect_registrations(pm, "export_format", _make("writer"))


def pick_format(formats: dict[str, Registration], path: Path, name: str | None, kind: str) -> Registration:
    """The format named, or the one whose extensions match `path`; a clear error otherwise."""
    known = ", ".join(n + (f" (.{', .'.join(r.extra['extensions'])})" if r.extra["extensions"] else "")
                      for n, r in sorted(formats.items()))  # a format without extensions is for --format only
    if name is not None:
        if name not in formats:
            raise TrainkitError(f"unknown {kind} format {name!r}; known formats: {known or 'none'}")
        return formats[name]
    suffixes = [s.lower().lstrip(".") for s in path.suffixes]
    for candidate in (".".join(suffixes[i:]) for i in range(len(suffixes))):
        for registration in formats.values():
            if candidate in registration.extra["extensions"]:
                return registration
    raise TrainkitError(f"{path}: cannot tell the format from the extension; give --format "
                        f"(known formats: {known or 'none'})")
