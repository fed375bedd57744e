"""Recommendations: ranked, concrete actions on a task's data from the `recommend` rule plugins, and applying
one through the normal curation path (the audit trail names the recommendation).

A recommendation's id is a digest of what it says to do (task, kind, examples, status or command), so the same
advice has the same id from one `trainkit recommend` to the next and `--apply ID` applies exactly what was shown.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import NotFoundError, PluginError, TrainkitError
from ..plugin_manager import call_each

if TYPE_CHECKING:
    from ..kit import Kit


@attrs.frozen(kw_only=True)
class Recommendation:
    """One suggested action. Applicable ones give `status` (what the `example_ids` become); the others give a
    `command` to run. `priority` (0..1) ranks them; `evidence` holds the numbers behind the `reason`."""

    kind: str
    title: str
    reason: str
    priority: float = 0.5
    example_ids: tuple[str, ...] = attrs.field(default=(), converter=lambda ids: tuple(ids))
    status: str | None = None
    command: str | None = None
    evidence: dict[str, Any] = attrs.field(factory=dict)
    plugin: str | None = None
    id: str = ""

    @property
    def applicable(self) -> bool:
        return self.status is not None and bool(self.example_ids)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "title": self.title, "reason": self.reason,
                "priority": self.priority, "example_ids": list(self.example_ids), "status": self.status,
                "command": self.command, "evidence": self.evidence, "plugin": self.plugin,
                "applicable": self.applicable}


def recommend(kit: Kit, task: str) -> list[Recommendation]:
    """Every rule plugin's recommendations for `task`, named and ranked (highest priority first)."""
    found: list[Recommendation] = []
    for plugin, items in call_each(kit.pm, "recommend", task=task, context=kit):
        for item in items:
            if not isinstance(item, Recommendation):
                raise PluginError(f"plugin {plugin!r} returned {type(item).__name__} from recommend; return "
                                  "Recommendation objects (dspy_trainkit.pluginkit.Recommendation)",
                                  plugin=plugin, hook="recommend")
            found.append(attrs.evolve(item, plugin=plugin, id=_identity(task, item)))
    return sorted(found, key=lambda r: (-r.priority, r.kind, r.id))


def apply(kit: Kit, task: str, rec_id: str, *, actor: str = "api") -> tuple[Recommendation, int]:
    """Apply the current recommendation `rec_id` (or a unique start of it): give its examples its status through
    curation, with the recommendation named in the audit trail. Returns it and how many examples changed."""
    current = recommend(kit, task)
    if len(rec_id) < 4:
        raise TrainkitError(f"recommendation id {rec_id!r}: give at least 4 characters of it")
    matches = [r for r in current if r.id.startswith(rec_id)]
    if not matches:
        shown = ", ".join(r.id for r in current) or "none"
        raise NotFoundError(f"no current recommendation {rec_id!r} for task {task!r} (current: {shown}); "
                            f"`trainkit recommend --task {task}` lists them")
    if len(matches) > 1:
        raise TrainkitError(f"{rec_id!r} matches {len(matches)} recommendations; give more of the id")
    chosen = matches[0]
    if not chosen.applicable:
        raise TrainkitError(f"recommendation {chosen.id} ({chosen.title}) is not applied by trainkit: "
                            + (f"run `{chosen.command}`" if chosen.command else "it has nothing to change"))
    changed = kit.set_status(chosen.status, ids=list(chosen.example_ids), actor=actor,  # type: ignore[arg-type]
                             reason=f"recommendation {chosen.id}: {chosen.title}")
    return chosen, changed


def _identity(task: str, item: Recommendation) -> str:
    key = "\n".join([task, item.kind, item.status or "", item.command or "", *sorted(item.example_ids)])
    return hashlib.sha256(key.encode()).hexdigest()[:10]
