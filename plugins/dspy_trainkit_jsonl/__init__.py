"""Built-in JSON Lines format: one JSON object per line, read and written as a stream.

Reading goes line by line in binary (orjson parses bytes directly), so a million-line file costs the memory
of one line. A line that is not JSON, not an object, or cut short at the end of the file is reported with its
line number; the other lines are read. Blank lines are skipped.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import (
    FormatError,
    ReadOptions,
    RecordError,
    WriteOptions,
    export_record,
    open_input,
    parse_json,
)


def parse_line(raw: bytes | str) -> Any:
    """One line's record, or a RecordError saying why not."""
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
    encoding (UTF-16 cannot be split on a newline byte before decoding)."""
    raw = open_input(path)  # read once: the path may be standard input or a pipe
    stream = raw if encoding is None else io.TextIOWrapper(raw, encoding=encoding, newline="")
    with stream:
        try:
            yield from stream
        except UnicodeDecodeError as exc:
            raise FormatError(f"not {encoding} text ({exc.reason}); check --encoding") from None


def read_jsonl(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    for number, raw in enumerate(_lines(path, options.encoding), start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf" if isinstance(raw, bytes) else "\ufeff")
        if not raw.strip():
            continue
        parsed = parse_line(raw)
        if isinstance(parsed, RecordError):
            ending = b"\n" if isinstance(raw, bytes) else "\n"
            if not raw.endswith(ending):
                parsed = RecordError(f"{parsed}; the last line looks cut short")
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            parsed.record = text.rstrip("\r\n")
        yield f"line {number}", parsed


def write_jsonl(examples: Iterable[Any], stream: IO[bytes], options: WriteOptions) -> int:
    count = 0
    for example in examples:
        stream.write(orjson.dumps(export_record(example, options.provenance)) + b"\n")
        count += 1
    return count


@hookimpl
def import_format(register):
    register("jsonl", ("jsonl", "ndjson"), read_jsonl)


@hookimpl
def export_format(register):
    register("jsonl", ("jsonl", "ndjson"), write_jsonl)
