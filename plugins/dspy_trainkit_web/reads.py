"""What each page shows, read from the kit in the kit's thread: plain functions `(kit, ...) -> dict` that the
routes hand to templates. No web framework here, so they can be tested and benchmarked on their own."""

from __future__ import annotations

import collections
import re
import time
from typing import Any

from dspy_trainkit.pluginkit import ExampleQuery, NotFoundError, redact, redact_data

PAGE = 50
#: the quality page's per-dimension distributions read this many of the newest examples (a full read of a
#: million examples' score JSON takes seconds; the heatmap and counts below use the whole store)
SAMPLE = 5000
#: the filter form suggests the domain, topic and difficulty values of this many of the newest examples
SUGGEST = 1000
BINS = 10
_ID = re.compile(r"\b[0-9a-f]{32}\b")
FILTERS = ("task", "status", "source", "domain", "topic", "difficulty")


#: seconds a slow, slowly changing read is reused (the task list, each task's readiness, the filter form's label
#: suggestions): on a million examples each is a full scan costing seconds, and pages showing them are opened
#: over and over. Counts, listings and the audit trail are always read fresh.
CACHE_TTL = 60.0
_cache: dict[tuple[int, str, Any], tuple[float, Any]] = {}


def cached(kit: Any, name: str, key: Any, read: Any) -> Any:
    """`read()`, or its result from less than CACHE_TTL seconds ago (per kit; reads run in the kit's thread)."""
    slot = (id(kit), name, key)
    hit = _cache.get(slot)
    if hit is not None and time.monotonic() - hit[0] < CACHE_TTL:
        return hit[1]
    value = read()
    _cache[slot] = (time.monotonic(), value)
    return value


def forget(kit: Any) -> None:
    """Drop what `cached` keeps for this kit: after the dashboard itself changed data, its pages show it."""
    for slot in [slot for slot in _cache if slot[0] == id(kit)]:
        del _cache[slot]


def tasks(kit: Any) -> list[str]:
    def read() -> list[str]:
        return sorted(set(kit.store.distinct_values("task")) | set(kit.settings.tasks))

    return list(cached(kit, "tasks", None, read))


def readiness(kit: Any, task: str) -> list[Any]:
    return list(cached(kit, "readiness", task, lambda: kit.readiness(task)))


def overview(kit: Any) -> dict[str, Any]:
    """Per task: counts by status and source, readiness, champion and its trend; open alerts; recent events."""
    by_status: dict[str, dict[str, int]] = collections.defaultdict(dict)
    by_source: dict[str, dict[str, int]] = collections.defaultdict(dict)
    for (task, status, source), n in kit.store.group_counts(["task", "status", "source"], ExampleQuery()):
        by_status[task][status] = by_status[task].get(status, 0) + n  # one scan for both tables
        by_source[task][source] = by_source[task].get(source, 0) + n
    rows = []
    for task in tasks(kit):
        runs = [r for r in kit.runs(task) if r.score is not None]
        rows.append({"task": task, "by_status": by_status.get(task, {}), "by_source": by_source.get(task, {}),
                     "total": sum(by_status.get(task, {}).values()), "champion": kit.champion(task),
                     "trend": [r.latest_score for r in runs[-8:]]})
    events = recent_events(kit)
    mark = f"{events[0][0].time!r}:{events[0][0].id}" if events else "0:"
    return {"tasks": rows, "alerts": kit.alerts(), "events": events, "signature": mark}


def readiness_part(kit: Any, task: str) -> dict[str, Any]:
    """A task's readiness for the fragment the overview and quality pages load after themselves (on a million
    examples readiness reads every accepted example's quality: seconds, so the page does not wait for it)."""
    try:
        found = readiness(kit, task)
    except Exception as exc:  # noqa: BLE001  (a task whose settings are broken still gets its page)
        return {"task": task, "readiness": None, "gaps": [], "problem": redact(str(exc))}
    return {"task": task, "readiness": found[0] if found else None,
            "gaps": [gap for r in found for gap in r.gaps], "problem": None}


def recent_events(kit: Any, limit: int = 12) -> list[tuple[Any, int]]:
    """The last `limit` events, newest first, each with how many examples it names (counted by the store: an
    event naming a whole trainset is not read whole). The audit trail streams oldest first from a time, so look
    back an hour, then a day, then 30 days, and stop at the first window that holds enough."""
    found: list[tuple[Any, int]] = []
    for seconds in (3600, 86400, 30 * 86400):
        found = list(collections.deque(kit.store.iter_event_counts(since=time.time() - seconds), maxlen=limit))
        if len(found) >= limit:
            break
    return list(reversed(found))


def signature(kit: Any, seen: str | None = None) -> str:
    """Changes when data changes (the overview's self-refresh): the time and id of the newest event. With
    `seen` (an earlier signature) only the events since then are read, so polling stays cheap."""
    since = float(seen.split(":", 1)[0]) if seen and seen.split(":", 1)[0].replace(".", "", 1).isdigit() else None
    last = None
    start = since if since is not None else time.time() - 30 * 86400
    for event, _count in kit.store.iter_event_counts(since=start):
        last = event
    if last is None:
        return seen or "0:"
    return f"{last.time!r}:{last.id}"


def example_query(params: dict[str, str], *, limit: int | None = PAGE) -> ExampleQuery:
    """The examples page's filters -> an ExampleQuery (bad numbers are a ValueError naming the field)."""
    where = []
    for name, op in (("min_quality", ">="), ("max_quality", "<=")):
        raw = (params.get(name) or "").strip()
        if raw:
            try:
                where.append(("quality", op, float(raw)))
            except ValueError:
                raise ValueError(f"{name.replace('_', ' ')}: {raw!r} is not a number between 0 and 1") from None
    order = params.get("order") or "-created"
    if order not in ("created", "-created"):
        raise ValueError(f"order {order!r}: use created or -created")
    status = params.get("status") or None
    if status is not None and status not in STATUSES:  # a typo would list nothing and look like no data
        raise ValueError(f"status {status!r}: use one of {', '.join(STATUSES)}")
    text = (params.get("q") or "").strip()
    if "\x00" in text:
        raise ValueError("search text: a NUL character cannot be searched for")
    return ExampleQuery(**{f: params.get(f) or None for f in FILTERS}, where=where,
                        text=text or None, after=params.get("after") or None,
                        order=order, limit=limit)


def examples_page(kit: Any, params: dict[str, str]) -> dict[str, Any]:
    """One keyset page (PAGE + 1 read to know whether there is a next one) and the label values to filter by."""
    query = example_query(params, limit=PAGE + 1)
    found = list(kit.store.iter_examples(query))
    more = len(found) > PAGE
    found = found[:PAGE]
    return {"examples": found, "next_after": found[-1].id if more and found else None,
            "choices": label_choices(kit, params.get("task") or None)}


STATUSES = ("accepted", "candidate", "rejected", "archived")
SOURCES = ("collected", "bootstrap", "imported", "synthetic", "manual")


def label_choices(kit: Any, task: str | None) -> dict[str, list[str]]:
    """What the filter form offers: the tasks, the fixed statuses and sources, and for domain, topic and
    difficulty the values among the newest SUGGEST examples (suggestions: any value can be typed). A GROUP BY
    per column instead cost seconds per page view on a million examples."""
    def read() -> dict[str, list[str]]:
        seen: dict[str, set[str]] = {c: set() for c in ("domain", "topic", "difficulty")}
        for example in kit.store.iter_examples(ExampleQuery(task=task, order="-created", limit=SUGGEST)):
            for column, values in seen.items():
                value = getattr(example, column)
                if value is not None:
                    values.add(value)
        return {column: sorted(values)[:300] for column, values in seen.items()}

    return {"task": tasks(kit), "status": list(STATUSES), "source": list(SOURCES),
            **cached(kit, "labels", task, read)}


def example_detail(kit: Any, example_id: str) -> dict[str, Any]:
    example = kit.get(example_id)
    scorers = example.provenance.get("scorers", {}) if isinstance(example.provenance, dict) else {}
    scores = [{"dimension": d, "value": v, "plugin": _scorer(scorers.get(d))}
              for d, v in sorted(example.scores.items())]
    cluster = []
    for finding in example.findings:
        if finding.code == "near-duplicate":
            for other in _ID.findall(finding.message):
                if other != example.id:
                    found = kit.store.get(other)
                    cluster.append({"id": other, "example": found})
    values = []
    try:
        values = kit.values(example.task, example_ids=[example.id])
    except Exception:  # noqa: BLE001  (no values stored yet is not an error of this page)
        values = []
    provenance = redact_data({k: v for k, v in example.provenance.items() if k != "scorers"})
    history = [event for event, _count in kit.store.iter_event_counts(example_id=example.id)]
    return {"example": example, "scores": scores, "cluster": cluster, "value": values[0] if values else None,
            "provenance": provenance, "events": history}


def _scorer(entry: Any) -> str:
    """`{"plugin": "coherence", "version": "0.1.0"}` (what intake records per dimension) -> `coherence 0.1.0`."""
    if isinstance(entry, dict):
        return " ".join(str(entry[k]) for k in ("plugin", "version") if entry.get(k))
    return str(entry) if entry else "-"


def review_page(kit: Any, task: str | None, order: str) -> dict[str, Any]:
    """The task's candidates in review order (store order, or kit.review_queue's doubt/need order)."""
    all_tasks = tasks(kit)
    if task is None:
        waiting = [k[0] for k, n in kit.store.group_counts(["task"], ExampleQuery(status="candidate")) if n]
        task = waiting[0] if waiting else (all_tasks[0] if all_tasks else None)
    entries: list[dict[str, Any]] = []
    total = 0
    if task is not None:
        total = kit.count(task=task, status="candidate")
        if order in ("doubt", "need"):
            queue = kit.review_queue(task, order=order)[:PAGE]
            reasons = {q.example_id: q.reason for q in queue}
            ids = [q.example_id for q in queue]
            by_id = {ex.id: ex for ex in kit.store.iter_examples(ExampleQuery(ids=ids))}
            entries = [{"example": by_id[i], "reason": reasons[i]} for i in ids if i in by_id]
        else:
            entries = [{"example": ex, "reason": ""}
                       for ex in kit.examples(task=task, status="candidate", limit=PAGE)]
    return {"task": task, "tasks": all_tasks, "entries": entries, "total": total, "order": order}


def quality_page(kit: Any, task: str | None) -> dict[str, Any]:
    query = ExampleQuery(task=task)
    dims: dict[str, list[int]] = {}
    sampled = 0
    for example in kit.store.iter_examples(ExampleQuery(task=task, order="-created", limit=SAMPLE)):
        sampled += 1
        values = dict(example.scores)
        if example.quality is not None:
            values["quality"] = example.quality
        for dimension, value in values.items():
            bins = dims.setdefault(dimension, [0] * BINS)
            bins[min(max(int(value * BINS), 0), BINS - 1)] += 1
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for (domain, topic, difficulty), n, mean in kit.store.group_quality(["domain", "topic", "difficulty"], query):
        row = f"{domain or '-'} / {topic or '-'}"
        cells[(row, difficulty or "-")] = {"count": n, "quality": mean}
    rows = sorted({r for r, _ in cells})[:60]
    columns = sorted({c for _, c in cells})[:20]
    return {"task": task, "tasks": tasks(kit), "dimensions": dict(sorted(dims.items())), "sampled": sampled,
            "rows": rows, "columns": columns, "cells": cells, "total": sum(c["count"] for c in cells.values())}


def snapshot_page(kit: Any, name: str) -> dict[str, Any]:
    from dspy_trainkit.pluginkit import snapshot_contents

    info = kit.store.snapshot_info(name)
    if info is None:
        raise NotFoundError(f"no snapshot named {name!r}")
    return {"info": {**info, "config": redact_data(info.get("config"))},
            "examples": snapshot_contents(kit, name, limit=200)}


def runs_page(kit: Any, task: str | None) -> dict[str, Any]:
    runs = kit.runs(task)
    champions = {}
    histories: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for run in runs:
        if run.task not in champions:
            champions[run.task] = kit.champion(run.task)
        champion = champions[run.task]
        histories[run.task].append({"score": run.latest_score, "baseline": run.baseline_score,
                                    "champion": champion is not None and champion.id == run.id,
                                    "label": f"{run.id[-8:]} {run.optimizer}"})
    return {"runs": list(reversed(runs)), "histories": dict(histories), "champions": champions, "task": task,
            "tasks": tasks(kit)}


def effectiveness_page(kit: Any, task: str | None) -> dict[str, Any]:
    all_tasks = tasks(kit)
    task = task or (all_tasks[0] if all_tasks else None)
    values, recommendations, problem = [], [], None
    if task is not None:
        try:
            values = kit.values(task, order="-value", limit=PAGE)
            recommendations = cached(kit, "recommend", task, lambda: kit.recommend(task))
        except Exception as exc:  # noqa: BLE001  (shown on the page: a rule plugin failing is worth seeing)
            problem = redact(str(exc))
    return {"task": task, "tasks": all_tasks, "values": values, "recommendations": recommendations,
            "alerts": kit.alerts(task=task), "problem": problem}
