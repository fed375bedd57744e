"""Cleanup: the `TrainingDataManager` plans and applies the policies of `[cleanup]` (per task overrides in
`[tasks.T.cleanup]`) to live examples (accepted and candidate):

* `max_age_days`: created more than N days ago;
* `min_quality`: scored below the threshold (unscored examples are left alone);
* `superseded`: a near-duplicate of a better example (higher quality, then accepted before candidate, then
  older; each cluster keeps its best). A plugin decides it through the `cleanup_policies` hook (the built-in
  neardup plugin, with its similarity and threshold): the core never imports a plugin;
* `over_full`: accepted examples beyond the cell's `cell_cap`, the lowest quality first.

Nothing is deleted: examples are archived through the changes API, batch by batch, with `cleanup: POLICY` as
the reason, so the audit trail and `on_data_changed` see every one. A snapshot holding an archived example
still reads it (it keeps its own copy). A cleanup interrupted at any point is finished by running it again:
the plan is made afresh from what is live.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import attrs

from .. import curation as changes
from ..store import ExampleQuery
from .balance import CELL_COLUMNS, cell_where

if TYPE_CHECKING:
    from ..kit import Kit

POLICIES = ("max_age_days", "min_quality", "superseded", "over_full")
#: Policies a plugin decides (hook `cleanup_policies`), with the plugin that provides each built in.
PLUGIN_POLICIES = {"superseded": "neardup"}
LIVE = (("status", "!=", "rejected"), ("status", "!=", "archived"))
DAY = 86400.0


@attrs.frozen
class Action:
    """One example the cleanup archives, the policy that decided it and why."""

    example_id: str
    task: str
    policy: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class TrainingDataManager:
    """Cleanup and freshness for one open kit: `plan()` says what the policies would archive, `apply()` does it.

        manager = kit.manager
        actions = manager.plan(task="qa")          # a dry run
        manager.apply(actions, actor="nightly")    # archives them, reason "cleanup: <policy>"
    """

    def __init__(self, kit: Kit):
        self.kit = kit

    # -- planning ------------------------------------------------------------------------------------------
    def plan(self, *, task: str | None = None, policies: Iterable[str] | None = None,
             now: float | None = None) -> list[Action]:
        """What the configured policies would archive now (nothing is changed)."""
        now = time.time() if now is None else now
        chosen = tuple(policies) if policies is not None else POLICIES
        unknown = [p for p in chosen if p not in POLICIES]
        if unknown:
            from ..errors import ConfigError

            raise ConfigError(f"unknown cleanup policy {unknown[0]!r}; policies: {', '.join(POLICIES)}")
        tasks = [task] if task else [k[0] for k, _ in self.kit.store.group_counts(["task"], ExampleQuery(where=LIVE))]
        actions: list[Action] = []
        for name in tasks:
            actions.extend(self._plan_task(name, chosen, now))
        return actions

    def _plan_task(self, task: str, policies: tuple[str, ...], now: float) -> list[Action]:
        settings = self.kit.settings.cleanup_for(task)
        planned: dict[str, Action] = {}
        store = self.kit.store
        if "max_age_days" in policies and settings.max_age_days is not None:
            cutoff = now - settings.max_age_days * DAY
            for ex_id in store.iter_ids(ExampleQuery(task=task, where=(*LIVE, ("created_at", "<", cutoff)))):
                planned[ex_id] = Action(ex_id, task, "max_age_days", f"older than {settings.max_age_days} days")
        if "min_quality" in policies and settings.min_quality is not None:
            for ex_id in store.iter_ids(ExampleQuery(task=task,
                                                     where=(*LIVE, ("quality", "<", settings.min_quality)))):
                planned.setdefault(ex_id, Action(ex_id, task, "min_quality", f"quality below {settings.min_quality}"))
        if "superseded" in policies and settings.superseded:
            for action in self._from_plugin("superseded", task, set(planned)):
                planned.setdefault(action.example_id, action)
        if "over_full" in policies and settings.over_full:
            for action in self._over_full(task, set(planned)):
                planned.setdefault(action.example_id, action)
        return sorted(planned.values(), key=lambda a: (POLICIES.index(a.policy), a.example_id))

    def _from_plugin(self, policy: str, task: str, excluded: set[str]) -> list[Action]:
        """The actions of a policy a plugin registered through `cleanup_policies`; a clear error when none did."""
        from ..plugin_manager import call_impls, timeout_of

        registered = _registered_policies(self.kit.pm)
        planner = registered.get(policy)
        if planner is None:
            from ..errors import ConfigError

            provider = PLUGIN_POLICIES[policy]
            info = getattr(self.kit.pm, "infos", {}).get(provider)
            state = "not installed" if info is None else info.status if info.status != "loaded" else \
                "loaded but registered no such policy"
            raise ConfigError(f"cleanup policy {policy!r} (task {task!r}) uses the {provider} plugin, which is "
                              f"{state}: enable the plugin, or set {policy} = false in [cleanup] "
                              f"(or [tasks.{task}.cleanup])")
        plan = planner.value
        # called like a hook of its plugin: errors name the plugin, and the per-call time limit applies
        impl = SimpleNamespace(plugin_name=planner.plugin, argnames=("kit", "task", "excluded"),
                               function=lambda kit, task, excluded: [(str(i), str(d)) for i, d in
                                                                     plan(kit, task, excluded)])
        found = call_impls([impl], "cleanup_policies", timeout=timeout_of(self.kit.pm), kit=self.kit, task=task,
                           excluded=frozenset(excluded))
        pairs = found[0][1] if found else []
        return [Action(example_id, task, policy, detail) for example_id, detail in pairs
                if example_id not in excluded]

    def _over_full(self, task: str, excluded: set[str]) -> list[Action]:
        cap = self.kit.settings.task(task).cell_cap
        if cap is None:
            self.kit.log.warning("cleanup: policy over_full needs tasks.%s.cell_cap; skipped for %s", task, task)
            return []
        query = ExampleQuery(task=task, status="accepted")
        actions: list[Any] = []
        for key, count in self.kit.store.group_counts(list(CELL_COLUMNS), query):
            if count <= cap:
                continue
            ids = [i for i in self.kit.store.iter_ids(attrs.evolve(query, where=cell_where(tuple(key)),
                                                                   order="-quality")) if i not in excluded]
            label = "/".join(v or "-" for v in key)
            actions.extend(Action(i, task, "over_full", f"beyond cell_cap {cap} of cell {label}")
                           for i in ids[cap:])
        return actions

    # -- applying ------------------------------------------------------------------------------------------
    def apply(self, actions: list[Action], *, actor: str = "cleanup",
              progress: Callable[[int], None] | None = None) -> dict[str, int]:
        """Archive the planned examples, one batch (transaction and event) at a time (`changes.set_status`
        batches), each policy named as the reason; returns how many each policy archived."""
        by_policy: dict[str, list[str]] = defaultdict(list)
        for action in actions:
            by_policy[action.policy].append(action.example_id)
        done: dict[str, int] = {}
        total = 0
        for policy, ids in by_policy.items():
            query = ExampleQuery(ids=tuple(ids), where=LIVE)  # anything archived meanwhile is left as it is
            step = None if progress is None else (lambda seen, before=total: progress(before + seen))
            done[policy] = changes.set_status(self.kit, query, "archived", actor=actor, reason=f"cleanup: {policy}",
                                              progress=step)
            total += len(ids)
            if progress is not None:
                progress(total)  # planned examples archived meanwhile count as handled too
        return done

    def run(self, *, task: str | None = None, dry_run: bool = False, actor: str = "cleanup",
            progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Plan and (unless `dry_run`) apply; the result lists every action and how many snapshots keep them."""
        actions = self.plan(task=task)
        held = self.kit.store.snapshots_holding([a.example_id for a in actions]) if actions else {}
        result: dict[str, Any] = {"dry_run": dry_run, "actions": [a.to_dict() for a in actions],
                                  "by_policy": dict(sorted(_count(actions).items())),
                                  "in_snapshots": len(held)}
        if not dry_run and actions:
            result["archived"] = self.apply(actions, actor=actor, progress=progress)
        return result

    def freshness(self, *, task: str | None = None, status: str | None = "accepted") -> dict[str, Any]:
        from . import freshness

        return freshness.report(self.kit, task=task, status=status)

    def balance(self, *, task: str | None = None) -> list[dict[str, Any]]:
        from . import balance

        return [row.to_dict() for row in balance.report(self.kit, task=task)]


def _registered_policies(pm: Any) -> dict[str, Any]:
    """The policies plugins registered through `cleanup_policies`: name -> Registration (the planner, the plugin)."""
    from ..plugin_manager import Registration, collect_registrations

    def make(plugin: str, name: Any, plan: Any) -> Registration:
        if name not in PLUGIN_POLICIES:
            raise ValueError(f"policy {name!r} is not one a plugin decides; known: {', '.join(PLUGIN_POLICIES)}")
        if not callable(plan):
            raise TypeError(f"policy {name!r}: plan must be callable as plan(kit, task, excluded)")
        return Registration(key=name, value=plan, plugin=plugin)

    return collect_registrations(pm, "cleanup_policies", make)


def _count(actions: list[Action]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for action in actions:
        counts[action.policy] += 1
    return counts
