"""The impact of a change: between two snapshots or two runs of a task, what changed in the data (per cell), how
the two programs score on one common dev set, which dev examples flipped, and which added or removed examples
carry the most value.

`A` and `B` are each an optimization run (its id, or a unique end of it) or a snapshot name. A snapshot stands
for the latest successful run on it, if any; without runs on both sides only the data is compared. When the two
runs were scored on different dev sets, A's saved program is scored again on B's dev set (with the LM the
program runs with), so the comparison is like for like.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import NotFoundError, TrainkitError

if TYPE_CHECKING:
    from ..kit import Kit
    from ..optimization.records import Run

CELL = ("domain", "topic", "difficulty")


@attrs.frozen
class ImpactReport:
    """See the module docstring; `flips` lists dev examples whose score went up (`fixed`) or down (`broken`)."""

    task: str
    a: dict[str, Any]
    b: dict[str, Any]
    data: dict[str, Any]
    scores: dict[str, Any] | None
    flips: dict[str, list[dict[str, Any]]]
    valued_changes: list[dict[str, Any]]
    #: why the programs were not compared (A could not be scored again, say), while the data change stands
    scores_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def impact(kit: Kit, task: str, a: str, b: str, *, lm: Any = None) -> ImpactReport:
    side_a, run_a = _side(kit, task, a)
    side_b, run_b = _side(kit, task, b)
    data = _data_change(kit, task, side_a.get("snapshot"), side_b.get("snapshot"))
    scores: dict[str, Any] | None = None
    flips: dict[str, list[dict[str, Any]]] = {"fixed": [], "broken": []}
    scores_error = None
    if run_a is not None and run_b is not None:
        try:
            scores, flips = _compare_runs(kit, task, run_a, run_b, lm)
        except TrainkitError as exc:  # the data change is still worth having; the caller says what failed
            scores_error = str(exc)
    changed_ids = [*data["added"], *data["removed"], *data["changed"]]
    kind = {i: k for k in ("added", "removed", "changed") for i in data[k]}
    valued = sorted(({"example_id": v.example_id, "change": kind[v.example_id], "value": v.value,
                      "stderr": v.stderr, "observations": v.observations}
                     for v in kit.store.iter_values(task, example_ids=changed_ids)),
                    key=lambda row: -abs(float(row["value"] or 0.0)))
    return ImpactReport(task=task, a=side_a, b=side_b, data=data, scores=scores, flips=flips,
                        valued_changes=valued[:20], scores_error=scores_error)


def _side(kit: Kit, task: str, name: str) -> tuple[dict[str, Any], Run | None]:
    """What `name` means: a run (with its snapshot) or a snapshot (with its latest successful run)."""
    from ..optimization.champions import get_run, list_runs

    if kit.store.snapshot_info(name) is not None:
        if not any(member[2] == task for member in kit.store.snapshot_members(name)):
            raise TrainkitError(f"snapshot {name!r} holds no example of task {task!r}")
        runs = [r for r in list_runs(kit, task) if r.snapshot == name and r.status == "succeeded"]
        run = get_run(kit, runs[-1].id) if runs else None
        return {"name": name, "snapshot": name, "run": run.id if run else None}, run
    try:
        run = get_run(kit, name)
    except NotFoundError:
        raise NotFoundError(f"{name!r} is neither a snapshot nor an optimization run; `trainkit snapshot list` "
                            f"and `trainkit runs --task {task}` list them") from None
    if run.task != task:
        raise TrainkitError(f"run {run.id} is of task {run.task!r}, not {task!r}")
    return {"name": name, "snapshot": run.snapshot, "run": run.id}, run


def _data_change(kit: Kit, task: str, a: str | None, b: str | None) -> dict[str, Any]:
    old = {m[0]: m for m in kit.store.snapshot_members(a) if m[2] == task} if a else {}
    new = {m[0]: m for m in kit.store.snapshot_members(b) if m[2] == task} if b else {}
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(i for i in set(old) & set(new) if old[i][1] != new[i][1])
    cells: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: {"added": 0, "removed": 0, "changed": 0})
    for kind, ids, members in (("added", added, new), ("removed", removed, old), ("changed", changed, new)):
        for example_id in ids:
            cells[tuple(members[example_id][3:6])][kind] += 1
    return {"added": added, "removed": removed, "changed": changed,
            "unchanged": len(set(old) & set(new)) - len(changed),
            "cells": [{**dict(zip(CELL, cell, strict=True)), **counts}
                      for cell, counts in sorted(cells.items(), key=lambda item: [str(v) for v in item[0]])]}


def _compare_runs(kit: Kit, task: str, a: Run, b: Run, lm: Any) -> tuple[dict[str, Any],
                                                                          dict[str, list[dict[str, Any]]]]:
    results_b = _dev_scores(b)
    if set(a.dev_ids) == set(b.dev_ids) and _dev_scores(a):
        results_a, how = _dev_scores(a), "stored results (same dev set)"
    else:
        results_a, how = _rescore(kit, task, a, b, lm), f"run {a.id[-8:]} scored again on run {b.id[-8:]}'s dev set"
    common = [i for i in b.dev_ids if i in results_a and i in results_b]
    if not common:
        raise TrainkitError(f"runs {a.id} and {b.id} have no dev example in common to compare on")
    score_a = round(100 * sum(results_a[i] for i in common) / len(common), 4)
    score_b = round(100 * sum(results_b[i] for i in common) / len(common), 4)
    flips: dict[str, list[dict[str, Any]]] = {"fixed": [], "broken": []}
    for example_id in common:
        before, after = results_a[example_id], results_b[example_id]
        if after != before:
            flips["fixed" if after > before else "broken"].append({"example_id": example_id, "from": before,
                                                                   "to": after})
    return {"dev_examples": len(common), "a": score_a, "b": score_b, "change": round(score_b - score_a, 4),
            "how": how}, flips


def _dev_scores(run: Run) -> dict[str, float]:
    """The run's per-example scores of its optimized program on its dev set."""
    return {r.example_id: r.score for r in run.results if r.phase == "optimized"}


def _rescore(kit: Kit, task: str, a: Run, b: Run, lm: Any) -> dict[str, float]:
    """A's saved program scored on B's dev examples (as they were in B's snapshot)."""
    import dspy

    from ..optimization.champions import load_saved
    from ..optimization.resolve import program_factory, program_lm, resolve_metric
    from ..optimization.runs import evaluate

    make, _ = program_factory(kit, task, a.program)
    metric, metric_name = resolve_metric(kit, task, a.metric)
    program = load_saved(make, a)
    dev = {e.id: e for e in kit.store.iter_snapshot_examples(b.snapshot)} if b.snapshot else {}
    examples = [dev[i] for i in b.dev_ids if i in dev]
    converted = kit.convert(examples, "dspy")
    skipped = {example_id for example_id, _ in converted.skipped}
    ids = [e.id for e in examples if e.id not in skipped]
    devset = list(converted.items)
    with dspy.context(lm=program_lm(kit, task, lm)):
        _, results = evaluate(program, devset, ids, metric, "impact", 1, metric_name)
    return {r.example_id: r.score for r in results}
