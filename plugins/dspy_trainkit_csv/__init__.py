"""Built-in CSV format: a header row, then one record per row; dialect sniffed; UTF-8 with or without BOM.

Reading decodes line by line, so a byte that is not in the file's encoding stops reading at its own line,
named in the message, with every row before it kept. Rows with more or fewer cells than the header, and a quote
left open at the end of the file, are reported with their line and their cells; the other rows are read.
Columns named `inputs.X` / `outputs.X` (what export writes) go straight to inputs and outputs, and a column
named `metadata` holds the example's metadata as JSON. CSV has no types, so one rule keeps values round-trip
safe: a cell that starts with `[`, `{` or `"` and parses as JSON is read as that JSON value (a list, a mapping,
or a string), and export writes text that starts with one of those characters as a JSON string, so it comes
back as the same text. Numbers are read as text; content hashes treat 4 and "4" alike.

Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return) as a formula, so
export writes such text (when it is not a plain number, and also after leading apostrophes) with one more `'`
in front, which a spreadsheet shows as text; import takes exactly that one `'` off again, so export and import
round-trip. `WriteOptions.keep_formulas` (`trainkit export --keep-formulas`) writes the text as it is.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import FormatError, ReadOptions, RecordError, WriteOptions, open_input, parse_json

LABELS = ("domain", "topic", "difficulty")
FIELD_LIMIT = 256 * 1024 * 1024  # a cell may hold a long document; the default 128 KiB limit is too small
BOM = b"\xef\xbb\xbf"


class _Dialect(csv.Dialect):
    """The sniffed delimiter and quote character, with the standard (RFC 4180) doubled quotes: the sniffer
    guesses `doublequote=False` for some files that do double them, which corrupts every quoted quote."""

    doublequote = True
    escapechar = None
    lineterminator = "\r\n"
    quoting = csv.QUOTE_MINIMAL
    skipinitialspace = False
    strict = True


def _dialect(sample: str) -> type[csv.Dialect]:
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter, quotechar = sniffed.delimiter, sniffed.quotechar or '"'
    except csv.Error:  # too little to go on: the delimiter the header line uses most
        header = sample.splitlines()[0] if sample else ""
        delimiter, quotechar = max(",;\t|", key=header.count), '"'
    return type("Sniffed", (_Dialect,), {"delimiter": delimiter, "quotechar": quotechar})


JSON_STARTS = ("[", "{", '"')
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _formula_like(text: str) -> bool:
    """Text a spreadsheet would run, once its leading apostrophes are taken off (a plain number is not)."""
    rest = text.lstrip("'")
    return rest[:1] in FORMULA_STARTS and not NUMBER.fullmatch(rest)


def _cell(value: str) -> Any:
    if value[:1] == "'" and _formula_like(value):  # neutralised by export: take its apostrophe off
        return value[1:]
    if value[:1] in JSON_STARTS:
        try:
            parsed = parse_json(value)  # a wide integer in it stays exact, for intake to reject
        except orjson.JSONDecodeError:
            return value
        if isinstance(parsed, list | dict | str):
            return parsed
    return value


def _record(header: list[str], row: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, value in zip(header, row, strict=True):
        part, _, field = name.partition(".")
        if part in ("inputs", "outputs") and field:
            record.setdefault(part, {})[field] = _cell(value)
        elif name == "metadata":
            if value.strip():
                try:
                    record["metadata"] = parse_json(value)
                except orjson.JSONDecodeError:
                    raise RecordError(f"the metadata column is not JSON: {value[:80]!r}", row) from None
        elif value != "" or name not in LABELS:
            record[name] = _cell(value)
    return record


SAMPLE = 64 * 1024


class _Replayed(io.RawIOBase):
    """A stream read once (standard input, a pipe) whose first bytes were taken for sniffing: those bytes
    again from memory, then the rest of the stream. Nothing is reopened or rewound."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self.head, self.rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        read = getattr(self.rest, "read1", self.rest.read)  # what a pipe has, without waiting to fill `buffer`
        data = read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _lines(stream: IO[bytes], encoding: str | None, position: list[int]) -> Iterator[str]:
    """The stream's lines decoded (keeping their line ends, as csv wants); `position[0]` is the number of the
    line being decoded, for the error message. An ASCII-compatible encoding is decoded line by line, so a bad
    byte stops reading at its own line with every row before it kept; UTF-16 and UTF-32 cannot be split on a
    newline byte before decoding, so they are decoded as a text stream."""
    if encoding is not None and codecs.lookup(encoding).name == "utf-8-sig":
        encoding = None  # UTF-8 with the BOM removed, as by default
    codec = encoding or "utf-8"
    if "\n".encode(codec) != b"\n":
        text = io.TextIOWrapper(stream, encoding=codec, newline="")
        try:
            for number, line in enumerate(text, start=1):
                position[0] = number
                yield line
        except UnicodeDecodeError as exc:
            raise FormatError(f"after line {position[0]}: not {encoding} text ({exc.reason}); check --encoding; "
                              "the rows before it are kept") from None
        return
    for number, line in enumerate(stream, start=1):
        position[0] = number
        if number == 1 and encoding is None and line.startswith(BOM):
            line = line[len(BOM):]
        try:
            yield line.decode(codec)
        except UnicodeDecodeError as exc:
            bad = line[exc.start:exc.start + 1]
            if number == 1 and line.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise FormatError("the file starts with a UTF-16 byte order mark; give --encoding utf-16") from None
            raise FormatError(f"line {number} is not {encoding or 'UTF-8'} text (byte {bad!r}); give the file's "
                              "encoding with --encoding, e.g. --encoding latin-1; the rows before it are kept"
                              ) from None


def _sample_text(head: bytes, encoding: str | None) -> str:
    """The sniffing sample as text; a character cut at the end of the sample is dropped, not an error."""
    codec = encoding or "utf-8"
    if encoding is None:
        head = head.removeprefix(BOM)
    return codecs.getincrementaldecoder(codec)(errors="replace").decode(head, final=False)


def read_csv(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    with open_input(path) as raw:  # read once: the path may be standard input or a pipe
        head = _read_head(raw)
        stream = io.BufferedReader(_Replayed(head, raw))
        yield from _rows(stream, options, _dialect(_sample_text(head, options.encoding)))


def _read_head(raw: IO[bytes]) -> bytes:
    """Up to SAMPLE bytes, reading again after a short read (a pipe gives what its writer has written so far)."""
    parts, size = [], 0
    while size < SAMPLE:
        part = raw.read(SAMPLE - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _rows(stream: IO[bytes], options: ReadOptions, dialect: type[csv.Dialect]) -> Iterator[tuple[str, Any]]:
    position = [0]
    reader = csv.reader(_lines(stream, options.encoding, position), dialect)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        hint = "; its lines may end in a bare carriage return (old Mac style): convert them to \\n" \
            if "new-line character" in str(exc) else ""
        raise FormatError(f"the header row cannot be read ({exc}){hint}") from None
    if header is None:
        return
    header = [name.strip() for name in header]
    if len(set(header)) != len(header) or not all(header):
        raise FormatError(f"the header row has empty or repeated column names: {header}")
    while True:
        start = position[0] + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield f"line {start}", RecordError(f"malformed CSV ({exc}); a quote may be left open", None)
            return
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield f"line {start}", RecordError(f"{len(row)} cells but the header has {len(header)} columns", row)
            continue
        try:
            yield f"line {start}", _record(header, row)
        except RecordError as exc:
            yield f"line {start}", exc


def _text(value: Any, keep_formulas: bool = False) -> str:
    """A cell: text as it is (as a JSON string when it starts like JSON, with a `'` in front when it starts
    like a formula; see the module docstring), other values as JSON."""
    if isinstance(value, str) and value[:1] not in JSON_STARTS:
        return value if keep_formulas or not _formula_like(value) else "'" + value
    return orjson.dumps(value).decode()


def write_csv(examples: Iterable[Any], stream: IO[bytes], options: WriteOptions) -> int:
    """Columns: task, labels, `inputs.X` / `outputs.X` (the declared fields, or those of the first example of
    the task), metadata (JSON), then provenance columns on request. Non-text values are written as JSON."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
    writer: Any = None
    columns: list[str] = []
    count = 0
    for example in examples:
        if writer is None:
            declared = options.task_fields.get(example.task)
            inputs, outputs = declared if declared else (tuple(example.inputs), tuple(example.outputs))
            columns = ["task", *LABELS, *(f"inputs.{n}" for n in inputs), *(f"outputs.{n}" for n in outputs),
                       "metadata"]
            if options.provenance:
                columns += ["id", "status", "source", "quality", "scores", "provenance", "content_hash"]
            writer = csv.writer(text)
            writer.writerow(columns)
        values = {"task": example.task, **{label: getattr(example, label) or "" for label in LABELS},
                  **{f"inputs.{k}": v for k, v in example.inputs.items()},
                  **{f"outputs.{k}": v for k, v in example.outputs.items()},
                  "metadata": example.metadata or ""}
        if options.provenance:
            values.update(id=example.id, status=example.status, source=example.source,
                          quality="" if example.quality is None else example.quality, scores=example.scores,
                          provenance=example.provenance, content_hash=example.content_hash)
        extra = set(values) - set(columns)
        if extra:
            raise FormatError(f"example {example.id} has fields {sorted(extra)} that the CSV columns "
                              f"({', '.join(columns)}) lack: CSV needs one set of fields, taken from the task's "
                              "declared fields or the first example; declare the task's signature, select with "
                              "--task/--status, or export jsonl")
        writer.writerow([_text(values.get(c, ""), options.keep_formulas) for c in columns])
        count += 1
    text.detach()
    return count


@hookimpl
def import_format(register):
    register("csv", ("csv",), read_csv)


@hookimpl
def export_format(register):
    register("csv", ("csv",), write_csv)
