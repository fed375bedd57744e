"""Built-in DSPy bridge: stored examples to `dspy.Example` (checked against the task's Signature), the
`dspy` export format, and `dspy.Example` records back into the store through `collect`.

DSPy fails quietly when an example's inputs are not marked or its field names do not match the signature: the
program then sees empty inputs or compares against missing labels. Here the task's Signature (settings:
`signature = "a, b -> c"` or `"package.module:SignatureClass"`, or the `signature` option) is checked first:
a signature field that no example has is an error naming the fields that do exist; an example missing a field
that others have is skipped and reported. DSPy is imported only when a conversion runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

import orjson

from dspy_trainkit import ValidationError, hookimpl
from dspy_trainkit.pluginkit import ConversionError, ConversionResult, FormatError, WriteOptions, signature_fields

#: Keys DSPy adds to examples for its own bookkeeping; they are not part of the content.
DSPY_INTERNAL_KEYS = frozenset({"dspy_uuid", "dspy_split", "augmented"})


def task_signature_fields(kit: Any, task: str, options: dict[str, Any]) -> tuple[list[str], list[str]] | None:
    """(inputs, outputs) of the signature to check against, or None when the task declares none."""
    spec = options.get("signature") or kit.settings.task(task).signature
    if spec is not None:
        inputs, outputs = signature_fields(spec, kit.settings.project_dir)  # DSPy's parse, strings too
        return list(inputs), list(outputs)
    declared = kit.task_fields(task)
    return (list(declared[0]), list(declared[1])) if declared else None


def check_fields(examples: list[Any], fields: tuple[list[str], list[str]], task: str) -> list[tuple[str, str]]:
    """Raise for a signature field no example has; return (id, reason) for examples missing some field.
    Examples share a few shapes (their field names): each shape is checked once, not each example."""
    inputs, outputs = fields
    missing_of: dict[tuple[Any, ...], list[str]] = {}  # shape -> what the signature needs that it lacks
    seen_inputs: set[str] = set()
    seen_outputs: set[str] = set()
    skipped = []
    for ex in examples:
        shape = (*ex.inputs, None, *ex.outputs)
        missing = missing_of.get(shape)
        if missing is None:
            seen_inputs.update(ex.inputs)
            seen_outputs.update(ex.outputs)
            missing = [f"input {n!r}" for n in inputs if n not in ex.inputs]
            missing += [f"output {n!r}" for n in outputs if n not in ex.outputs]
            missing_of[shape] = missing
        if missing:
            skipped.append((ex.id, f"missing {', '.join(missing)} required by the signature"))
    for kind, wanted, seen in (("input", inputs, seen_inputs), ("output", outputs, seen_outputs)):
        absent = [name for name in wanted if name not in seen]
        if absent and examples:
            raise ConversionError(
                f"task {task!r}: signature {kind} field(s) {', '.join(absent)} are in none of the "
                f"{len(examples)} examples, whose {kind}s are {', '.join(sorted(seen)) or 'empty'}; fix the "
                "signature in trainkit.toml or map the fields when importing")
    return skipped


def to_dspy(example: Any) -> Any:
    """`dspy.Example(**inputs, **outputs).with_inputs(*inputs)`, the public way (see `dspy_builder`)."""
    import dspy

    return dspy.Example(**example.inputs, **example.outputs).with_inputs(*example.inputs)


def dspy_builder() -> Any:
    """A function `(inputs, outputs) -> dspy.Example` equal to `to_dspy`, but made without DSPy's two
    constructions and copy per example (`with_inputs` copies the example it is called on), which were most of
    the time of a million-example trainset. The attributes are set directly, and only when that gives exactly
    what the public way gives (same class, same attributes in the same order, checked on a probe example at
    each call): under a DSPy whose Example is built differently every example is made the public way."""
    import dspy

    cls = dspy.Example
    new = object.__new__
    set_attr = object.__setattr__

    def public(inputs: dict[str, Any], outputs: dict[str, Any]) -> Any:
        return cls(**inputs, **outputs).with_inputs(*inputs)

    def direct(inputs: dict[str, Any], outputs: dict[str, Any]) -> Any:
        if "base" in inputs or "base" in outputs:  # dspy.Example(base=...) reads it as the example to copy
            return public(inputs, outputs)
        made = new(cls)
        set_attr(made, "__dict__", {"_store": {**inputs, **outputs}, "_demos": [], "_input_keys": set(inputs)})
        return made

    probe = ({"question": "q", "context": ["c"]}, {"answer": "a"})
    expected, got = public(*probe), direct(*probe)
    same = (type(got) is type(expected)
            and list(vars(got)) == list(vars(expected))
            and all(type(a) is type(b) and a == b for a, b in zip(vars(got).values(), vars(expected).values(),
                                                                 strict=True)))
    return direct if same else public


def wrapped(kit: Any) -> bool:
    """Whether a hook wrapper surrounds `convert`: it may read the examples after this plugin returns, so they
    are then left in the list."""
    impls = kit.pm.hook.convert.get_hookimpls()
    return any(getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False) for impl in impls)


def signature_misfits(examples: list[Any], kit: Any, options: dict[str, Any]) -> list[tuple[str, str]]:
    """`check_fields` per task (a function of its own, so no list of examples outlives it)."""
    skipped: list[tuple[str, str]] = []
    by_task: dict[str, list[Any]] = {}
    for ex in examples:
        by_task.setdefault(ex.task, []).append(ex)
    for task, task_examples in by_task.items():
        fields = task_signature_fields(kit, task, options)
        if fields is not None:
            skipped += check_fields(task_examples, fields, task)
    return skipped


@hookimpl
def convert(examples, target, context, options):
    if target != "dspy":
        return None
    skipped = signature_misfits(examples, context, options)
    left_out = {example_id for example_id, _ in skipped}
    build = dspy_builder()
    release = not wrapped(context)
    items = []
    for n, ex in enumerate(examples):
        if not left_out or ex.id not in left_out:
            items.append(build(ex.inputs, ex.outputs))
        if release:  # the list is this call's own: release each example once converted (hookspecs)
            examples[n] = None
    return ConversionResult(items=items, skipped=skipped)


@hookimpl
def collect(record, context):
    """A `dspy.Example` with its inputs marked becomes example fields (task and labels from the caller)."""
    if type(record).__module__.split(".")[0] != "dspy" or not hasattr(record, "_input_keys"):
        return None
    input_keys = record._input_keys
    if not input_keys:
        raise ValidationError("a dspy.Example without marked inputs: call .with_inputs('field', ...) first, "
                              "so trainkit knows inputs from labels")
    data = {k: v for k, v in record.items() if k not in DSPY_INTERNAL_KEYS}
    return {"inputs": {k: v for k, v in data.items() if k in input_keys},
            "outputs": {k: v for k, v in data.items() if k not in input_keys}}


def write_dspy(examples: Iterable[Any], stream: IO[bytes], options: WriteOptions) -> int:
    """`{"format", "task", "examples": [flat records], "input_keys"}`; one task per file.

    `input_keys` comes last: it is the union of every example's input names (or the task's declared inputs),
    known only once all examples are written. Load it back with DSPy alone:
        d = json.load(open(path)); trainset = [dspy.Example(**e).with_inputs(*d["input_keys"]) for e in d["examples"]]
    """
    count, task = 0, None
    declared = None
    inputs_seen: dict[str, None] = {}
    outputs_seen: set[str] = set()
    shapes: set[tuple[Any, ...]] = set()
    last_inputs: Any = None  # the field names of the last example checked: most examples share them
    last_outputs: Any = None
    dumps, write = orjson.dumps, stream.write
    for example in examples:
        if example.task != task:
            if task is not None:
                raise FormatError(f"the dspy format holds one task per file, found {task!r} and "
                                  f"{example.task!r}; export with --task")
            task = example.task
            declared = options.task_fields.get(task)
            stream.write(b'{"format": "dspy-trainkit/dspy-examples", "task": ' + orjson.dumps(task)
                         + b', "examples": [')
        inputs, outputs = example.inputs, example.outputs
        if inputs.keys() != last_inputs or outputs.keys() != last_outputs:  # set comparisons, no tuple
            last_inputs, last_outputs = inputs.keys(), outputs.keys()
            shape = (*inputs, None, *outputs)  # field names repeat: check each shape once
            if shape not in shapes:
                shapes.add(shape)
                inputs_seen.update(dict.fromkeys(inputs))
                outputs_seen.update(outputs)
                clash = set(inputs_seen) & outputs_seen
                if clash:
                    raise FormatError(f"field(s) {', '.join(sorted(clash))} are inputs in some examples and "
                                      "outputs in others; a flat dspy.Example file cannot mark them: export jsonl "
                                      "instead")
        write((b",\n  " if count else b"\n  ") + dumps({**inputs, **outputs}))  # no provenance in a flat record
        count += 1
    input_keys = list(declared[0]) if declared else list(inputs_seen)
    if task is None:
        stream.write(b'{"format": "dspy-trainkit/dspy-examples", "task": null, "examples": [')
    stream.write(b'\n], "input_keys": ' + orjson.dumps(input_keys) + b"}\n")
    return count


@hookimpl
def export_format(register):
    register("dspy", ("dspy.json",), write_dspy, columns=("task", "inputs", "outputs"))
