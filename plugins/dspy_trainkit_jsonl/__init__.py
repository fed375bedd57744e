"""Built-in JSON Lines format: one JSON object per line, read and written as a stream.

Reading is the shared `json_lines`: line by line in binary (orjson parses bytes directly), so a million-line
file costs the memory of one line. A line that is not JSON, not an object, or cut short at the end of the file
is reported with its line number; the other lines are read. Blank lines are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import EXPORT_RECORD_COLUMNS, ReadOptions, WriteOptions, export_record, json_lines


def read_jsonl(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    return json_lines(path, options)


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
    register("jsonl", ("jsonl", "ndjson"), write_jsonl, columns=EXPORT_RECORD_COLUMNS)
