"""Spans out of the shapes trace exports come in, read into one form.

Exporters disagree on nearly every name, so each is looked up under the names the common ones use:

* OTLP JSON (an OpenTelemetry collector's file exporter, `{"resourceSpans": [{"scopeSpans": [{"spans": [...]}]}]}`):
  `traceId`, `spanId`, `parentSpanId`, attributes as a list of `{"key", "value": {"stringValue": ...}}`;
* the OpenTelemetry SDK's JSON and MLflow (`trace.to_json()`, `{"data": {"spans": [...]}}`): `context.trace_id`,
  `context.span_id`, `parent_id`, attributes as a mapping, MLflow's values JSON-encoded text;
* Phoenix, whose attributes nest (`{"input": {"value": ...}}`), and Langfuse observations (`id`, `traceId`,
  `parentObservationId`, `input`, `output`).

Attribute values that are JSON text (MLflow encodes every value; Phoenix and Langfuse the JSON inputs) are
decoded, so `'{"question": "..."}'` is a mapping again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import orjson

from dspy_trainkit.pluginkit import RecordError

_MISSING = object()
TRACE_ID = ("traceId", "trace_id", "context.trace_id", "context.traceId")
SPAN_ID = ("spanId", "span_id", "context.span_id", "context.spanId", "id")
PARENT_ID = ("parentSpanId", "parent_span_id", "parent_id", "parentId", "parentObservationId", "context.parent_id")
#: Where the module's inputs and outputs are kept: MLflow, OpenInference (Phoenix; Langfuse reads it too), Langfuse.
INPUT_ATTRIBUTES = ("mlflow.spanInputs", "input.value", "langfuse.observation.input")
OUTPUT_ATTRIBUTES = ("mlflow.spanOutputs", "output.value", "langfuse.observation.output")
INPUT_KEYS = ("inputs", "input")  # a span's own field, as Langfuse's observations export has it
OUTPUT_KEYS = ("outputs", "output")
#: Span fields kept in the example's metadata, under the first name of each group.
KEPT = {"kind": ("kind", "span_kind", "type"), "status": ("status", "status_code", "statusCode", "level"),
        "start_time": ("startTimeUnixNano", "start_time_unix_nano", "start_time", "startTime"),
        "end_time": ("endTimeUnixNano", "end_time_unix_nano", "end_time", "endTime")}


@attrs.frozen
class Span:
    """One span: ids normalised for matching parents (no `0x`), attributes as a mapping."""

    position: str
    trace_id: str
    span_id: str | None
    parent_id: str | None
    name: str | None
    attributes: dict[str, Any]
    raw: dict[str, Any]
    resource: dict[str, Any] = attrs.field(factory=dict)

    def value(self, attribute_names: tuple[str, ...], field_names: tuple[str, ...]) -> Any:
        """The first of the attributes (or, failing those, the span's own fields) that is present."""
        for name in attribute_names:
            found = lookup(self.attributes, name)
            if found is not _MISSING:
                return decoded(found)
        for name in field_names:
            if name in self.raw and self.raw[name] is not None:
                return decoded(self.raw[name])
        return _MISSING

    def kept_fields(self) -> dict[str, Any]:
        kept = {}
        for key, names in KEPT.items():
            for name in names:
                if self.raw.get(name) not in (None, "", {}):
                    kept[key] = self.raw[name]
                    break
        return kept


def is_missing(value: Any) -> bool:
    return value is _MISSING


def lookup(mapping: Mapping[str, Any], dotted: str) -> Any:
    """`mapping[dotted]`, or the value at that dotted path through nested mappings (Phoenix nests `input.value`
    as `{"input": {"value": ...}}`); _MISSING when neither is there."""
    if dotted in mapping:
        return mapping[dotted]
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = mapping.get(".".join(parts[:cut]))
        if isinstance(head, Mapping):
            found = lookup(head, ".".join(parts[cut:]))
            if found is not _MISSING:
                return found
    return _MISSING


def decoded(value: Any) -> Any:
    """A value that is JSON text of an object, array or string, decoded; anything else as it is (plain text
    that merely starts with a bracket stays text)."""
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _any_value(value: Any) -> Any:
    """An OTLP `AnyValue` (`{"stringValue": "x"}`, `{"intValue": "3"}`, arrays, key/value lists) as plain data."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return value
    (kind, inner), = value.items()
    if kind == "intValue":  # int64 by the OTLP spec, written as a string in OTLP JSON
        number = int(inner) if isinstance(inner, str) and inner.lstrip("-").isdigit() else inner
        # out of int64 range it is not OTLP, and the store could not keep it exactly: keep the text as written
        # rather than reject the whole example over one attribute
        return number if not isinstance(number, int) or -(2**63) <= number < 2**63 else inner
    if kind == "arrayValue":
        return [_any_value(v) for v in (inner or {}).get("values", [])]
    if kind == "kvlistValue":
        return _attributes((inner or {}).get("values", []))
    if kind in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        return inner
    return value


def _attributes(raw: Any) -> dict[str, Any]:
    """Attributes as a mapping, from an OTLP key/value list or a mapping."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, list):
        return {item["key"]: _any_value(item.get("value")) for item in raw
                if isinstance(item, Mapping) and isinstance(item.get("key"), str)}
    return {}


def _first(span: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        found = lookup(span, name)
        if found not in (_MISSING, None, ""):
            return found
    return None


def _id(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().removeprefix("0x")  # case kept: base64 ids (MLflow 3) are case-sensitive
    return None if not text or set(text) == {"0"} else text  # an all-zero id is OTLP's "no parent"


def looks_like_span(item: Any) -> bool:
    return isinstance(item, Mapping) and (_first(item, SPAN_ID) is not None or isinstance(item.get("name"), str))


def make_span(position: str, raw: dict[str, Any], resource: dict[str, Any]) -> Span:
    return Span(position=position, trace_id=_id(_first(raw, TRACE_ID)) or "", span_id=_id(_first(raw, SPAN_ID)),
                parent_id=_id(_first(raw, PARENT_ID)), name=raw.get("name"),
                attributes=_attributes(raw.get("attributes")), raw=raw,
                resource=resource or _resource(raw))


def _resource(item: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of an item's `resource` (an OTLP resourceSpans entry, or an SDK span that carries its own)."""
    resource = item.get("resource")
    return _attributes(resource.get("attributes")) if isinstance(resource, Mapping) else {}


def spans_in(unit: Any, where: str) -> Iterator[tuple[str, Any]]:
    """`(position, Span or RecordError)` for every span in `unit` (one JSON Lines line, or a whole document), in
    file order; an example-shaped record (`inputs` mapping, no span id or name) is yielded as it is. A unit
    that is one span keeps the position `where`; spans inside a list or a container are numbered: `where span
    N` (`span N` for a document)."""
    found = list(_walk(unit, {}))
    single = where != "" and isinstance(unit, Mapping) and not _containers(unit)
    for number, (kind, item, resource) in enumerate(found, start=1):
        position = where if single else f"{where} span {number}".strip()
        yield position, make_span(position, item, resource) if kind == "span" else item


#: Keys that always hold spans; `data` (MLflow's trace) and `traces` only in an object that is not a span itself.
_SPAN_LISTS = ("resourceSpans", "scopeSpans", "instrumentationLibrarySpans", "spans")
_OTHER_CONTAINERS = ("data", "traces")


def _containers(item: Mapping[str, Any]) -> list[str]:
    """The keys of `item` that hold spans, if it is a container rather than a span."""
    keys = [key for key in _SPAN_LISTS if isinstance(item.get(key), list)]
    if keys or looks_like_span(item):
        return keys
    return [key for key in _OTHER_CONTAINERS if isinstance(item.get(key), list | dict)]


def _walk(item: Any, resource: dict[str, Any]) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """`(kind, item, resource attributes)` through lists and containers (OTLP `resourceSpans` and `scopeSpans`
    or the older `instrumentationLibrarySpans`, `{"spans": [...]}`, MLflow's `{"data": {"spans": [...]}}`,
    `{"traces": [...]}`): kind "span" for a raw span, "example" for an example-shaped record (a fixed line of a
    rejects file), "error" for a RecordError (holding the item) in place of what is neither."""
    if isinstance(item, list):
        for inner in item:
            yield from _walk(inner, resource)
        return
    if not isinstance(item, Mapping):
        yield "error", RecordError(f"expected a span, got {type(item).__name__}", item), resource
        return
    containers = _containers(item)
    if containers:
        resource = _resource(item) or resource
        for key in containers:
            yield from _walk(item[key], resource)
    elif looks_like_span(item):
        yield "span", item, resource
    elif isinstance(item.get("inputs"), Mapping):
        yield "example", dict(item), resource
    else:
        yield "error", RecordError("not a span: expected an object with a span id or name (spanId, context.span_id, "
                                   'id), a list of spans, or OTLP JSON {"resourceSpans": [...]}', dict(item)), resource
