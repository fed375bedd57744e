"""The plugin's settings: `[plugin.neardup]` with per-task and per-domain overrides, checked key by key.

    [plugin.neardup]
    threshold = 0.85        # Jaccard similarity at or above which an example is a near-duplicate
    severity = "error"      # "error" rejects it, "warning" keeps it for review
    [plugin.neardup.tasks.qa]
    threshold = 0.9
    [plugin.neardup.tasks.qa.domains.geometry]
    severity = "warning"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from dspy_trainkit.pluginkit import ConfigError

if TYPE_CHECKING:
    from dspy_trainkit.pluginkit import Kit

PLUGIN = "neardup"
DEFAULT_THRESHOLD = 0.85
DEFAULT_SEVERITY = "error"
SEVERITIES = ("error", "warning")
KEYS = ("severity", "threshold")


@attrs.frozen
class Rule:
    """What counts as a near-duplicate for one task and domain, and what happens to it."""

    threshold: float = DEFAULT_THRESHOLD
    severity: str = DEFAULT_SEVERITY


def _where(task: str | None, domain: str | None) -> str:
    where = f"plugin.{PLUGIN}"
    if task is not None:
        where += f".tasks.{task}"
        if domain is not None:
            where += f".domains.{domain}"
    return f"[{where}]"


def _check(table: Any, where: str) -> dict[str, Any]:
    """The table's own keys (not its nested `tasks`/`domains`), each checked."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table, got {type(table).__name__}")
    values = {k: v for k, v in table.items() if k not in ("tasks", "domains")}
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    if "threshold" in values:
        value = values["threshold"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise ConfigError(f"{where} threshold: {value!r} must be a number greater than 0 and at most 1 "
                              "(a Jaccard similarity, e.g. 0.85)")
    if "severity" in values and values["severity"] not in SEVERITIES:
        raise ConfigError(f"{where} severity: {values['severity']!r} must be one of {', '.join(SEVERITIES)}")
    return values


def check_all(kit: Kit) -> None:
    """Check every level of `[plugin.neardup]` (so a typo in a domain nobody has used yet is still found)."""
    base = kit.settings.plugin_config.get(PLUGIN, {})
    _check(base, _where(None, None))
    tasks = base.get("tasks", {}) or {}
    if not isinstance(tasks, dict):
        raise ConfigError(f"{_where(None, None)} tasks: must be a table of task names")
    for task, table in tasks.items():
        _check(table, _where(task, None))
        domains = table.get("domains", {}) or {}
        if not isinstance(domains, dict):
            raise ConfigError(f"{_where(task, None)} domains: must be a table of domain names")
        for domain, domain_table in domains.items():
            _check(domain_table, _where(task, domain))


def rule(kit: Kit, task: str, domain: str | None) -> Rule:
    """The rule for examples of `task` in `domain` (domain < task < base, each key inheriting)."""
    merged = kit.plugin_settings(PLUGIN, task, domain)
    return Rule(threshold=float(merged.get("threshold", DEFAULT_THRESHOLD)),
                severity=merged.get("severity", DEFAULT_SEVERITY))


def lowest_threshold(kit: Kit, task: str) -> float:
    """The lowest threshold any domain of `task` uses: the task's index must find candidates down to it."""
    base = kit.settings.plugin_config.get(PLUGIN, {})
    domains = ((base.get("tasks", {}) or {}).get(task, {}) or {}).get("domains", {}) or {}
    return min(rule(kit, task, domain).threshold for domain in (None, *domains))
