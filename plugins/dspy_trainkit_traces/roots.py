"""Root spans -> example records: a DSPy program's call is the span with no parent, and its inputs and outputs
are the example.

A trace holds one span per module, predictor and LM call under the program's call; only the top one is what the
program was asked and answered, so each trace gives one example per root span (a span whose parent is not in
the file: a partial export's topmost spans count as roots too). Everything else about the root (its trace and
span ids, name, other attributes, status, times, the resource) is kept in metadata.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import attrs

from dspy_trainkit.pluginkit import RecordError

from .spans import INPUT_ATTRIBUTES, INPUT_KEYS, OUTPUT_ATTRIBUTES, OUTPUT_KEYS, Span, decoded, is_missing

LABELS = ("domain", "topic", "difficulty")
#: OTLP's numeric status codes
_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_LOOKED_AT = {"inputs": ", ".join(INPUT_ATTRIBUTES), "outputs": ", ".join(OUTPUT_ATTRIBUTES)}


@attrs.define
class TraceIndex:
    """The ids of a file's spans, per trace: enough to tell a root span (its parent is not in the file, matched
    within its trace) without holding the spans themselves."""

    ids: dict[str, set[str]] = attrs.field(factory=lambda: defaultdict(set))
    sizes: Counter[str] = attrs.field(factory=Counter)

    def add(self, span: Span) -> None:
        self.sizes[span.trace_id] += 1
        if span.span_id:
            self.ids[span.trace_id].add(span.span_id)

    def is_root(self, span: Span) -> bool:
        parent = span.parent_id
        if parent is None:
            return True
        if span.trace_id:
            return parent not in self.ids.get(span.trace_id, ())
        return not any(parent in ids for ids in self.ids.values())  # no trace id: a parent in any trace counts

    def trace_size(self, span: Span) -> int | None:
        return self.sizes[span.trace_id] if span.trace_id else None


def to_example_record(span: Span, trace_size: int | None) -> dict[str, Any] | RecordError:
    values = {}
    for part, attributes, keys in (("inputs", INPUT_ATTRIBUTES, INPUT_KEYS),
                                   ("outputs", OUTPUT_ATTRIBUTES, OUTPUT_KEYS)):
        value = span.value(attributes, keys)
        if is_missing(value) or value is None:
            status = _status_text(span)
            return RecordError(f"root span {span.name or span.span_id!r} has no {part} (looked for "
                               f"{_LOOKED_AT[part]}){f'; the span ended with status {status}' if status else ''}",
                               span.raw)
        values[part] = _fields(value, part.removesuffix("s"))
    record: dict[str, Any] = {**values, "metadata": _metadata(span, trace_size)}
    for label in LABELS:  # a problem generator's labels are inputs too, as with flat records
        if isinstance(values["inputs"].get(label), str | int | float) and values["inputs"][label] != "":
            record[label] = str(values["inputs"][label])
    return record


def _status_text(span: Span) -> str:
    """The span's status for a message, such as `ERROR (RateLimitError: 429)`, or "" when it has none."""
    status = span.kept_fields().get("status")
    message = span.raw.get("status_message")
    if isinstance(status, dict):
        message = status.get("message") or status.get("description") or message
        status = status.get("code", status.get("status_code"))
    name = _STATUS_CODES.get(status, status) if isinstance(status, int | str) else None
    if not name:
        return ""
    return f"{str(name).removeprefix('STATUS_CODE_')}{f' ({message})' if message else ''}"


def _fields(value: Any, name: str) -> dict[str, Any]:
    """Inputs or outputs as named fields: a mapping as it is (a call's `{"args": [], "kwargs": {...}}` as its
    keyword arguments), anything else as the one field `input` / `output`."""
    if isinstance(value, dict) and set(value) <= {"args", "kwargs"} and isinstance(value.get("kwargs"), dict) \
            and not value.get("args"):
        value = value["kwargs"]
    if isinstance(value, dict):
        return dict(value)
    return {name: value}


def _metadata(span: Span, trace_size: int | None) -> dict[str, Any]:
    used = set(INPUT_ATTRIBUTES) | set(OUTPUT_ATTRIBUTES)
    attributes = {key: _decoded_all(value) for key, value in span.attributes.items() if key not in used}
    for name in ("input", "output"):  # Phoenix nests input.value; its mime_type stays
        nested = attributes.get(name)
        if isinstance(nested, dict):
            nested = {k: v for k, v in nested.items() if k != "value"}
            attributes[name] = nested
            if not nested:
                del attributes[name]
    metadata: dict[str, Any] = {"trace_id": span.trace_id or None, "span_id": span.span_id,
                                "span_name": span.name, "trace_spans": trace_size, **span.kept_fields()}
    if attributes:
        metadata["attributes"] = attributes
    if span.resource:
        metadata["resource"] = span.resource
    return {key: value for key, value in metadata.items() if value is not None}


def _decoded_all(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _decoded_all(inner) for key, inner in value.items()}
    return decoded(value)

