"""Built-in validators every task gets: declared fields present, no empty values, no undeclared fields.

A task declares its fields with `inputs`/`outputs` or a `signature` in trainkit.toml. Without a declaration
only emptiness is checked. Missing or empty inputs are errors (the example cannot be used); a missing or empty
output is an error too, since labels are what a trainset is for; an undeclared field is a warning, because
DSPy would silently ignore it.
"""

from __future__ import annotations

from dspy_trainkit import Finding, hookimpl


def _empty(value: object) -> bool:
    return value is None or (isinstance(value, str | list | dict | tuple) and not (
        value.strip() if isinstance(value, str) else value))


def check_example(example, declared) -> list[Finding]:
    """Findings for one example against its task's declared (inputs, outputs), or None if undeclared."""
    findings: list[Finding] = []
    for part, values in (("inputs", example.inputs), ("outputs", example.outputs)):
        for name, value in values.items():
            if (not value.strip()) if type(value) is str else _empty(value):  # text first: most values are
                findings.append(Finding(severity="error", code="empty-value", field=f"{part}.{name}",
                                        message=f"{part}.{name} is empty"))
    if declared is None:
        if not example.inputs:
            findings.append(Finding(severity="error", code="no-inputs", field="inputs",
                                    message="the example has no input fields"))
        return findings
    for part, names, values in (("inputs", declared[0], example.inputs), ("outputs", declared[1], example.outputs)):
        for name in names:
            if name not in values:
                findings.append(Finding(severity="error", code="missing-field", field=f"{part}.{name}",
                                        message=f"{part}.{name} is required by task {example.task!r}"))
        for name in values:
            if name not in names:
                findings.append(Finding(severity="warning", code="undeclared-field", field=f"{part}.{name}",
                                        message=f"{part}.{name} is not declared for task {example.task!r}"))
    return findings


@hookimpl
def validate(examples, context):
    declared_by_task = {}
    found = {}
    for index, example in enumerate(examples):
        if example.task not in declared_by_task:
            declared_by_task[example.task] = context.task_fields(example.task)
        findings = check_example(example, declared_by_task[example.task])
        if findings:
            found[index] = findings
    return found
