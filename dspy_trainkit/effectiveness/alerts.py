"""Alerts: conditions worth someone's attention, checked by rule plugins (`alert_rules`), stored with one open
alert per (task, rule), and delivered once when raised through channel plugins (`on_alert`).

An alert is `open` while its condition holds, `acknowledged` once someone said they saw it (it stays so while
the condition holds, and is not delivered again), and `resolved` when a check finds the condition gone; the
next time it holds, that is a new alert.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import NotFoundError, PluginError, TrainkitError
from ..ids import new_id
from ..plugin_manager import call_impls, hook_impls

if TYPE_CHECKING:
    from ..kit import Kit

log = logging.getLogger(__name__)
SEVERITIES = ("info", "warning", "critical")
STATUSES = ("open", "acknowledged", "resolved")


@attrs.frozen(kw_only=True)
class AlertSignal:
    """What a rule says holds now for a task."""

    rule: str
    title: str
    message: str
    severity: str = attrs.field(default="warning", validator=attrs.validators.in_(SEVERITIES))
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Alert:
    """A stored alert. `key` (task + rule) names its condition: at most one alert per key is not resolved."""

    task: str
    rule: str
    title: str
    message: str
    severity: str = "warning"
    details: dict[str, Any] = attrs.field(factory=dict)
    plugin: str = ""
    status: str = "open"
    count: int = 1
    first_seen: float = attrs.field(factory=time.time)
    last_seen: float = attrs.field(factory=time.time)
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    resolved_at: float | None = None
    id: str = attrs.field(factory=new_id)

    @property
    def key(self) -> str:
        return condition_key(self.task, self.rule)

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "key": self.key}


@attrs.frozen
class CheckReport:
    """What a check did: alerts raised (new, delivered), still holding (updated), resolved."""

    raised: list[Alert]
    holding: list[Alert]
    resolved: list[Alert]

    def to_dict(self) -> dict[str, Any]:
        return {name: [a.to_dict() for a in getattr(self, name)] for name in ("raised", "holding", "resolved")}


def condition_key(task: str, rule: str) -> str:
    return hashlib.sha256(f"{task}\n{rule}".encode()).hexdigest()[:16]


def check(kit: Kit, tasks: Iterable[str] | None = None) -> CheckReport:
    """Run every rule plugin for each task (default: every configured or stored task), store what holds, resolve
    what no longer does, and deliver the new alerts."""
    raised: list[Alert] = []
    holding: list[Alert] = []
    resolved: list[Alert] = []
    now = time.time()
    for task in sorted(set(tasks) if tasks is not None else _known_tasks(kit)):
        open_by_key = {a.key: a for a in kit.store.list_alerts(task=task, statuses=("open", "acknowledged"))}
        for impl in hook_impls(kit.pm, "alert_rules"):
            try:
                results = call_impls([impl], "alert_rules", task=task, context=kit)
            except PluginError as exc:
                log.error("%s; its alerts for task %s are left as they are", exc, task)
                continue
            signals = results[0][1] if results else []
            firing: set[str] = set()
            for signal in signals or ():
                if not isinstance(signal, AlertSignal):
                    raise PluginError(f"plugin {impl.plugin_name!r} returned {type(signal).__name__} from "
                                      "alert_rules; return AlertSignal objects", plugin=impl.plugin_name,
                                      hook="alert_rules")
                key = condition_key(task, signal.rule)
                firing.add(key)
                current = open_by_key.get(key)
                if current is None:
                    alert = Alert(task=task, rule=signal.rule, title=signal.title, message=signal.message,
                                  severity=signal.severity, details=signal.details, plugin=impl.plugin_name,
                                  first_seen=now, last_seen=now)
                    kit.store.save_alert(alert)
                    raised.append(alert)
                else:
                    alert = attrs.evolve(current, title=signal.title, message=signal.message,
                                         severity=signal.severity, details=signal.details, last_seen=now,
                                         count=current.count + 1)
                    kit.store.save_alert(alert)
                    holding.append(alert)
            for key, current in open_by_key.items():
                if current.plugin == impl.plugin_name and key not in firing:
                    gone = attrs.evolve(current, status="resolved", resolved_at=now)
                    kit.store.save_alert(gone)
                    resolved.append(gone)
    for alert in raised:
        deliver(kit, alert)
    return CheckReport(raised=raised, holding=holding, resolved=resolved)


def deliver(kit: Kit, alert: Alert) -> None:
    """Give a new alert to every channel plugin; a channel that fails is logged and the others still get it."""
    for impl in hook_impls(kit.pm, "on_alert"):
        try:
            call_impls([impl], "on_alert", alert=alert, context=kit)
        except PluginError as exc:
            log.error("%s (alert %s: %s)", exc, alert.id, alert.title)


def acknowledge(kit: Kit, alert_id: str, *, actor: str = "api") -> Alert:
    """Mark an open alert acknowledged (by its id or a unique end of it)."""
    matches = [a for a in kit.store.list_alerts(statuses=("open", "acknowledged"))
               if a.id == alert_id or (len(alert_id) >= 4 and a.id.endswith(alert_id))]
    if not matches:
        raise NotFoundError(f"no open alert {alert_id!r}; `trainkit alerts` lists them")
    if len(matches) > 1:
        raise TrainkitError(f"{alert_id!r} matches {len(matches)} alerts; give more of the id")
    alert = attrs.evolve(matches[0], status="acknowledged", acknowledged_by=actor, acknowledged_at=time.time())
    kit.store.save_alert(alert)
    return alert


def _known_tasks(kit: Kit) -> set[str]:
    return set(kit.settings.tasks) | {key[0] for key, _ in kit.store.group_counts(["task"], _all())}


def _all() -> Any:
    from ..store import ExampleQuery

    return ExampleQuery()
