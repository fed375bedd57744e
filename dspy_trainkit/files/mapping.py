"""Turning a record from a file into example fields: field mapping, dotted paths, inputs versus outputs.

Two shapes of record are understood:

* example-shaped: it has an `inputs` mapping (what `trainkit export` writes): taken as it is, with
  `task`, `outputs`, `domain`, `topic`, `difficulty`, `metadata` when present;
* flat: `{"question": ..., "answer": ..., "topic": ...}`: each field goes to inputs or outputs by the
  `--input-fields` / `--output-fields` given, or by the task's declared fields (settings or signature).

`--map dest=source` renames first; `source` may be a dotted path into nested records (`meta.level`), `dest` a
field name, `inputs.NAME`, `outputs.NAME`, a label (`domain`, `topic`, `difficulty`) or `task`. Labels found
among the fields are copied to the example's labels (they may be inputs too, as in problem generation). Fields
that are neither inputs, outputs nor labels are kept in `metadata`, never dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import TrainkitError
from ..models import SOURCES

LABELS = ("domain", "topic", "difficulty")
#: Keys a rejects file adds to a record (position, reasons); ignored when the file is imported again.
REJECT_KEY_PREFIX = "_trainkit"
EXAMPLE_KEYS = ("task", "inputs", "outputs", *LABELS, "metadata", "source", "provenance")
_MISSING = object()


class MappingError(TrainkitError):
    """A record cannot be mapped to example fields."""


class FieldsMissing(MappingError):
    """A record has none of the fields the task declares (or the command line names). One such record is
    rejected; when most records of a file are, the import stops (see files.importing)."""


class FieldsUnknown(TrainkitError):
    """Flat records, but nothing says which fields are inputs: a configuration problem that every record would
    repeat, so it stops the import instead of rejecting each record."""


class TaskFieldsUnknown(FieldsMissing):
    """A flat record whose own `task` field names a task other than the import's, and nothing says which of its
    fields are inputs (the task declares no signature). One stray record is rejected alone; a file whose records
    mostly are like it stops as a file that does not fit its task does (see files.importing)."""


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`a.b.0`), or _MISSING."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _remove_path(record: dict[str, Any], path: str) -> None:
    """Delete the value at a dotted path, and parents left empty by that."""
    parts = path.split(".")
    parents = [record]
    for part in parts[:-1]:
        child = parents[-1].get(part) if isinstance(parents[-1], dict) else None
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(parts[-1], None)
    for depth in range(len(parts) - 1, 0, -1):
        if not parents[depth]:
            parents[depth - 1].pop(parts[depth - 1], None)


def parse_map_options(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`("question=q.text", ...)` -> `{"question": "q.text"}`, refusing malformed items."""
    renames: dict[str, str] = {}
    for item in items:
        dest, sep, source = item.partition("=")
        if not sep or not dest.strip() or not source.strip():
            raise TrainkitError(f"--map {item!r}: use DEST=SOURCE, e.g. --map question=q.text")
        renames[dest.strip()] = source.strip()
    return renames


@attrs.frozen(kw_only=True)
class FieldMap:
    """How flat records become examples for one import."""

    task: str | None = None
    renames: dict[str, str] = attrs.field(factory=dict)
    input_fields: tuple[str, ...] | None = None
    output_fields: tuple[str, ...] | None = None
    labels: dict[str, str] = attrs.field(factory=dict)  # defaults for domain/topic/difficulty
    task_fields: Any = None  # callable task name -> (inputs, outputs) | None, from settings

    def apply(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Example fields for `record`; raises MappingError naming the problem."""
        if not isinstance(record, Mapping):
            raise MappingError(f"expected a record with named fields, got {type(record).__name__}")
        marked = False  # one pass over the keys: every field name is text; any added by a rejects file?
        for key in record:
            if type(key) is not str and not isinstance(key, str):
                shown = "null" if key is None else f"{key!r} ({type(key).__name__})"
                raise MappingError(f"the field name {shown} is not text; quote it in the file")
            if not marked and key.startswith(REJECT_KEY_PREFIX):
                marked = True
        if marked:
            record = {k: v for k, v in record.items() if not k.startswith(REJECT_KEY_PREFIX)}
        if not record:
            raise MappingError("the record has no fields (an unfixed line from a rejects file?)")
        example_shaped = isinstance(record.get("inputs"), Mapping) and not self.input_fields
        fields = self._renamed(record)
        if fields.get("task") is not None and not isinstance(fields["task"], str):
            raise MappingError(f"task: expected a task name, got {type(fields['task']).__name__}")
        # a flat record's non-mapping `metadata` is an ordinary field (kept in metadata); parts are not
        for part in ("inputs", "outputs", "metadata") if example_shaped else ("inputs", "outputs"):
            if fields.get(part) is not None and not isinstance(fields[part], Mapping):
                raise MappingError(f"{part}: expected a mapping of field names to values, got "
                                   f"{type(fields[part]).__name__}")
        return self._example_shaped(fields) if example_shaped else self._flat(fields)

    def _renamed(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Apply `--map`: each mapped value moves to its destination; the rest of a nested record stays."""
        if not self.renames:
            return dict(record)
        fields = copy.deepcopy(dict(record))
        moved = {}
        for dest, source in self.renames.items():
            value = get_path(record, source)
            if value is _MISSING:
                raise MappingError(f"{source}: not found in the record (from --map {dest}={source})")
            moved[dest] = value
            _remove_path(fields, source)
        for dest, value in moved.items():
            part, _, name = dest.partition(".")
            if part in ("inputs", "outputs") and name:
                fields[part] = {**(fields.get(part) or {}), name: value}
            else:
                fields[dest] = value
        return fields

    def _example_shaped(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Taken as it is. `source` and `provenance` (from an export with --provenance, or a collection spill
        file) are kept when they are trainkit's own: a `source` that is not one of trainkit's goes to metadata."""
        fields = dict(fields)
        foreign: dict[str, Any] = {k: fields.pop(k) for k in ("source", "provenance") if k in fields and not (
            fields[k] in SOURCES if k == "source" else isinstance(fields[k], dict))}
        values = {k: fields[k] for k in EXAMPLE_KEYS if k in fields and fields[k] is not None}
        values.setdefault("outputs", {})
        extra = {**{k: v for k, v in fields.items() if k not in EXAMPLE_KEYS and k not in _EXPORT_ONLY},
                 **{k: v for k, v in foreign.items() if v is not None}}
        if extra:
            values["metadata"] = {**values.get("metadata", {}), **extra}
        return self._with_defaults(values)

    def _flat(self, fields: dict[str, Any]) -> dict[str, Any]:
        task = fields.get("task") or self.task
        declared = self.task_fields(task) if (self.task_fields and task) else None
        inputs_spec = self.input_fields or (declared[0] if declared else None)
        outputs_spec = self.output_fields or (declared[1] if declared else None)
        preset_inputs = dict(fields.pop("inputs", None) or {})
        preset_outputs = dict(fields.pop("outputs", None) or {})
        # a `metadata` mapping is the record's own metadata (as an export writes it), not a field to nest
        preset_metadata = dict(fields.pop("metadata")) if isinstance(fields.get("metadata"), dict) else {}
        if inputs_spec is None and outputs_spec is None and not preset_inputs:
            if fields.get("task") and fields["task"] != self.task:
                raise TaskFieldsUnknown(
                    f"task {task!r} (the record's own) declares no fields, so its inputs cannot be told from its "
                    "outputs: declare its signature in trainkit.toml, or correct the record's task")
            raise FieldsUnknown(f"cannot tell input fields from outputs for task {task!r}: give --input-fields "
                                "and/or --output-fields, or declare the task's signature in trainkit.toml")
        self._check_some_named(fields, preset_inputs, preset_outputs, task, inputs_spec, outputs_spec, declared)
        values: dict[str, Any] = {"task": task} if task else {}
        inputs, outputs, metadata = preset_inputs, preset_outputs, preset_metadata
        for name, value in fields.items():
            if name == "task":
                continue
            if inputs_spec is not None and name in inputs_spec:
                inputs[name] = value
            elif outputs_spec is not None and name in outputs_spec:
                outputs[name] = value
            elif inputs_spec is not None and outputs_spec is None and name not in LABELS:
                outputs[name] = value  # inputs named: the rest are outputs
            elif outputs_spec is not None and inputs_spec is None and name not in LABELS:
                inputs[name] = value  # outputs named: the rest are inputs
            elif name not in LABELS:
                metadata[name] = value
            if name in LABELS and value not in (None, ""):
                if isinstance(value, dict | list):  # its text would be a Python repr: say so instead
                    raise MappingError(f"{name}: a label is text or a number, got {type(value).__name__}")
                values[name] = str(value)
        values.update(inputs=inputs, outputs=outputs)
        if metadata:
            values["metadata"] = metadata
        missing = self._missing_named(inputs, outputs, declared)
        if missing:
            values["findings"] = missing
        return self._with_defaults(values)

    def _check_some_named(self, fields: Mapping[str, Any], preset_inputs: Mapping[str, Any],
                          preset_outputs: Mapping[str, Any], task: str | None, inputs_spec: Any, outputs_spec: Any,
                          declared: Any) -> None:
        """Refuse a record that has none of the fields named for the task: mapped anyway, every such record
        would have empty inputs and outputs, so all would share one content hash and look like duplicates of
        the first; the real cause is a signature (or --map) that does not match the file."""
        if inputs_spec is None or outputs_spec is None:  # one side named: the record's other fields are the other
            return
        for name in fields:  # the usual record has a named field: enough to know, without building sets
            if name != "task" and (name in inputs_spec or name in outputs_spec):
                return
        named = {*inputs_spec, *outputs_spec}
        has = {name for name in fields if name != "task"} | set(preset_inputs) | set(preset_outputs)
        if not named or has & named:
            return
        if declared is not None and (inputs_spec, outputs_spec) == tuple(declared):
            wanted = f"task {task!r} declares ({_arrow(declared)})"
        else:
            wanted = f"--input-fields / --output-fields name ({_arrow((inputs_spec, outputs_spec))})"
        shown = f"fields {', '.join(sorted(has))}" if has else "no fields"
        first = (list(inputs_spec) or list(outputs_spec))[0]
        raise FieldsMissing(f"the record has {shown} but none of the fields {wanted}; rename its fields with "
                            f"--map (e.g. --map {first}=FIELD), or give the --task, --input-fields "
                            "or --output-fields that match the file")

    def _missing_named(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any], declared: Any
                       ) -> list[dict[str, Any]]:
        """Error findings for the fields named by --input-fields / --output-fields that the record lacks:
        they are required, as the task's declared fields are (those the `basic_checks` validator checks)."""
        if not self.input_fields and not self.output_fields:  # nothing named on the command line
            return []
        findings = []
        for part, names, values, known in (("inputs", self.input_fields, inputs, declared[0] if declared else ()),
                                           ("outputs", self.output_fields, outputs, declared[1] if declared else ())):
            option = "--input-fields" if part == "inputs" else "--output-fields"
            for name in names or ():
                if name not in values and name not in known:
                    findings.append({"severity": "error", "code": "missing-field", "field": f"{part}.{name}",
                                     "plugin": "import", "message": f"{part}.{name} is required by {option}"})
        return findings

    def _with_defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        if self.task and "task" not in values:
            values["task"] = self.task
        for label, default in self.labels.items():
            values.setdefault(label, default)
        return values


def _arrow(fields: Any) -> str:
    """(inputs, outputs) as a signature reads: `question, context -> answer`."""
    return " -> ".join(", ".join(side) or "(none)" for side in fields)


#: Keys that `trainkit export --provenance` adds; they describe the stored copy, not the example's content.
_EXPORT_ONLY = frozenset({"id", "status", "scores", "quality", "findings", "content_hash", "created_at", "updated_at",
                          "last_used_at"})
