"""Balance: counts and quality per domain x topic x difficulty cell against the task's `cell_target` and
`cell_cap`, and balanced selection (at most `cap` per cell, best quality first, optionally a total size
spread evenly over the domains, their topics and difficulties).

Selection is deterministic: within a cell examples are taken by quality (highest first, unscored last), ties by
id, so the same store gives the same selection, and a snapshot records which one it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError
from ..store import ExampleQuery

if TYPE_CHECKING:
    from ..kit import Kit
    from ..models import Example

Cell = tuple[str | None, str | None, str | None]
CELL_COLUMNS = ("domain", "topic", "difficulty")


def cell_where(cell: Cell) -> tuple[tuple[str, str, object], ...]:
    """`--where` conditions selecting exactly one cell (a missing label matches only examples without it)."""
    return tuple((column, "=", value) for column, value in zip(CELL_COLUMNS, cell, strict=True))


@attrs.frozen
class CellRow:
    task: str
    cell: Cell
    count: int
    quality: float | None
    target: int | None
    cap: int | None

    @property
    def state(self) -> str:
        if self.cap is not None and self.count > self.cap:
            return "over-full"
        if self.target is not None and self.count < self.target:
            return "short"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        domain, topic, difficulty = self.cell
        return {"task": self.task, "domain": domain, "topic": topic, "difficulty": difficulty, "count": self.count,
                "mean_quality": None if self.quality is None else round(self.quality, 4), "target": self.target,
                "cap": self.cap, "state": self.state,
                "missing": max(0, self.target - self.count) if self.target is not None else None,
                "excess": max(0, self.count - self.cap) if self.cap is not None else None}


def report(kit: Kit, *, task: str | None = None, status: str | None = "accepted") -> list[CellRow]:
    """One row per cell of each task: the cells its settings define (even empty ones) and the cells that hold
    examples, with count, mean quality, target, cap and state (ok, short, over-full)."""
    query = ExampleQuery(task=task, status=status)
    found: dict[tuple[str, Cell], tuple[int, float | None]] = {}
    for key, count, quality in kit.store.group_quality(["task", *CELL_COLUMNS], query):
        found[(key[0], (key[1], key[2], key[3]))] = (count, quality)
    tasks = {task} if task else {t for t, _ in found} | set(kit.settings.tasks)
    rows = []
    for name in sorted(tasks):
        settings = kit.settings.task(name)
        defined = settings.cells() if (settings.topics or settings.difficulties or settings.domains) else []
        cells = list(dict.fromkeys([*defined, *(c for t, c in sorted(found, key=_sort_key) if t == name)]))
        for cell in cells:
            count, quality = found.get((name, cell), (0, None))
            rows.append(CellRow(name, cell, count, quality, settings.cell_target, settings.cell_cap))
    return rows


def _sort_key(item: tuple[str, Cell]) -> tuple[Any, ...]:
    task, cell = item
    return (task, *(("", "") if v is None else ("~", v) for v in cell))


def select(kit: Kit, query: ExampleQuery, *, cap: int | None = None, total: int | None = None) -> list[Example]:
    """A balanced selection from `query`: per cell at most `cap` (default: the task's `cell_cap`), best quality
    first; with `total`, that many at most, taken in turns over the domains, their topics and their
    difficulties (`_Spread`) so that small cells are not crowded out and no domain is left out.
    """
    if query.task is None:
        raise ConfigError("balanced selection works per task; give a task (--task)")
    settings = kit.settings.task(query.task)
    cap = cap if cap is not None else settings.cell_cap
    if cap is None and total is None:
        raise ConfigError(f"balanced selection of task {query.task!r} needs a per-cell cap: set "
                          f"tasks.{query.task}.cell_cap in trainkit.toml or give --cap (or a total size)")
    cells = sorted((tuple(key) for key, _ in kit.store.group_counts(list(CELL_COLUMNS), query)),
                   key=lambda cell: tuple(("", "") if v is None else ("~", v) for v in cell))  # NULLs first everywhere
    per_cell = cap if cap is not None else total
    tree = _Spread()
    for cell in cells:
        cell_query = attrs.evolve(query, where=(*query.where, *cell_where(cell)), order="-quality",
                                  limit=per_cell, offset=0)
        tree.add(cell, iter(list(kit.store.iter_examples(cell_query))))
    chosen: list[Example] = []
    while total is None or len(chosen) < total:
        example = tree.take()
        if example is None:
            break
        chosen.append(example)
    return sorted(chosen, key=lambda ex: ex.id)


class _Spread:
    """The cells' queues as a tree (domain -> topic -> difficulty), taken from in turns at every level: one
    example from the next domain, within it from its next topic, within that from its next difficulty.

    A total smaller than the number of cells (or not a multiple of it) is spread over the domains first, then
    over the topics of each domain, instead of going to the cells that sort first (with cells created in label
    order, that was the first N examples created and whole domains left out). A level whose queues run dry drops
    out, and the others share the rest."""

    def __init__(self, turn: int = 0) -> None:
        self.children: dict[Any, _Spread | Iterator[Example]] = {}
        self.turn = turn
        self.made = 0  # inner nodes made below the root: each starts its turns one further on

    def add(self, cell: tuple[Any, ...], queue: Iterator[Example]) -> None:
        node = self
        for label in cell[:-1]:
            if label not in node.children:
                self.made += 1
                node.children[label] = _Spread(turn=self.made)  # so topics do not all start at the same difficulty
            child = node.children[label]
            assert isinstance(child, _Spread)
            node = child
        node.children[cell[-1]] = queue

    def take(self) -> Example | None:
        """The next example in turn, or None when every queue is empty."""
        while self.children:
            keys = list(self.children)
            key = keys[self.turn % len(keys)]
            child = self.children[key]
            example = child.take() if isinstance(child, _Spread) else next(child, None)
            if example is None:
                del self.children[key]  # dry: the next child moves into its turn
                continue
            self.turn = self.turn % len(keys) + 1
            return example
        return None
