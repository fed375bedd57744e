"""Built-in alert rules 'alerts': conditions on a task's data and runs that someone should look at.

Each rule returns an `AlertSignal` while its condition holds; the core keeps one open alert per task and rule.
Times are compared with `now()` over a window (`window` seconds, default one day): "recent" is created within
the window, "before" is older.

- `rejection-spike`: of the collected examples created recently (at least `min_records`), a share of at least
  `rejection_rate` was rejected, and at least `rejection_factor` times the share before;
- `collection-stalled`: the task collected examples, but none for `stall_after` seconds;
- `quality-shift`: the recent accepted examples' quality distribution differs from the earlier one
  (two-sample Kolmogorov-Smirnov test at alpha 0.01, at least `min_records` on each side);
- `synthetic-over-cap`: synthetic examples are more of the accepted ones than `max_synthetic_ratio` allows;
- `readiness-lost`: the task has had a successful optimization run but is no longer ready;
- `run-failed`: the task's latest optimization run failed;
- `champion-dropped`: re-evaluated on the latest run's dev set, the champion scored more than `champion_drop`
  points below the score it was promoted with;
- `near-duplicate-surge`: at least `neardup_share` of the recently added examples are near-duplicates;
- `negative-value`: examples added recently already have a clearly negative value (value + z x stderr < 0).

Collected data is checked as it arrives (at most every `check_interval` seconds per task and process).
"""

from __future__ import annotations

import math
import time
from typing import Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import AlertSignal, ExampleQuery, unknown_settings

NAME = "alerts"
DEFAULTS: dict[str, Any] = {"window": 86400.0, "min_records": 20, "rejection_rate": 0.3, "rejection_factor": 2.0,
                            "stall_after": 86400.0, "champion_drop": 5.0, "neardup_share": 0.3, "z": 2.0,
                            "check_interval": 60.0}
#: c(alpha) of the two-sample Kolmogorov-Smirnov test at alpha = 0.01
KS_C = 1.628


def now() -> float:
    return time.time()


@hookimpl
def alert_rules(task: str, context: Any) -> list[AlertSignal]:
    s = unknown_settings(NAME, context.plugin_settings(NAME, task), DEFAULTS)
    since = now() - float(s["window"])
    found = [rule(task, context, s, since) for rule in RULES]
    return [signal for signal in found if signal is not None]


@hookimpl
def on_data_changed(event: Any, context: Any) -> None:
    if event.kind != "added" or "collected" not in (event.details.get("sources") or ()):
        return
    state = context.plugin_state(NAME)
    due = []
    for task in event.details.get("tasks") or ():
        interval = float(unknown_settings(NAME, context.plugin_settings(NAME, task), DEFAULTS)["check_interval"])
        if now() - state.get(task, -math.inf) >= interval:
            state[task] = now()
            due.append(task)
    if due:
        context.check_alerts(due)


def _counts(context: Any, task: str, **query: Any) -> dict[str, int]:
    return {key[0]: n for key, n in context.store.group_counts(["status"], ExampleQuery(task=task, **query))}


def rejection_spike(task: str, context: Any, s: dict[str, Any], since: float) -> AlertSignal | None:
    recent = _counts(context, task, source="collected", where=[("created_at", ">=", since)])
    before = _counts(context, task, source="collected", where=[("created_at", "<", since)])
    total, earlier = sum(recent.values()), sum(before.values())
    if total < int(s["min_records"]):
        return None
    rate = recent.get("rejected", 0) / total
    base = before.get("rejected", 0) / earlier if earlier >= int(s["min_records"]) else 0.0
    if rate < float(s["rejection_rate"]) or (base and rate < float(s["rejection_factor"]) * base):
        return None
    return AlertSignal(rule="rejection-spike", severity="warning",
                       title=f"{task}: {rate:.0%} of recently collected examples were rejected",
                       message=f"{recent.get('rejected', 0)} of {total} collected in the last {s['window']:g} s were "
                               f"rejected (before: {base:.0%}); see `trainkit stats --collection --task {task}`",
                       details={"rate": rate, "before": base, "recent": total})


def collection_stalled(task: str, context: Any, s: dict[str, Any], since: float) -> AlertSignal | None:
    newest = next(iter(context.store.iter_examples(ExampleQuery(task=task, source="collected", order="-created",
                                                                limit=1))), None)
    if newest is None or now() - newest.created_at < float(s["stall_after"]):
        return None
    hours = (now() - newest.created_at) / 3600
    return AlertSignal(rule="collection-stalled", severity="warning",
                       title=f"{task}: nothing collected for {hours:.1f} h",
                       message="the pipeline's collector has not stored an example since "
                               f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(newest.created_at))}",
                       details={"last_collected_at": newest.created_at})


def quality_shift(task: str, context: Any, s: dict[str, Any], since: float) -> AlertSignal | None:
    def qualities(op: str) -> list[float]:
        query = ExampleQuery(task=task, status="accepted", where=[("created_at", op, since)])
        return sorted(q for _, q in context.store.iter_qualities(query) if q is not None)

    recent, before = qualities(">="), qualities("<")
    minimum = int(s["min_records"])
    if len(recent) < minimum or len(before) < minimum:
        return None
    d = ks_statistic(recent, before)
    critical = KS_C * math.sqrt((len(recent) + len(before)) / (len(recent) * len(before)))
    if d <= critical:
        return None
    mean_recent, mean_before = sum(recent) / len(recent), sum(before) / len(before)
    return AlertSignal(rule="quality-shift", severity="warning",
                       title=f"{task}: the quality of new data shifted ({mean_before:.2f} -> {mean_recent:.2f} mean)",
                       message=f"Kolmogorov-Smirnov D = {d:.3f} > {critical:.3f} (alpha 0.01) between {len(recent)} "
                               f"recent and {len(before)} earlier accepted examples; see `trainkit report quality`",
                       details={"d": d, "critical": critical, "mean_recent": mean_recent, "mean_before": mean_before})


def ks_statistic(a: list[float], b: list[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic of two sorted samples: the largest gap between their
    empirical distribution functions."""
    i = j = 0
    gap = 0.0
    while i < len(a) and j < len(b):
        value = min(a[i], b[j])
        while i < len(a) and a[i] == value:
            i += 1
        while j < len(b) and b[j] == value:
            j += 1
        gap = max(gap, abs(i / len(a) - j / len(b)))
    return gap


def synthetic_over_cap(task: str, context: Any, s: dict[str, Any], since: float) -> AlertSignal | None:
    cap = context.settings.task(task).max_synthetic_ratio
    if cap is None:
        return None
    by_source = {key[0]: n for key, n in context.store.group_counts(["source"], ExampleQuery(task=task,
                                                                                             status="accepted"))}
    total = sum(by_source.values())
    share = by_source.get("synthetic", 0) / total if total else 0.0
    if share <= cap:
        return None
    return AlertSignal(rule="synthetic-over-cap", severity="warning",
                       title=f"{task}: {share:.0%} of accepted examples are synthetic (cap {cap:.0%})",
                       message="add real examples or archive synthetic ones; see docs/synthesis.md",
                       details={"share": share, "cap": cap})


def _runs(context: Any, task: str) -> list[dict[str, Any]]:
    return context.store.list_runs(task)


def readiness_lost(task: str, context: Any, s: dict[str, Any], since: float) -> AlertSignal | None:
    if not any(r.get("status") == "succeeded" for r in _runs(context, task)):
        return None
    overall = context.readiness(task)[0]
    if overall.ready:
        return None
    return AlertSignal(rule="readiness-lost", severity="warning", title=f"{task}: no longer ready for optimization",
                       message="; ".join(overall.problems), details={"problems": overall.problems})


def run_failed(task: str, context: Any, s: dict[str, Any], since: float) -> AlertSignal | None:
    runs = [r for r in _runs(context, task) if r.get("status") in ("succeeded", "failed")]
    if not runs or runs[-1]["status"] != "failed":
        return None
    last = runs[-1]
    return AlertSignal(rule="run-failed", severity="critical", title=f"{task}: the latest optimization run failed",
                       message=f"run {last['id']}: {last.get('error') or last.get('message') or 'no error recorded'}",
                       details={"run": last["id"]})


def champion_dropped(task: str, context: Any, s: dict[str, Any], since: float) -> AlertSignal | None:
    compared = [r for r in _runs(context, task) if r.get("champion_run") and r.get("champion_score") is not None]
    if not compared:
        return None
    last = compared[-1]
    champion = context.store.get_run(last["champion_run"])
    if champion is None or champion.get("score") is None:
        return None
    drop = float(champion["score"]) - float(last["champion_score"])
    if drop <= float(s["champion_drop"]):
        return None
    return AlertSignal(rule="champion-dropped", severity="critical",
                       title=f"{task}: the champion scored {drop:.1f} points lower on re-evaluation",
                       message=f"champion {champion['id']} was promoted at {champion['score']:.1f} and scored "
                               f"{last['champion_score']:.1f} on run {last['id']}'s dev set",
                       details={"champion": champion["id"], "run": last["id"], "drop": drop})


def neardup_surge(task: str, context: Any, s: dict[str, Any], since: float) -> AlertSignal | None:
    total = near = 0
    for example in context.store.iter_examples(ExampleQuery(task=task, where=[("created_at", ">=", since)])):
        total += 1
        near += any(f.code == "near-duplicate" for f in example.findings)
    if total < int(s["min_records"]) or near / total < float(s["neardup_share"]):
        return None
    return AlertSignal(rule="near-duplicate-surge", severity="warning",
                       title=f"{task}: {near / total:.0%} of recently added examples are near-duplicates",
                       message=f"{near} of {total} added in the last {s['window']:g} s; is a generator repeating "
                               "itself? see docs/neardup.md", details={"near": near, "total": total})


def negative_value(task: str, context: Any, s: dict[str, Any], since: float) -> AlertSignal | None:
    z = float(s["z"])
    harmful = [v for v in context.values(task) if not v.stale and v.stderr is not None and v.value + z * v.stderr < 0]
    if not harmful:
        return None
    recent = set(context.store.iter_ids(ExampleQuery(task=task, ids=[v.example_id for v in harmful],
                                                     where=[("created_at", ">=", since)])))
    if not recent:
        return None
    return AlertSignal(rule="negative-value", severity="warning",
                       title=f"{task}: {len(recent)} recently added example(s) lower the program's score",
                       message=f"see `trainkit recommend --task {task}`", details={"examples": sorted(recent)})


RULES = (rejection_spike, collection_stalled, quality_shift, synthetic_over_cap, readiness_lost, run_failed,
         champion_dropped, neardup_surge, negative_value)
