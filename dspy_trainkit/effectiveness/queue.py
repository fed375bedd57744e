"""The review queue ordered by what a decision is worth.

A reviewer's time is the scarce thing: the candidates to look at first are those where a decision changes the
most. Two orders, from evidence trainkit already stored (nothing is computed or called here):

- `doubt`: the candidates whose labels the program most doubts. The label check's `label_agreement` signal
  (100 x (the example's metric score - the agreement rate)) is lowest for a label the program contradicts
  while agreeing with most others: those first, suspects before the rest. Then examples with a stored demo
  value, lowest first (they lowered the program's score as demos: the `review-harmful-demos` recommendation
  sends them back to review), then the others in their usual order.
- `need`: the candidates of the cells that need examples most: cells short of `min_per_cell` (readiness's
  `missing`, most missing first), then cells where the latest run fails most of its dev examples (weak spots),
  then the others. Accepting one of those is what moves readiness or a weak cell.

Stored values are used even when stale: an example sent back to review changed status (which marks its value
stale), not its label, and the evidence about its label still holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import TrainkitError

if TYPE_CHECKING:
    from ..kit import Kit

ORDERS = ("doubt", "need")
#: (sort key, position in the given order, example id, reason)
Ranked = list[tuple[tuple[float, ...], int, str, str]]


@attrs.frozen
class QueueEntry:
    """One example of an ordered queue and why it stands where it does."""

    example_id: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def review_queue(kit: Kit, task: str, *, order: str = "doubt", ids: Sequence[str] | None = None) -> list[QueueEntry]:
    """`ids` (default: the task's candidates, in store order) ordered by `order` (see the module docstring)."""
    if order not in ORDERS:
        raise TrainkitError(f"review order {order!r}: use {' or '.join(ORDERS)}")
    if ids is None:
        from ..store import ExampleQuery

        ids = list(kit.store.iter_ids(ExampleQuery(task=task, status="candidate")))
    ids = list(ids)
    ranked = _by_doubt(kit, task, ids) if order == "doubt" else _by_need(kit, task, ids)
    return [QueueEntry(example_id=i, reason=reason) for _key, _n, i, reason in sorted(ranked)]


def _by_doubt(kit: Kit, task: str, ids: list[str]) -> Ranked:
    values = {v.example_id: v for v in kit.store.iter_values(task, example_ids=ids, order="example")}
    ranked: Ranked = []
    for n, example_id in enumerate(ids):
        found = values.get(example_id)
        label = (found.signals.get("label_agreement") if found is not None else None) or None
        if label is not None:
            suspect = bool((label.get("detail") or {}).get("suspect"))
            key: tuple[float, ...] = (0.0, 0.0 if suspect else 1.0, float(label["value"]))
            reason = (f"{'suspect label: ' if suspect else ''}the program's agreement with this label is "
                      f"{float(label['value']):+.1f} points from its average")
        elif found is not None:
            key = (1.0, 0.0, found.value)
            reason = f"value {found.value:+.2f} as a demo ({found.observations} candidate(s))"
        else:
            key = (2.0, 0.0, 0.0)
            reason = "no stored evidence about this example"
        ranked.append((key, n, example_id, reason))
    return ranked


def _by_need(kit: Kit, task: str, ids: list[str]) -> Ranked:
    from .weakness import weak_spots

    def cell_of(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row.get("domain"), row.get("topic"), row.get("difficulty"))

    missing = {cell_of(row): int(row.get("missing") or 0) for row in kit.readiness(task)[0].cells}
    failing = {cell_of(row): float(row["failure_rate"]) for row in weak_spots(kit, task).cells}
    ranked: Ranked = []
    for n, example_id in enumerate(ids):
        example = kit.store.get(example_id)
        cell = (example.domain, example.topic, example.difficulty) if example is not None else (None, None, None)
        short, rate = missing.get(cell, 0), failing.get(cell, 0.0)
        name = "/".join(part for part in cell if part) or "the task"
        parts = ([f"{short} short of min_per_cell"] if short else []) + \
            ([f"the program fails {rate:.0%} of its dev examples"] if rate else [])
        reason = f"cell {name}: " + ("; ".join(parts) if parts else "no shortage and no weakness known")
        ranked.append(((0.0 if short else 1.0, -float(short), -rate), n, example_id, reason))
    return ranked
