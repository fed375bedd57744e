"""Freshness: how old the data is and when it was last used, per task and cell; and marking examples as used
when a trainset is built (one `used` event per build, naming the snapshot or selection, through the store)."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..models import Event
from ..store import ExampleQuery

if TYPE_CHECKING:
    from ..kit import Kit

DAY = 86400.0
#: Age bands (days) of the distribution.
BANDS = ((7, "<7d"), (30, "7-30d"), (90, "30-90d"), (365, "90-365d"), (float("inf"), ">365d"))


def mark_used(kit: Kit, example_ids: Sequence[str], *, what: dict[str, Any], actor: str = "api") -> None:
    """Set `last_used_at` of the examples to now, recorded as one `used` event (details say what used them)."""
    ids = list(dict.fromkeys(example_ids))
    if not ids:
        return
    event = Event(kind="used", example_ids=ids, actor=actor, reason="trainset built", details=what)
    kit.store.mark_used(ids, event.time, event)
    kit.notify(event)


def _band(days: float) -> str:
    return next(label for limit, label in BANDS if days < limit)


def _summary(ages: list[float], used: list[float | None], now: float) -> dict[str, Any]:
    used_days = sorted((now - u) / DAY for u in used if u is not None)
    ages_days = sorted(ages)
    bands = {label: 0 for _, label in BANDS}
    for days in ages_days:
        bands[_band(days)] += 1
    used_bands = {label: 0 for _, label in BANDS}
    for days in used_days:
        used_bands[_band(days)] += 1
    return {
        "count": len(ages_days),
        "age_days": {"min": _r(ages_days[0]) if ages_days else None,
                     "median": _r(statistics.median(ages_days)) if ages_days else None,
                     "max": _r(ages_days[-1]) if ages_days else None, "bands": bands},
        "never_used": len(used) - len(used_days),
        "last_used_days": {"median": _r(statistics.median(used_days)) if used_days else None,
                           "bands": used_bands},
    }


def _r(value: float) -> float:
    return round(value, 2)


def report(kit: Kit, *, task: str | None = None, status: str | None = "accepted",
           now: float | None = None) -> dict[str, Any]:
    """Age and last-used distributions per task and per cell (domain/topic/difficulty)."""
    now = time.time() if now is None else now
    per_task: dict[str, tuple[list[float], list[float | None]]] = defaultdict(lambda: ([], []))
    per_cell: dict[tuple[Any, ...], tuple[list[float], list[float | None]]] = defaultdict(lambda: ([], []))
    for name, domain, topic, difficulty, created, last_used in kit.store.iter_times(
            ExampleQuery(task=task, status=status)):
        age = (now - created) / DAY
        for bucket in (per_task[name], per_cell[(name, domain, topic, difficulty)]):
            bucket[0].append(age)
            bucket[1].append(last_used)
    return {
        "status": status,
        "tasks": {name: _summary(a, u, now) for name, (a, u) in sorted(per_task.items())},
        "cells": [{"task": k[0], "domain": k[1], "topic": k[2], "difficulty": k[3], **_summary(a, u, now)}
                  for k, (a, u) in sorted(per_cell.items(), key=lambda kv: tuple(str(x) for x in kv[0]))],
    }
