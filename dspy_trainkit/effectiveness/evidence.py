"""The evidence value estimators read: a task's stored runs and their random-search candidates, pooled by the
validation set they were scored on.

Candidates are comparable only when scored on the same validation examples: a score of 80 on an easy set and 60
on a hard one say nothing about the demos. So candidates are grouped into pools by the content of their run's
validation set (its example ids, sorted), and an estimator compares candidates within a pool.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ..kit import Kit


@attrs.frozen
class CandidatePool:
    """Candidates scored on one validation set: `val_ids`, and per candidate its run, seed, score (0-100),
    demo example ids (None for a demo no stored example matched) and per-validation-example scores."""

    key: str
    val_ids: tuple[str, ...]
    candidates: list[dict[str, Any]]

    def demo_sets(self) -> list[list[str]]:
        """Each candidate's stored demo ids, each once."""
        return [list(dict.fromkeys(d for d in c["demo_ids"] if d)) for c in self.candidates]


class Evidence:
    """What a task's stored optimization runs say, read once per valuation and shared by every estimator."""

    def __init__(self, kit: Kit, task: str, *, run: str | None = None, labels: Any = None):
        self.kit = kit
        self.task = task
        self.run = run
        #: a `LabelCheck` (dspy_trainkit.effectiveness.labels) when the valuation ran one, else None
        self.labels = labels
        self.runs = [r for r in kit.store.list_runs(task) if r.get("status") == "succeeded"
                     and (run is None or r["id"] == run)]
        #: the task's valuation runs (plans of dspy_trainkit.effectiveness.sampling): read only when no run is named
        self.valuations = [] if run is not None else _valuations(kit, task)
        self._pools: list[CandidatePool] | None = None
        self._accepted: list[str] | None = None

    @property
    def example_ids(self) -> list[str]:
        """Ids of the task's accepted examples: what a valuation should cover."""
        if self._accepted is None:
            from ..store import ExampleQuery

            self._accepted = list(self.kit.store.iter_ids(ExampleQuery(task=self.task, status="accepted")))
        return self._accepted

    def pools(self) -> list[CandidatePool]:
        """The candidates of the runs, grouped by validation set, largest pool first."""
        if self._pools is None:
            self._pools = _pool(self.runs, self.kit.store.iter_candidates(self.task), self._valuation_candidates())
        return self._pools

    def _valuation_candidates(self) -> Iterator[tuple[list[str], str, dict[str, Any]]]:
        from .sampling import candidates_id

        for plan in self.valuations:
            val_ids = list(plan["config"]["val_ids"])
            run_id = candidates_id(plan["name"])
            for candidate in self.kit.store.run_details(run_id)[1]:
                yield val_ids, f"valuation\x00{plan['name']}", {"run_id": run_id, **candidate}


def validation_key(val_ids: list[str]) -> str:
    """A short digest naming a validation set by its members, whatever their order."""
    return hashlib.sha256("\n".join(sorted(val_ids)).encode()).hexdigest()[:16]


def _valuations(kit: Kit, task: str) -> list[dict[str, Any]]:
    from .sampling import valuations

    return valuations(kit, task)


def _pool(runs: list[dict[str, Any]], candidates: Iterator[dict[str, Any]],
          scored: Iterable[tuple[list[str], str, dict[str, Any]]] = ()) -> list[CandidatePool]:
    """Candidates grouped by what makes their scores comparable: the validation set and the setup that scored
    them (a run's program, metric and LM; a valuation run's plan), the runs' candidates and the `scored` ones
    (`(validation ids, setup, candidate)` of valuation runs). A candidate identical to one already pooled (same
    demos and scores: a re-run answered from DSPy's cache) is the same experiment, counted once."""
    by_run = {r["id"]: r for r in runs}

    def setup_of(record: dict[str, Any]) -> str:
        return "\x00".join(str(record.get(k)) for k in ("program", "metric", "lm"))

    from_runs = ((list(by_run[c["run_id"]].get("val_ids") or []), setup_of(by_run[c["run_id"]]), c)
                 for c in candidates if c["run_id"] in by_run)
    pools: dict[str, CandidatePool] = {}
    seen: set[tuple[Any, ...]] = set()
    for val_ids, setup, candidate in itertools.chain(from_runs, scored):
        if not val_ids:  # a run without a validation set
            continue
        key = hashlib.sha256(f"{validation_key(val_ids)}\x00{setup}".encode()).hexdigest()[:16]
        same = (key, tuple(sorted(d for d in candidate["demo_ids"] if d)), candidate["score"],
                tuple(candidate.get("subscores") or ()))
        if same in seen:
            continue
        seen.add(same)
        if key not in pools:
            pools[key] = CandidatePool(key=key, val_ids=tuple(sorted(val_ids)), candidates=[])
        pools[key].candidates.append(candidate)
    return sorted(pools.values(), key=lambda p: -len(p.candidates))
