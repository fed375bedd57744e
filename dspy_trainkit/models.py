"""The core value objects: Example, Finding, Event, Snapshot.

They are frozen attrs classes: a change makes a new value (`attrs.evolve`), so an example handed to a plugin or
held by a snapshot cannot be altered behind anyone's back. Every field a user can get wrong is validated here,
once, with a message that names the field; plugins and stores can then trust what they receive.
Times are UTC epoch seconds (floats): cheap to store, index and compare at millions of rows.
"""

from __future__ import annotations

import functools
import hashlib
import time
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import orjson

from .errors import ValidationError
from .ids import new_id
from .names import FIELD_NAME, TASK_NAME

SOURCES = ("collected", "bootstrap", "imported", "synthetic", "manual")
STATUSES = ("candidate", "accepted", "rejected", "archived")
SEVERITIES = ("error", "warning", "info")


def _fail(field: str, message: str) -> None:
    raise ValidationError(f"{field}: {message}")


def _check_task(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, str) or not TASK_NAME.match(value):
        _fail("task", f"{value!r} is not a task name (letters, digits, '_', '.', '-'; starting with a letter)")


def _check_optional_label(inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        _fail(attr.name, f"{value!r} must be a non-empty string or absent")
    if value is not None and "\x00" in value:  # PostgreSQL cannot store it; SQLite would, so refuse it on both
        _fail(attr.name, f"{value!r} contains a NUL (0x00) character; remove it")


def _check_choice(choices: tuple[str, ...]):
    def check(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            _fail(attr.name, f"{value!r} is not one of {', '.join(choices)}")

    return check


_valid_field_names: set[str] = set()  # names seen valid already: field names repeat across millions of rows


def _check_fields(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, dict):
        _fail(attr.name, f"must be a mapping of field name to value, got {type(value).__name__}")
    for key in value:
        if key in _valid_field_names:
            continue
        if not isinstance(key, str) or not FIELD_NAME.match(key):
            _fail(attr.name, f"{key!r} is not a valid field name (a Python identifier, as DSPy signatures need)")
        if len(_valid_field_names) < 10_000:
            _valid_field_names.add(key)


def _check_json_mapping(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, dict):
        _fail(attr.name, f"must be a mapping, got {type(value).__name__}")


def _check_scores(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, dict):
        _fail("scores", f"must be a mapping of dimension to a number in 0..1, got {type(value).__name__}")
    for dimension, score in value.items():
        _check_unit(f"scores.{dimension}", score)


def _check_unit(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        _fail(field, f"{value!r} must be a number between 0 and 1")


def _check_quality(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None:
        _check_unit("quality", value)


def _findings_tuple(value: Iterable[Finding]) -> tuple[Finding, ...]:
    """Any iterable of findings -> a tuple (typed, so type checkers see what the field accepts)."""
    return tuple(value)


def _ids_tuple(value: Iterable[str]) -> tuple[str, ...]:
    """Any iterable of example ids -> a tuple."""
    return tuple(value)


def _members_tuple(value: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Any iterable of (example id, content hash) pairs -> a tuple."""
    return tuple(value)


def _as_dict(value: Any) -> Any:
    """Accept any mapping (a dspy.Example's store, a MappingProxy) and keep a plain dict."""
    return dict(value) if isinstance(value, Mapping) and not isinstance(value, dict) else value


def _normalise_text(value: Any) -> Any:
    """What makes two contents "the same" for dedup: NFC text, unified newlines, no outer whitespace, and
    scalars compared by their JSON text (4 and "4", true and "true"), since typeless formats such as CSV cannot
    keep the difference and no user means two different examples by it. None and "" are both "empty".

    Exact type checks first: this runs for every field of every example on import, and most values are text.
    """
    kind = type(value)
    if kind is str:
        if "\r" in value:
            value = value.replace("\r\n", "\n")
        return (value if value.isascii() else unicodedata.normalize("NFC", value)).strip()
    if kind is dict:
        return {str(k): _normalise_text(v) for k, v in value.items()}
    if value is None:
        return ""
    if kind is bool or kind is int or kind is float:
        return orjson.dumps(value).decode()
    if isinstance(value, str):
        return _normalise_text(str(value))
    if isinstance(value, Mapping):
        return _normalise_text(dict(value))
    if isinstance(value, list | tuple):
        return [_normalise_text(v) for v in value]
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    return value


def _normalise_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """`_normalise_text` of a mapping of fields, with plain ASCII text (most values) normalised in line: one
    call per part instead of one per value, which was most of the content hash's cost on import."""
    found = {}
    for key, value in values.items():
        if type(value) is str and value.isascii() and "\r" not in value:
            found[key if type(key) is str else str(key)] = value.strip()
        else:
            found[str(key)] = _normalise_text(value)
    return found


def content_hash(task: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> str:
    """sha256 of the normalised task, inputs and outputs: equal for examples a user would call duplicates."""
    payload = {"task": task, "inputs": _normalise_fields(inputs), "outputs": _normalise_fields(outputs)}
    try:
        data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise ValidationError(f"inputs/outputs: values must be JSON data (text, numbers, lists, maps): {exc}") from None
    return hashlib.sha256(data).hexdigest()


@attrs.frozen(kw_only=True)
class Finding:
    """One validation result. `error` rejects the example; `warning` sends it to review or lowers its score."""

    severity: str = attrs.field(validator=_check_choice(SEVERITIES))
    code: str = attrs.field(validator=attrs.validators.instance_of(str))
    message: str = attrs.field(validator=attrs.validators.instance_of(str))
    field: str | None = None
    plugin: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(**data)


_valid_tasks: set[str] = set()  # task names and labels seen valid already (Example.from_record)
_valid_labels: set[str] = set()
_SOURCE_SET = frozenset(SOURCES)
#: The fields a record may give for `Example.from_record` to build it directly (others take `from_dict`).
_FAST_KEYS = frozenset({"task", "inputs", "outputs", "domain", "topic", "difficulty", "source", "provenance",
                        "metadata"})
_NO_FIELDS: dict[str, Any] = {}
_new, _put = object.__new__, object.__setattr__  # build a frozen Example without its checks (values known good)


@attrs.frozen(kw_only=True)
class Example:
    """One training example for one task (a DSPy program or signature).

    `inputs` and `outputs` hold the signature's input and output fields; they must not share a name, because a
    `dspy.Example` has one flat namespace. `content_hash` is derived from task, inputs and outputs and is what
    exact deduplication and snapshots compare.
    """

    task: str = attrs.field(validator=_check_task)
    inputs: dict[str, Any] = attrs.field(converter=_as_dict, validator=_check_fields)
    outputs: dict[str, Any] = attrs.field(factory=dict, converter=_as_dict, validator=_check_fields)
    id: str = attrs.field(factory=new_id, validator=attrs.validators.instance_of(str))
    domain: str | None = attrs.field(default=None, validator=_check_optional_label)
    topic: str | None = attrs.field(default=None, validator=_check_optional_label)
    difficulty: str | None = attrs.field(default=None, validator=_check_optional_label)
    source: str = attrs.field(default="manual", validator=_check_choice(SOURCES))
    status: str = attrs.field(default="candidate", validator=_check_choice(STATUSES))
    scores: dict[str, float] = attrs.field(factory=dict, validator=_check_scores)
    quality: float | None = attrs.field(default=None, validator=_check_quality)
    findings: tuple[Finding, ...] = attrs.field(default=(), converter=_findings_tuple)
    provenance: dict[str, Any] = attrs.field(factory=dict, converter=_as_dict, validator=_check_json_mapping)
    metadata: dict[str, Any] = attrs.field(factory=dict, converter=_as_dict, validator=_check_json_mapping)
    created_at: float = attrs.field(factory=time.time)
    updated_at: float = attrs.field(default=attrs.Factory(lambda self: self.created_at, takes_self=True))
    last_used_at: float | None = None

    def __attrs_post_init__(self) -> None:
        shared = self.inputs.keys() & self.outputs.keys()
        if shared:
            _fail("outputs", f"field(s) {', '.join(sorted(shared))} appear in both inputs and outputs")

    @functools.cached_property
    def content_hash(self) -> str:
        return content_hash(self.task, self.inputs, self.outputs)

    def evolve(self, **changes: Any) -> Example:
        """A copy with `changes` applied and `updated_at` moved to now (the content hash follows the content)."""
        changes.setdefault("updated_at", time.time())
        return attrs.evolve(self, **changes)

    def with_verdict(self, *, status: str, findings: list[Finding], quality: float | None,
                     scores: dict[str, float], provenance: dict[str, Any]) -> Example:
        """A copy carrying intake's decision, made without re-validating or re-hashing the unchanged content.

        Intake calls this once per example on every import; `attrs.evolve` would run every validator and
        hash the content again (about a third of the per-example cost). The values passed here are produced
        and checked by intake itself.
        """
        if status not in STATUSES:
            _fail("status", f"{status!r} is not one of {', '.join(STATUSES)}")
        # one assignment per field, unrolled (a loop over the field names cost twice as much), each
        # through the slot's own setter (`_set_*`, below the class)
        copy = _new(Example)
        _set_task(copy, self.task)
        _set_inputs(copy, self.inputs)
        _set_outputs(copy, self.outputs)
        _set_id(copy, self.id)
        _set_domain(copy, self.domain)
        _set_topic(copy, self.topic)
        _set_difficulty(copy, self.difficulty)
        _set_source(copy, self.source)
        _set_status(copy, status)
        _set_scores(copy, scores)
        _set_quality(copy, quality)
        _set_findings(copy, tuple(findings))
        _set_provenance(copy, provenance)
        _set_metadata(copy, self.metadata)
        _set_created_at(copy, self.created_at)
        _set_updated_at(copy, self.updated_at)
        _set_last_used_at(copy, self.last_used_at)
        _set_content_hash(copy, self.content_hash)  # the cached hash's slot: content is unchanged
        return copy

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, including the content hash."""
        data = attrs.asdict(self, recurse=False)
        data["findings"] = [f.to_dict() for f in self.findings]
        data["content_hash"] = self.content_hash
        return data

    @classmethod
    def from_record(cls, values: Mapping[str, Any]) -> Example:
        """`from_dict` for intake's records, without re-running checks whose answer is known already.

        A million-row import builds a million Examples whose task, labels, source and field names repeat: each
        of those values is checked in full the first time it is seen (by `from_dict`, so the messages are the
        same) and remembered as valid; a record made only of remembered values and plain dicts is then built
        directly, with the defaults `from_dict` would give. Anything else takes `from_dict`."""
        task, source = values.get("task"), values.get("source", "manual")
        if (not _FAST_KEYS.issuperset(values) or type(task) is not str or task not in _valid_tasks
                or type(source) is not str or source not in _SOURCE_SET):
            return cls._checked_record(values)
        inputs, outputs = values.get("inputs"), values.get("outputs", _NO_FIELDS)
        provenance, metadata = values.get("provenance", _NO_FIELDS), values.get("metadata", _NO_FIELDS)
        if (type(inputs) is not dict or type(outputs) is not dict or type(provenance) is not dict
                or type(metadata) is not dict or not _valid_field_names.issuperset(inputs)
                or not _valid_field_names.issuperset(outputs) or not inputs.keys().isdisjoint(outputs)):
            return cls._checked_record(values)
        domain, topic, difficulty = values.get("domain"), values.get("topic"), values.get("difficulty")
        for label in (domain, topic, difficulty):
            if label is not None and (type(label) is not str or label not in _valid_labels):
                return cls._checked_record(values)
        example = _new(cls)  # one assignment per field, unrolled (see with_verdict)
        now = time.time()
        _set_task(example, task)
        _set_inputs(example, inputs)
        _set_outputs(example, {} if outputs is _NO_FIELDS else outputs)
        _set_id(example, new_id())
        _set_domain(example, domain)
        _set_topic(example, topic)
        _set_difficulty(example, difficulty)
        _set_source(example, source)
        _set_status(example, "candidate")
        _set_scores(example, {})
        _set_quality(example, None)
        _set_findings(example, ())
        _set_provenance(example, {} if provenance is _NO_FIELDS else provenance)
        _set_metadata(example, {} if metadata is _NO_FIELDS else metadata)
        _set_created_at(example, now)
        _set_updated_at(example, now)
        _set_last_used_at(example, None)
        return example

    @classmethod
    def _checked_record(cls, values: Mapping[str, Any]) -> Example:
        """`from_dict`, remembering the task and labels of a valid example for `from_record`."""
        example = cls.from_dict(values)
        if len(_valid_tasks) < 10_000:
            _valid_tasks.add(example.task)
        if len(_valid_labels) < 10_000:
            _valid_labels.update(v for v in (example.domain, example.topic, example.difficulty) if v is not None)
        return example

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Example:
        """Build from `to_dict` output or user JSON; unknown keys are an error naming them."""
        known = {a.name for a in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k != "content_hash"}
        unknown = sorted(set(values) - known)
        if unknown:
            _fail(unknown[0], f"unknown example field (known: {', '.join(sorted(known))})")
        if "findings" in values:
            values["findings"] = [f if isinstance(f, Finding) else Finding.from_dict(f) for f in values["findings"]]
        try:
            return cls(**values)
        except TypeError as exc:  # a missing required field
            raise ValidationError(str(exc).replace("__init__() ", "example ")) from None


_EXAMPLE_FIELDS = tuple(field.name for field in attrs.fields(Example))


def slot_setter(name: str) -> Any:
    """`setter(example, value)` for one slot of the frozen, slotted Example: the slot's own setter, which skips
    the attribute lookup `object.__setattr__` makes on every call (17 fields set per Example made on import:
    1.4 against 2.3 us). The store plugin builds Examples from rows with it too (`pluginkit.slot_setter`)."""
    slot = Example.__dict__.get(name)
    if slot is not None and type(slot).__name__ == "member_descriptor":
        return slot.__set__
    return lambda example, value: _put(example, name, value)


(_set_task, _set_inputs, _set_outputs, _set_id, _set_domain, _set_topic, _set_difficulty, _set_source, _set_status,
 _set_scores, _set_quality, _set_findings, _set_provenance, _set_metadata, _set_created_at, _set_updated_at,
 _set_last_used_at, _set_content_hash) = map(slot_setter, (
    "task", "inputs", "outputs", "id", "domain", "topic", "difficulty", "source", "status", "scores", "quality",
    "findings", "provenance", "metadata", "created_at", "updated_at", "last_used_at", "content_hash"))


@attrs.frozen(kw_only=True)
class Event:
    """A committed change to the store, as `on_data_changed` receives it and the audit trail records it.

    `kind` names the change ("added", "updated", "status_changed", "archived", ...); `details` holds what a
    reader needs to understand it (for edits: before and after).
    """

    kind: str = attrs.field(validator=attrs.validators.instance_of(str))
    example_ids: tuple[str, ...] = attrs.field(default=(), converter=_ids_tuple)
    actor: str = "trainkit"
    reason: str = ""
    details: dict[str, Any] = attrs.field(factory=dict)
    time: float = attrs.field(factory=time.time)
    id: str = attrs.field(factory=new_id)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["example_ids"] = list(self.example_ids)
        return data


@attrs.frozen(kw_only=True)
class Snapshot:
    """An immutable, named set of example ids with their content hashes, and the settings that selected it.

    Optimization reads a snapshot so that a result can be reproduced; creating and reading snapshots comes with
    the lifecycle work, this is the value shape they share.
    """

    name: str = attrs.field(validator=_check_task)
    members: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_members_tuple)
    config: dict[str, Any] = attrs.field(factory=dict)
    created_at: float = attrs.field(factory=time.time)
