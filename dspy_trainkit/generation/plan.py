"""Generation plans: which (domain, topic, difficulty, slot) a bootstrap must fill, stored so work resumes.

A plan is named (default `bootstrap:<task>`) and holds one slot per example to make: `per_cell` slots for each
cell of the task's grid (`TaskSettings.cells()`, with per-domain overrides). Slots move through

    pending --claim--> claimed --finish--> done | failed | pending (retry: the result was a duplicate)

and every move is a store transaction, so a crash loses nothing but leases: a claimed slot whose lease ran
out, or whose owner process on this host is gone, is claimed again. Claiming is atomic (PostgreSQL: `FOR
UPDATE SKIP LOCKED`; SQLite: an IMMEDIATE transaction), so two workers never fill the same slot. Before a
slot's example is stored, its id is attached to the slot; a worker that finds a claimed slot whose attached
example is in the store marks it done instead of generating it again. That is what makes "killed midway,
re-run" end with exactly the planned number of examples.

This module holds the plain data and the planning arithmetic; the SQL lives in the store backend
(plugins/dspy_trainkit_sqlstore/plans.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ..errors import ConfigError
from ..settings import TaskSettings
from ..workers import new_owner, owner_is_dead

__all__ = ["PlanSlot", "SlotResult", "default_plan_name", "new_owner", "owner_is_dead", "plan_cells", "plan_slots"]

SLOT_STATES = ("pending", "claimed", "done", "failed")
Cell = tuple[str | None, str | None, str | None]


@attrs.frozen
class PlanSlot:
    """One example to make: its cell, its index within the cell, and where it stands."""

    plan: str
    domain: str | None
    topic: str | None
    difficulty: str | None
    index: int
    state: str = "pending"
    owner: str | None = None
    lease_until: float | None = None
    attempts: int = 0
    reason: str | None = None
    last_error: str | None = None
    example_id: str | None = None

    @property
    def cell(self) -> Cell:
        return (self.domain, self.topic, self.difficulty)

    @property
    def key(self) -> str:
        """A readable unique name of the slot within its plan: `domain/topic/difficulty#index`."""
        return "/".join(part or "-" for part in self.cell) + f"#{self.index}"

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "key": self.key}


@attrs.frozen
class SlotResult:
    """How a worker finished a claimed slot: the new state, the stored example, and why it failed. With
    `attempt`, only the claim of that attempt is finished: a result from an older claim of the same slot (the
    lease ran out and the slot was claimed again) changes nothing."""

    domain: str | None
    topic: str | None
    difficulty: str | None
    index: int
    state: str
    example_id: str | None = None
    reason: str | None = None
    error: str | None = None
    attempt: int | None = None  # the claim (its attempts count) this result belongs to; None: any


def default_plan_name(task: str) -> str:
    return f"bootstrap:{task}"


def plan_cells(task: TaskSettings, domain: str | None = None) -> list[Cell]:
    """The cells of `task`'s grid, only those of `domain` when given; an unknown domain is a ConfigError."""
    cells = task.cells()
    if domain is not None:
        if task.domains and domain not in task.domains:
            raise ConfigError(f"task {task.name!r} has no domain {domain!r}; its domains: "
                              f"{', '.join(sorted(task.domains))} (see [tasks.{task.name}.domains] in trainkit.toml)")
        cells = [(domain, t, d) for (_dom, t, d) in cells if _dom in (domain, None)]
    return cells


def plan_slots(cells: Iterable[Cell], per_cell: int) -> list[tuple[str | None, str | None, str | None, int]]:
    """`(domain, topic, difficulty, index)` for `per_cell` slots of every cell."""
    return [(*cell, index) for cell in cells for index in range(per_cell)]
