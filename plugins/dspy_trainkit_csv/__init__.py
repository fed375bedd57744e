"""Built-in CSV format: a header row, then one record per row; dialect sniffed; UTF-8 with or without BOM.

Rows with more or fewer cells than the header, and a quote left open at the end of the file, are reported
with their line; the other rows are read. A file that is not UTF-8 stops with a message naming `--encoding`
(rows before the bad byte are kept). Columns named `inputs.X` / `outputs.X` (what export writes) go straight to
inputs and outputs; a cell holding a JSON array or object (export writes lists that way) is parsed back.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from dspy_trainkit import hookimpl
from dspy_trainkit.formats import FormatError, ReadOptions, WriteOptions

LABELS = ("domain", "topic", "difficulty")
FIELD_LIMIT = 256 * 1024 * 1024  # a cell may hold a long document; the default 128 KiB limit is too small


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _cell(value: str) -> Any:
    stripped = value.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return value
    return value


def _record(header: list[str], row: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, value in zip(header, row, strict=True):
        part, _, field = name.partition(".")
        if part in ("inputs", "outputs", "metadata") and field:
            record.setdefault(part, {})[field] = _cell(value)
        elif value != "" or name not in LABELS:
            record[name] = _cell(value)
    return record


def read_csv(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    encoding = options.encoding or "utf-8-sig"
    shown_encoding = options.encoding or "UTF-8"
    try:
        codecs.lookup(encoding)
        with path.open("rb") as raw:  # sniff from bytes, so a bad byte only stops reading where it is
            sample = raw.read(64 * 1024).decode(encoding, errors="replace")
        stream = path.open("r", encoding=encoding, newline="")
    except LookupError:
        raise FormatError(f"unknown encoding {encoding!r}; use a Python codec name such as latin-1") from None
    except OSError as exc:
        raise FormatError(f"cannot open: {exc.strerror}") from None
    with stream:
        reader = csv.reader(stream, _dialect(sample), strict=True)
        line = 0
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [name.strip() for name in header]
            if len(set(header)) != len(header) or not all(header):
                raise FormatError(f"the header row has empty or repeated column names: {header}")
            line = reader.line_num
            while True:
                start = line + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield f"line {start}", ValueError(f"malformed CSV ({exc}); a quote may be left open")
                    return
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    yield f"line {start}", ValueError(
                        f"{len(row)} cells but the header has {len(header)} columns")
                    continue
                yield f"line {start}", _record(header, row)
        except UnicodeDecodeError as exc:
            raise FormatError(f"not {shown_encoding} text (byte {exc.object[exc.start:exc.start + 1]!r} after line "
                              f"{line}); give the file's encoding with --encoding, e.g. --encoding latin-1; "
                              "the rows before it are kept") from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def write_csv(examples: Iterable[Any], stream: IO[bytes], options: WriteOptions) -> int:
    """Columns: task, labels, then `inputs.X` / `outputs.X` (fixed by the first example of each task, or the
    declared fields), then provenance columns on request. Non-text values are written as JSON."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
    writer: csv.writer | None = None
    columns: list[str] = []
    count = 0
    for example in examples:
        if writer is None:
            declared = options.task_fields.get(example.task)
            inputs, outputs = declared if declared else (tuple(example.inputs), tuple(example.outputs))
            columns = ["task", *LABELS, *(f"inputs.{n}" for n in inputs), *(f"outputs.{n}" for n in outputs)]
            if options.provenance:
                columns += ["id", "status", "source", "quality", "scores", "provenance", "content_hash"]
            writer = csv.writer(text)
            writer.writerow(columns)
        values = {"task": example.task, **{label: getattr(example, label) or "" for label in LABELS},
                  **{f"inputs.{k}": v for k, v in example.inputs.items()},
                  **{f"outputs.{k}": v for k, v in example.outputs.items()}}
        if options.provenance:
            values.update(id=example.id, status=example.status, source=example.source,
                          quality="" if example.quality is None else example.quality, scores=example.scores,
                          provenance=example.provenance, content_hash=example.content_hash)
        extra = set(values) - set(columns)
        if extra:
            raise FormatError(f"example {example.id} has fields {sorted(extra)} that the CSV columns "
                              f"({', '.join(columns)}) lack; export one task at a time (--task) or use jsonl")
        writer.writerow([_text(values.get(c, "")) for c in columns])
        count += 1
    text.detach()
    return count


@hookimpl
def import_format(register):
    register("csv", ("csv",), read_csv)


@hookimpl
def export_format(register):
    register("csv", ("csv",), write_csv)
