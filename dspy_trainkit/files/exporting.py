"""Exporting examples: stream a query's examples through a registered writer into a file, atomically.

The file is written through `files.writing.SafeOutput`: beside its destination and renamed into place when
complete (an interrupted export never leaves a truncated file that looks finished), or directly when it is a
FIFO or character device such as `/dev/stdout`; anything else that is not a regular file is refused.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TrainkitError
from ..store import ExampleQuery
from .formats import WriteOptions, export_formats, pick_format
from .writing import SafeOutput, check_output

if TYPE_CHECKING:
    from ..kit import Kit
    from ..models import Example


def export_examples(kit: Kit, output: Path | None, query: ExampleQuery | None = None, *,
                    examples: Iterable[Example] | None = None, tasks: Iterable[str] = (),
                    format_name: str | None = None, provenance: bool = False, keep_formulas: bool = False,
                    progress: Callable[[int], None] | None = None) -> int:
    """Write the examples matching `query` to `output` (None: standard output); returns how many. Instead of a
    query, `examples` (such as a snapshot's) with the `tasks` they belong to (for their field lists).
    `keep_formulas`: see `WriteOptions`."""
    if (query is None) == (examples is None):
        raise TypeError("export_examples takes either a query or examples=")
    formats = export_formats(kit.pm)
    if output is None and format_name is None:
        raise TrainkitError("give --format when writing to standard output")
    registration = pick_format(formats, output or Path("-"), format_name, "export")
    if query is not None:
        tasks = {query.task} if query.task else {key[0] for key, _ in kit.store.group_counts(["task"], query)}
    task_fields = {t: f for t in tasks if (f := kit.task_fields(t)) is not None}
    options = WriteOptions(provenance=provenance, task_fields=task_fields, keep_formulas=keep_formulas)
    if output is not None:
        check_output(output, "export")
    # a writer that declared the fields it reads gets examples read with those columns only (the dspy format
    # needs task, inputs and outputs of a million examples, not their scores, findings and provenance)
    columns = None if provenance else registration.extra.get("columns")
    source = (kit.store.iter_example_columns(query, columns) if query is not None else iter(examples or ()))
    stream_of: Any = _counted(source, progress)  # a generator: closed below
    try:
        if output is None:
            return registration.value(stream_of, sys.stdout.buffer, options)
        with SafeOutput(output, "export") as stream:
            return registration.value(stream_of, stream, options)
    finally:
        stream_of.close()  # end the store's read before anything closes the store


def _counted(examples: Iterator[Example], progress: Callable[[int], None] | None) -> Iterator[Example]:
    count = 0
    try:
        for example in examples:
            yield example
            count += 1
            if progress is not None and count % 1000 == 0:
                progress(count)
        if progress is not None:
            progress(count)
    finally:
        close = getattr(examples, "close", None)
        if close is not None:
            close()


#: The Example fields `export_record` reads without provenance: writers built on it register these `columns`.
EXPORT_RECORD_COLUMNS = ("task", "inputs", "outputs", "domain", "topic", "difficulty", "metadata")


def export_record(example: Example, provenance: bool) -> dict[str, Any]:
    """The example-shaped record that file formats write (and `trainkit import` reads back)."""
    record: dict[str, Any] = {"task": example.task, "inputs": example.inputs, "outputs": example.outputs}
    for label in ("domain", "topic", "difficulty"):
        if getattr(example, label) is not None:
            record[label] = getattr(example, label)
    if example.metadata:
        record["metadata"] = example.metadata
    if provenance:
        record.update(id=example.id, status=example.status, source=example.source, quality=example.quality,
                      scores=example.scores, provenance=example.provenance, content_hash=example.content_hash,
                      created_at=example.created_at, updated_at=example.updated_at)
    return record
