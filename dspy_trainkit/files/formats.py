"""File formats: what `import_format` and `export_format` plugins register, and picking one for a path.

A reader turns a file into `(position, record)` pairs lazily, so memory does not grow with the file; a record
is a mapping, or an exception saying why that part of the file could not be read (the rest goes on).
A writer streams examples into a binary file object. Formats are picked by extension unless named.

Readers open their file with `open_input`, once, and read it front to back: the path may be `-` (standard
input), a pipe or a FIFO, which cannot be reopened or rewound, so a reader that wants a sample first (CSV
sniffing) keeps the bytes it read and reads them again from memory.
"""

from __future__ import annotations

import io
import logging
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs

from ..errors import PluginError, TrainkitError
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


log = logging.getLogger(__name__)

#: The path that names standard input.
STDIN = "-"
#: Seconds an open of a FIFO may block before the user is told what it waits for.
FIFO_NOTICE_AFTER = 1.0


def is_stdin(path: Path | str) -> bool:
    return str(path) == STDIN


def open_input(path: Path) -> IO[bytes]:
    """The bytes of `path` as a stream to read once, front to back: standard input for `-` (closing the
    stream leaves standard input open), else the file. Opening a FIFO waits for a program to open it for
    writing; when that takes longer than FIFO_NOTICE_AFTER seconds, a warning says what the import waits
    for (Ctrl-C stops it), instead of a silent hang. Raises FormatError when the file cannot be opened."""
    if is_stdin(path):
        return _KeptOpen(sys.stdin.buffer)  # type: ignore[return-value]  # a BufferedIOBase is an IO[bytes]
    try:
        fifo = stat.S_ISFIFO(path.stat().st_mode)
        if not fifo:
            return path.open("rb")
        notice = threading.Timer(FIFO_NOTICE_AFTER, log.warning, (
            "%s is a named pipe (FIFO) and nothing writes to it yet: waiting for a program to open it for "
            "writing (Ctrl-C to stop)", path))
        notice.daemon = True
        notice.start()
        try:
            return path.open("rb")
        finally:
            notice.cancel()
    except OSError as exc:
        raise FormatError(f"cannot open: {exc.strerror}") from None


class _KeptOpen(io.BufferedIOBase):
    """A borrowed binary stream (standard input): reading goes through, closing closes only this view."""

    def __init__(self, stream: IO[bytes]):
        super().__init__()
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._stream.read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        read1 = getattr(self._stream, "read1", None)
        return read1(size) if read1 is not None else self._stream.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._stream.readline(-1 if size is None else size)


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
    def make(plugin: str, name: str, extensions: Iterable[str], function: Callable[..., Any], *,
             columns: Iterable[str] | None = None) -> Registration:
        if not isinstance(name, str) or not name.replace("-", "").isalnum():
            raise ValueError(f"{kind} format name {name!r} must be a short word such as 'jsonl'")
        if isinstance(extensions, str) or not all(isinstance(e, str) for e in extensions):
            raise ValueError(f"extensions for {name!r} must be a tuple of strings such as ('jsonl', 'ndjson')")
        if not callable(function):
            raise ValueError(f"the {kind} for {name!r} is not callable")
        if columns is not None and (kind != "writer" or isinstance(columns, str)
                                    or not all(isinstance(c, str) for c in columns)):
            raise ValueError(f"columns for {name!r}: only a writer takes them, as a tuple of Example field names")
        return Registration(key=name, value=function, plugin=plugin,
                            extra={"extensions": tuple(e.lower().lstrip(".") for e in extensions),
                                   "columns": tuple(columns) if columns is not None else None})

    return make


def import_formats(pm: pluggy.PluginManager) -> dict[str, Registration]:
    return _one_format_per_extension(collect_registrations(pm, "import_format", _make("reader")), "import_format")


def export_formats(pm: pluggy.PluginManager) -> dict[str, Registration]:
    return _one_format_per_extension(collect_registrations(pm, "export_format", _make("writer")), "export_format")


def _one_format_per_extension(formats: dict[str, Registration], hook: str) -> dict[str, Registration]:
    """Refuse two formats that claim one extension, as two formats of one name are refused: otherwise the one
    registered first would silently take every such file (a plugin's `.jsonl` over the built-in reader)."""
    owner: dict[str, Registration] = {}
    for registration in formats.values():
        for extension in registration.extra["extensions"]:
            first = owner.setdefault(extension, registration)
            if first is not registration:
                raise PluginError(
                    f"extension '.{extension}' is registered by both format {first.key!r} (plugin {first.plugin!r}) "
                    f"and format {registration.key!r} (plugin {registration.plugin!r}) in hook {hook!r}; disable "
                    "one of them, or register the other format without that extension (--format still picks it)",
                    plugin=registration.plugin, hook=hook)
    return formats


def pick_format(formats: dict[str, Registration], path: Path, name: str | None, kind: str) -> Registration:
    """The format named, or the one whose extensions match `path`; a clear error otherwise."""
    known = ", ".join(n + (f" (.{', .'.join(r.extra['extensions'])})" if r.extra["extensions"] else "")
                      for n, r in sorted(formats.items()))  # a format without extensions is for --format only
    if name is not None:
        if name not in formats:
            raise TrainkitError(f"unknown {kind} format {name!r}; known formats: {known or 'none'}")
        return formats[name]
    if is_stdin(path):
        raise TrainkitError(f"-: standard input has no extension to tell its format by; give --format "
                            f"(known formats: {known or 'none'})")
    suffixes = [s.lower().lstrip(".") for s in path.suffixes]
    for candidate in (".".join(suffixes[i:]) for i in range(len(suffixes))):
        for registration in formats.values():
            if candidate in registration.extra["extensions"]:
                return registration
    raise TrainkitError(f"{path}: cannot tell the format from the extension; give --format "
                        f"(known formats: {known or 'none'})")
