"""The part of the store interface that keeps optimization runs, their per-example results and champions.

Not abstract, so a backend that predates runs still opens; it says so when a run is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import StoreError

if TYPE_CHECKING:
    from ..models import Event


class RunStore:
    """Optimization runs (see dspy_trainkit.optimization)."""

    url: str

    def save_run(self, record: dict[str, Any], results: Sequence[dict[str, Any]] | None = None,
                 candidates: Sequence[dict[str, Any]] | None = None, event: Event | None = None) -> None:
        """Insert or replace run `record["id"]` (a `Run.record()`), and when given its per-example results and
        candidates (replacing earlier ones), with `event`, in one transaction."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The record of run `run_id`, or None."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def list_runs(self, task: str | None = None) -> list[dict[str, Any]]:
        """Every run record (optionally of one task), oldest first."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def run_details(self, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(per-example results, candidates) of a run, in the order saved."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def set_champion(self, task: str, run_id: str, since: float, event: Event | None = None, *,
                     replacing: str | None = None) -> bool:
        """Make run `run_id` the champion of `task`, with `event`, in one serialised transaction, but only when
        the current champion is still `replacing` (None: no champion); returns whether it did. Two runs
        finishing at once cannot both win against the same champion."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def iter_candidates(self, task: str) -> Iterator[dict[str, Any]]:
        """Stream the random-search candidates of `task`'s succeeded runs, oldest run first, each as
        `{run_id, seed, score, demo_ids, subscores}`. This default reads run by run; a backend should stream
        them in one query."""
        for record in self.list_runs(task):
            if record.get("status") != "succeeded":
                continue
            for candidate in self.run_details(record["id"])[1]:
                yield {"run_id": record["id"], **candidate}

    def add_candidates(self, run_id: str, candidates: Sequence[tuple[int, dict[str, Any]]]) -> int:
        """Insert `(position, candidate)` rows under `run_id` (which need not be a run: a valuation names its
        own), keeping a position already stored (two workers finishing one slot store it once); returns how
        many were new."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def candidate_positions(self, run_id: str) -> set[int]:
        """Positions of the candidates stored under `run_id`."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def champion_id(self, task: str) -> str | None:
        """The id of the champion run of `task`, or None."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")

    def list_champions(self) -> list[dict[str, Any]]:
        """Every task's champion as `{task, run_id, since}`, by task (backups)."""
        raise StoreError(f"the store backend of {self.url!r} does not keep optimization runs")
