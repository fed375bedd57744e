"""Where the program is weak: failure rates per cell (domain, topic, difficulty) and the dev examples it fails,
from a run's per-example dev results (the latest successful run of the task, or a named one).

A dev example "fails" by its metric score (1 - score, so a metric in 0..1 gives partial failures). Cells with few
dev examples say little: each row carries its count, and recommendations only act on cells with enough.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import NotFoundError

if TYPE_CHECKING:
    from ..kit import Kit


@attrs.frozen
class WeakSpots:
    """Per cell `{domain, topic, difficulty, dev, failure_rate}` (worst first) and the failed dev examples."""

    task: str
    run: str | None
    cells: list[dict[str, Any]]
    failures: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def weak_spots(kit: Kit, task: str, *, run: str | None = None) -> WeakSpots:
    """Where `task`'s program fails, per cell, from one run's per-example dev results: `run`, else the champion
    (the program in use, so a later run that lost to it does not speak for it), else the latest successful run."""
    from ..optimization.champions import champion, get_run, list_runs

    if run is not None:
        chosen = get_run(kit, run)
    else:
        serving = champion(kit, task)
        done = [r for r in list_runs(kit, task) if r.status == "succeeded"]
        if serving is None and not done:
            return WeakSpots(task=task, run=None, cells=[], failures=[])
        chosen = get_run(kit, serving.id if serving is not None else done[-1].id)
    if chosen.task != task:
        raise NotFoundError(f"run {chosen.id} is of task {chosen.task!r}, not {task!r}")
    results = [r for r in chosen.results if r.phase == "optimized"]
    labels = {}
    if chosen.snapshot:
        wanted = {r.example_id for r in results}
        labels = {e.id: e for e in kit.store.iter_snapshot_examples(chosen.snapshot) if e.id in wanted}
    totals: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    failures = []
    for result in results:
        example = labels.get(result.example_id) or _stored(kit, result.example_id)
        cell = (example.domain, example.topic, example.difficulty) if example else (None, None, None)
        totals[cell].append(1.0 - result.score)
        if result.score < 1.0:
            failures.append({"example_id": result.example_id, "score": result.score, "domain": cell[0],
                             "topic": cell[1], "difficulty": cell[2], "prediction": result.prediction})
    cells = [{"domain": c[0], "topic": c[1], "difficulty": c[2], "dev": len(v),
              "failure_rate": round(sum(v) / len(v), 4)} for c, v in totals.items()]
    cells.sort(key=lambda row: (-row["failure_rate"], -row["dev"], [str(row[k]) for k in
                                                                     ("domain", "topic", "difficulty")]))
    return WeakSpots(task=task, run=chosen.id, cells=cells, failures=failures)


def _stored(kit: Kit, example_id: str) -> Any:
    return kit.store.get(example_id)
