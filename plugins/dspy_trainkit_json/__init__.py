"""Built-in JSON format: a top-level array of records, or an object holding one (e.g. `{"examples": [...]}`).

A JSON document cannot be read record by record after a syntax error, so a malformed file is one error with
its line and column and nothing from it is imported. The `dspy` export (`{"input_keys": [...], "examples":
[...]}`) is read back too: its flat records are split into inputs and outputs by `input_keys`.
Writing streams one record at a time into a top-level array.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import FormatError, ReadOptions, WriteOptions, export_record, json_document


def records_of(document: Any, path: Path) -> Iterator[tuple[str, Any]]:
    """The records of a parsed document: a list, or the single list-valued entry of an object."""
    if isinstance(document, dict):
        input_keys = document.get("input_keys")
        lists = {k: v for k, v in document.items() if isinstance(v, list) and k != "input_keys"}
        if len(lists) != 1:
            raise FormatError("expected an array of records, or an object holding exactly one array "
                              f"(found {len(lists)} arrays)")
        key, items = next(iter(lists.items()))
        if isinstance(input_keys, list) and key == "examples":
            task = document.get("task")
            items = [_split(item, input_keys, task) for item in items]
    elif isinstance(document, list):
        key, items = None, document
    else:
        raise FormatError(f"expected an array of records, got a JSON {type(document).__name__}")
    for index, item in enumerate(items, start=1):
        # counted from 1, as lines are; not `key[index]`, which reads as counted from 0 (jq, Python)
        position = f"{key} item {index}" if key else f"item {index}"
        yield position, item if isinstance(item, dict) else ValueError(
            f"expected an object, got {type(item).__name__}")


def _split(item: Any, input_keys: list[str], task: str | None) -> Any:
    if not isinstance(item, dict):
        return item
    record: dict[str, Any] = {"inputs": {k: v for k, v in item.items() if k in input_keys},
                              "outputs": {k: v for k, v in item.items() if k not in input_keys}}
    return {**record, "task": task} if task else record


def read_json(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    yield from records_of(json_document(path, options), path)


def write_json(examples: Iterable[Any], stream: IO[bytes], options: WriteOptions) -> int:
    count = 0
    stream.write(b"[")
    for example in examples:
        stream.write((b",\n " if count else b"\n ") + orjson.dumps(export_record(example, options.provenance)))
        count += 1
    stream.write(b"\n]\n" if count else b"]\n")
    return count


@hookimpl
def import_format(register):
    register("json", ("json",), read_json)


@hookimpl
def export_format(register):
    register("json", ("json",), write_json)
