"""Built-in traces format: OpenTelemetry-style trace exports, where a DSPy program's calls already live when it
runs under MLflow, Phoenix or Langfuse tracing; each program call (a root span) becomes one example.

Chosen with `--format traces` (it claims no extension: `.json` and `.jsonl` stay the plain formats). A file is
a JSON document (a list of spans, OTLP JSON `{"resourceSpans": [...]}`, MLflow's `{"data": {"spans": [...]}}`)
or JSON Lines (one span, or one OTLP batch, per line, as a collector's file exporter writes). Which spans are
roots is known only when the whole file is read (a child may come before its parent), so the spans of a file
are held in memory; see `spans` for the shapes and `roots` for the examples made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import FormatError, ReadOptions, json_document, json_lines

from .roots import example_records
from .spans import Span, spans_in


def read_traces(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    spans: list[Span] = []
    for where, unit in _units(path, options):
        if isinstance(unit, BaseException):
            yield where, unit
            continue
        for position, span in spans_in(unit, where):
            if isinstance(span, Span):
                spans.append(span)
            elif isinstance(span, dict):
                yield position, span  # an example record (a fixed line of a rejects file)
            else:
                yield position, span  # a RecordError
    yield from example_records(spans)


def _units(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    """The file's parts: `("line N", object)` per line of JSON Lines, or `("", document)` for a JSON document.
    JSON Lines when the first line is a whole object; else a document, unless the file does not parse as one
    and its first line does not open one either (then a JSON Lines file whose first line is broken: its other
    lines are still read)."""
    lines = json_lines(path, options)
    first = next(lines, None)
    if first is None:
        return
    if isinstance(first[1], dict):
        yield first
        yield from lines
        return
    lines.close()
    try:
        document = json_document(path, options)
    except FormatError:
        text = str(getattr(first[1], "record", "") or "").strip()
        if text == "{" or text.startswith("["):
            raise
        yield from json_lines(path, options)
        return
    yield "", document


@hookimpl
def import_format(register):
    register("traces", (), read_traces)
