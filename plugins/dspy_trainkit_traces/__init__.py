"""Built-in traces format: OpenTelemetry-style trace exports, where a DSPy program's calls already live when it
runs under MLflow, Phoenix or Langfuse tracing; each program call (a root span) becomes one example.

Chosen with `--format traces` (it claims no extension: `.json` and `.jsonl` stay the plain formats). A file is
a JSON document (a list of spans, OTLP JSON `{"resourceSpans": [...]}`, MLflow's `{"data": {"spans": [...]}}`)
or JSON Lines (one span, or one OTLP batch, per line, as a collector's file exporter writes). Which spans are
roots is known only when the whole file is read (a child may come before its parent), so the file is read twice:
once for the span ids, once for the examples; see `spans` for the shapes and `roots` for the examples made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import FormatError, ReadOptions, RecordError, json_document, json_lines


def read_traces(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    """Two passes over the file: the first notes every span's ids, the second turns the root spans into examples,
    so memory holds ids rather than spans (a JSON document is parsed once and held, as with the json format)."""
    from .roots import TraceIndex, to_example_record  # imported when a file is read: loading plugins stays cheap
    from .spans import Span, spans_in

    units = _units(path, options)
    index = TraceIndex()
    for where, unit in units():
        if not isinstance(unit, BaseException):
            for _position, span in spans_in(unit, where):
                if isinstance(span, Span):
                    index.add(span)
    rooted: set[str] = set()
    unrooted: dict[str, tuple[str, Span]] = {}  # each trace's first span, in case no span of it is a root
    for where, unit in units():
        if isinstance(unit, BaseException):
            yield where, unit
            continue
        for position, span in spans_in(unit, where):
            if not isinstance(span, Span):
                yield position, span  # a RecordError, or an example record (a fixed line of a rejects file)
            elif index.is_root(span):
                rooted.add(span.trace_id)
                yield position, to_example_record(span, index.trace_size(span))
            else:
                unrooted.setdefault(span.trace_id, (position, span))
    for trace_id, (position, span) in unrooted.items():
        if trace_id not in rooted:  # every span has a parent in the file: the parent ids go round in a cycle
            yield position, RecordError(
                f"trace {trace_id or '(no trace id)'}: none of its {index.sizes[trace_id]} span(s) is a root "
                "(their parent span ids form a cycle), so it gives no example; fix the parent ids the exporter "
                "wrote", span.raw)


def _units(path: Path, options: ReadOptions) -> Callable[[], Iterable[tuple[str, Any]]]:
    """What reads the file's parts, each time it is called: `("line N", object)` per line of JSON Lines, or
    `("", document)` for a JSON document. JSON Lines when the first line is a whole object; else a document,
    unless the file does not parse as one and its first line does not open one either (then it is a JSON Lines
    file whose first line is broken, and its other lines are still read)."""
    def lines() -> Iterator[tuple[str, Any]]:
        yield from json_lines(path, options)

    reader = lines()
    first = next(reader, None)
    reader.close()  # only the first line was wanted
    if first is None or isinstance(first[1], dict):
        return lines
    try:
        document = json_document(path, options)
    except FormatError:
        text = str(getattr(first[1], "record", "") or "").strip()
        if text == "{" or text.startswith("["):
            raise
        return lines
    return lambda: [("", document)]


@hookimpl
def import_format(register):
    register("traces", (), read_traces)
