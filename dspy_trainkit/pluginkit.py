"""Small helpers for writing plugins, so that built-in and third-party plugins do common things one way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kit import Kit
    from .models import Example


def check_each(examples: Sequence[Example], context: Kit, plugin: str, make_rules: Callable[[dict[str, Any]], Any],
               check: Callable[[Example, Any], list[Any]]) -> dict[int, list[Any]]:
    """The usual body of a `validate` hook: `check(example, rules)` for each example, where `rules` is built
    once per (task, domain) from the plugin's settings (`make_rules(kit.plugin_settings(plugin, task, domain))`);
    returns `{index: findings}` for the examples with findings."""
    rules_for: dict[tuple[str, str | None], Any] = {}
    found: dict[int, list[Any]] = {}
    for index, example in enumerate(examples):
        key = (example.task, example.domain)
        if key not in rules_for:
            rules_for[key] = make_rules(context.plugin_settings(plugin, example.task, example.domain))
        findings = check(example, rules_for[key])
        if findings:
            found[index] = findings
    return found
