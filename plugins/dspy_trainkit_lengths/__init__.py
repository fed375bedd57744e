"""Built-in validator 'lengths': every input and output field stays within character bounds.

Why: a field of a few hundred thousand characters is almost always a mistake (a whole file pasted into one cell,
a runaway generation, a log dumped into an answer), and it costs prompt tokens in every optimizer run that draws
the example; a field that is too short for its purpose (a two-word "problem") is useless as a demonstration.
Bounds are counted in characters, so they mean the same for any tokenizer.

Settings, `[plugin.lengths]` in trainkit.toml, overridable per task and domain through
`[plugin.lengths.tasks.TASK]` and `[plugin.lengths.tasks.TASK.domains.DOMAIN]` (a key given there replaces the
whole key above it, `fields` included):

    min_chars = 0          # every field; 0 = no lower bound (empty values are basic_checks' business)
    max_chars = 100000     # every field; only absurd sizes are rejected by default
    severity = "error"     # or "warning": send to review instead of rejecting
    fields = { problem = { min_chars = 20, max_chars = 4000 }, "outputs.answer" = { max_chars = 200 } }

A `fields` key is a bare field name (matching it in inputs and outputs) or `inputs.NAME` / `outputs.NAME`;
the qualified form wins over the bare one, and both over the global bounds. Strings are measured by their
length; other values (numbers, lists, mappings) by the length of their compact JSON text; `None` counts as 0.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dspy_trainkit import ConfigError, Finding, hookimpl
from dspy_trainkit.pluginkit import check_each, unknown_settings

if TYPE_CHECKING:
    from dspy_trainkit import Example, Kit

NAME = "lengths"
DEFAULTS: dict[str, Any] = {"min_chars": 0, "max_chars": 100_000, "severity": "error", "fields": {}}
SEVERITIES = ("error", "warning")
_BOUND_KEYS = ("min_chars", "max_chars")


class Rules:
    """The bounds in force for one (task, domain): global bounds plus per-field overrides."""

    __slots__ = ("min_chars", "max_chars", "severity", "by_field")

    def __init__(self, config: dict[str, Any]):
        merged = unknown_settings(NAME, config, DEFAULTS)
        self.min_chars = _bound(merged["min_chars"], "min_chars")
        self.max_chars = _bound(merged["max_chars"], "max_chars")
        _check_order(self.min_chars, self.max_chars, "")
        self.severity = merged["severity"]
        if self.severity not in SEVERITIES:
            raise ConfigError(f"[plugin.{NAME}] severity = {self.severity!r}: use one of {', '.join(SEVERITIES)}")
        fields = merged["fields"]
        if not isinstance(fields, dict):
            raise ConfigError(f"[plugin.{NAME}] fields must be a table of field name to "
                              "{ min_chars = N, max_chars = N }")
        self.by_field: dict[str, tuple[int, int]] = {}
        for name, bounds in fields.items():
            where = f"fields.{name}"
            if not isinstance(bounds, dict) or set(bounds) - set(_BOUND_KEYS):
                raise ConfigError(f"[plugin.{NAME}] {where} must be a table with min_chars and/or max_chars")
            low = _bound(bounds.get("min_chars", self.min_chars), f"{where}.min_chars")
            high = _bound(bounds.get("max_chars", self.max_chars), f"{where}.max_chars")
            _check_order(low, high, f"{where}.")
            self.by_field[name] = (low, high)

    def bounds(self, name: str, qualified: str) -> tuple[int, int]:
        by_field = self.by_field
        if by_field:
            found = by_field.get(qualified) or by_field.get(name)
            if found is not None:
                return found
        return self.min_chars, self.max_chars


def _bound(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"[plugin.{NAME}] {key} = {value!r}: use a whole number >= 0")
    return value


def _check_order(low: int, high: int, prefix: str) -> None:
    if low > high:
        raise ConfigError(f"[plugin.{NAME}] {prefix}min_chars = {low} is above {prefix}max_chars = {high}")


def measure(value: Any) -> int:
    """Characters of a value: a string's length, else the length of its compact JSON text (None is 0)."""
    if type(value) is str:
        return len(value)
    if value is None:
        return 0
    try:
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    except (TypeError, ValueError):
        return len(str(value))


def check_example(example: Any, rules: Rules) -> list[Finding]:
    """Length findings for one example under `rules`."""
    findings: list[Finding] = []
    low_default, high_default, by_field = rules.min_chars, rules.max_chars, rules.by_field
    for part, values in (("inputs", example.inputs), ("outputs", example.outputs)):
        for name, value in values.items():
            size = len(value) if type(value) is str else measure(value)
            low, high = rules.bounds(name, f"{part}.{name}") if by_field else (low_default, high_default)
            if low <= size <= high:
                continue
            qualified = f"{part}.{name}"
            if size > high:
                findings.append(Finding(severity=rules.severity, code="too-long", field=qualified,
                                        message=f"{qualified} is {size:,} characters long, above max_chars {high:,}"))
            else:
                findings.append(Finding(severity=rules.severity, code="too-short", field=qualified,
                                        message=f"{qualified} is {size:,} characters long, below min_chars {low:,}"))
    return findings


@hookimpl
def validate(examples: list[Example], context: Kit) -> dict[int, list[Finding]]:
    """Findings per index in `examples`, with each example's task and domain settings."""
    return check_each(examples, context, NAME, Rules, check_example)
