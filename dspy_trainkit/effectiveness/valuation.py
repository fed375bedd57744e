"""Running the value estimators (`value_signals` plugins), combining their signals per example, storing the
result, and reading stored values back.

`value(kit, task)` recomputes from the stored runs; `stored_values(kit, task)` reads what the last valuation
stored (fast on a large store: one indexed query), with `stale` set for examples changed since.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import NotFoundError, TrainkitError
from ..models import Event
from ..plugin_manager import call_each
from .evidence import Evidence
from .signals import ExampleValue, ValueSignal

if TYPE_CHECKING:
    from ..kit import Kit


@attrs.frozen
class ValueReport:
    """The outcome of a valuation: every valued example (lowest value first), the examples the evidence did
    not cover, the runs and candidates read, and each estimator's signal count."""

    task: str
    values: list[ExampleValue]
    uncovered: list[str]
    runs: int
    candidates: int
    estimators: dict[str, int]
    valuations: int = 0

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        return {"task": self.task, "runs": self.runs, "candidates": self.candidates, "estimators": self.estimators,
                "valuations": self.valuations, "valued": len(self.values), "uncovered": len(self.uncovered),
                "values": [v.to_dict() for v in (self.values if limit is None else self.values[:limit])]}


def value(kit: Kit, task: str, *, run: str | None = None, actor: str = "api", labels: Any = None) -> ValueReport:
    """Estimate every accepted example's value from `task`'s stored runs (or from run `run` alone), and from a
    label check when given one (`labels`, a LabelCheck), store the values (replacing the task's earlier ones,
    with an audit event) and return them."""
    if run is not None:
        record = kit.store.get_run(run)
        if record is None:
            raise NotFoundError(f"no optimization run {run!r}; `trainkit runs --task {task}` lists them")
        if record.get("task") != task or record.get("status") != "succeeded":
            raise TrainkitError(f"run {run} is a {record.get('status')} run of task {record.get('task')!r}: value "
                                f"task {task!r} from one of its successful runs (`trainkit runs --task {task}`)")
    evidence = Evidence(kit, task, run=run, labels=labels)
    by_example: dict[str, list[ValueSignal]] = defaultdict(list)
    estimators: dict[str, int] = {}
    for plugin, signals in call_each(kit.pm, "value_signals", task=task, evidence=evidence, context=kit):
        count = 0
        for signal in signals:
            if not isinstance(signal, ValueSignal):
                from ..errors import PluginError

                raise PluginError(f"plugin {plugin!r} returned {type(signal).__name__} from value_signals; "
                                  "return ValueSignal objects (dspy_trainkit.pluginkit.ValueSignal)",
                                  plugin=plugin, hook="value_signals")
            by_example[signal.example_id].append(signal)
            count += 1
        estimators[plugin] = count
    now = time.time()
    accepted = set(evidence.example_ids)  # a rejected or archived example is not valued, whatever its evidence
    changed = _changed_since(kit, task, evidence)
    values = sorted((attrs.evolve(ExampleValue.combine(task, example_id, signals, now),
                                  stale=example_id in changed)
                     for example_id, signals in by_example.items() if example_id in accepted),
                    key=lambda v: (v.value, v.example_id))
    covered = {v.example_id for v in values}
    uncovered = [i for i in evidence.example_ids if i not in covered]
    event = Event(kind="valued", example_ids=(), actor=actor, reason=f"value of {len(values)} example(s)",
                  details={"task": task, "run": run, "runs": len(evidence.runs),
                           "valuations": len(evidence.valuations), "estimators": estimators})
    kit.store.save_values(task, values, event)
    return ValueReport(task=task, values=values, uncovered=uncovered, runs=len(evidence.runs),
                       candidates=sum(len(p.candidates) for p in evidence.pools()), estimators=estimators,
                       valuations=len(evidence.valuations))


def _changed_since(kit: Kit, task: str, evidence: Evidence) -> set[str]:
    """Examples edited or re-decided after the newest run the evidence comes from: the candidates showed them
    as they were, so their values stay stale until new runs see them as they are."""
    newest = max((r.get("finished_at") or r.get("created_at") or 0.0 for r in evidence.runs), default=None)
    if newest is None:
        return set()
    from ..store import ExampleQuery

    return set(kit.store.iter_ids(ExampleQuery(task=task, where=[("updated_at", ">", newest)])))


def stored_values(kit: Kit, task: str, *, example_ids: Sequence[str] | None = None, order: str = "value",
                  limit: int | None = None) -> list[ExampleValue]:
    """The values the last valuation of `task` stored, lowest first (`order="-value"`: highest first)."""
    if order not in ("value", "-value", "example"):
        from ..errors import TrainkitError

        raise TrainkitError(f"order {order!r}: use value, -value or example")
    return list(kit.store.iter_values(task, example_ids=example_ids, order=order, limit=limit))
