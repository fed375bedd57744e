"""Reading JSON files for import formats: JSON Lines as a stream of objects, and a JSON document as a whole.

Several formats share these (the plain `jsonl` and `json` formats, and formats that read a known shape out of
JSON, such as chat logs and trace exports), so the hard parts are done once: a byte order mark, `--encoding`
(UTF-16 cannot be split on a newline byte before decoding), a line that is not JSON reported with its line
number while the other lines are read, and a last line cut short.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..json_values import parse_json
from .formats import FormatError, ReadOptions, RecordError, open_input


def parse_json_line(raw: bytes | str) -> Any:
    """One line's JSON object, or a RecordError saying why not."""
    try:
        data = parse_json(raw)  # integers wider than 64 bits stay exact, so intake can reject them as they are
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in str(exc):
            return RecordError("not UTF-8 text; give the file's encoding with --encoding (e.g. latin-1)")
        return RecordError(f"not valid JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(data, dict):
        return RecordError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _lines(path: Path, encoding: str | None) -> Iterator[bytes | str]:
    """Raw byte lines for UTF-8 (orjson parses bytes directly; fastest), decoded text lines for another
    encoding."""
    raw = open_input(path)  # read once: the path may be standard input or a pipe
    stream = raw if encoding is None else io.TextIOWrapper(raw, encoding=encoding, newline="")
    with stream:
        try:
            yield from stream
        except UnicodeDecodeError as exc:
            raise FormatError(f"not {encoding} text ({exc.reason}); check --encoding") from None


def json_lines(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    """`("line N", object or RecordError)` for each non-blank line, read as a stream: memory stays that of one
    line. A bad line keeps its text in `RecordError.record` for the rejects file."""
    for number, raw in enumerate(_lines(path, options.encoding), start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf") if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
        if not raw.strip():
            continue
        parsed = parse_json_line(raw)
        if isinstance(parsed, RecordError):  # only bad lines are decoded: good ones stay bytes for orjson
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            if not text.endswith("\n"):
                parsed = RecordError(f"{parsed}; the last line looks cut short")
            parsed.record = text.rstrip("\r\n")
        yield f"line {number}", parsed


def json_document(path: Path, options: ReadOptions) -> Any:
    """The whole file parsed as one JSON value (an empty file is an empty list); FormatError when it cannot be
    read, decoded or parsed, since one syntax error makes the rest of a document unreadable."""
    try:
        with open_input(path) as stream:  # read once: the path may be standard input or a pipe
            data = stream.read()
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        return []  # an empty file holds no records, as with the other formats
    try:
        return parse_json(data if options.encoding is None else data.decode(options.encoding))
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in str(exc):
            raise FormatError("not UTF-8 text; give the file's encoding with --encoding, e.g. --encoding latin-1") \
                from None
        raise FormatError(f"not valid JSON: {exc}; nothing was imported from this file") from None
    except (UnicodeDecodeError, LookupError) as exc:
        raise FormatError(f"cannot decode with --encoding {options.encoding}: {exc}") from None

