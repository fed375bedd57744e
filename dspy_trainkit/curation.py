"""Changing stored examples: status decisions, edits and re-scoring, each recorded with who, why, before and
after in the audit trail (the Event written in the same transaction as the change).

Edits and re-scoring send examples through the same judging code as intake (`assessment`), so a stored example
is never judged by different rules than a new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from . import assessment
from .errors import ValidationError
from .intake import check_values
from .models import STATUSES, Event, Example, Finding
from .store import ExampleQuery

if TYPE_CHECKING:
    from .kit import Kit

#: Fields a user may change with an edit (the rest describe the stored copy, not the example).
EDITABLE = ("inputs", "outputs", "domain", "topic", "difficulty", "metadata")
BATCH = 500


def _diff(before: Example, after: Example, fields: Sequence[str]) -> dict[str, list[Any]]:
    """`{field: [before, after]}` for the fields that differ, as JSON data for the audit trail."""
    return {f: [_plain(getattr(before, f)), _plain(getattr(after, f))]
            for f in fields if getattr(before, f) != getattr(after, f)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple) and value and isinstance(value[0], Finding):
        return [finding.to_dict() for finding in value]
    return list(value) if isinstance(value, tuple) else value


def _write(kit: Kit, pairs: list[tuple[Example, Example]], kind: str, actor: str, reason: str,
           fields: Sequence[str]) -> int:
    """Store the `after` side of changed pairs with one event holding each example's before/after."""
    changed = [(b, a) for b, a in pairs if _diff(b, a, fields)]
    if not changed:
        return 0
    details = {"changes": {a.id: _diff(b, a, fields) for b, a in changed}}
    event = Event(kind=kind, example_ids=[a.id for _, a in changed], actor=actor, reason=reason, details=details)
    kit.store.update_examples([a for _, a in changed], event)
    kit.notify(event)
    return len(changed)


def set_status(kit: Kit, query: ExampleQuery, status: str, *, actor: str, reason: str,
               progress: Callable[[int], None] | None = None) -> int:
    """Give the examples matching `query` a status (accept, reject, archive), in batches; returns how many
    changed."""
    if status not in STATUSES:
        raise ValidationError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    if status == "rejected" and not reason:
        raise ValidationError("a rejection needs a reason (--reason), so the audit trail says why")
    done = seen = 0
    for batch in _batches(kit, query):
        now = time.time()
        pairs = [(ex, attrs.evolve(ex, status=status, updated_at=now)) for ex in batch]
        done += _write(kit, pairs, "status_changed", actor, reason, ("status",))
        seen += len(batch)
        if progress is not None:
            progress(seen)
    return done


def edit(kit: Kit, example_id: str, changes: dict[str, Any], *, actor: str, reason: str = "",
         status: str | None = None) -> Example:
    """Change an example's content or labels; it is validated and scored again, and keeps its status unless
    `status` is given, or unless the rules now reject it (an emptied answer, quality below the threshold): then
    it is rejected like a new example would be, with the finding saying why. Returns the stored result."""
    before = kit.get(example_id)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationError(f"{unknown[0]}: cannot be edited (editable: {', '.join(EDITABLE)})")
    edited = before.evolve(**changes)  # validates the new values
    check_values(edited)  # and what the store would refuse or change (a 64-bit overflow, NaN), as intake does
    [after] = assessment.reassess(kit, [edited], keep_status="unless_rejected", status=status)
    fields = (*EDITABLE, "status", "scores", "quality", "findings")
    if _write(kit, [(before, after)], "edited", actor, reason, fields) == 0:
        return before
    return kit.get(before.id)


def rescore(kit: Kit, query: ExampleQuery, *, actor: str, reason: str = "",
            progress: Callable[[int], None] | None = None) -> int:
    """Validate and score the matching examples again with today's plugins; statuses stay. Returns how many
    changed."""
    done = seen = 0
    for batch in _batches(kit, query):
        after = assessment.reassess(kit, batch)
        done += _write(kit, list(zip(batch, after, strict=True)), "rescored", actor, reason,
                       ("scores", "quality", "findings"))
        seen += len(batch)
        if progress is not None:
            progress(seen)
    return done


def _batches(kit: Kit, query: ExampleQuery) -> Iterator[list[Example]]:
    """The selection's ids first (cheap), then the examples batch by batch: updates never run under an open
    read cursor, and a change that moves an example out of the selection cannot skip or repeat others. A long
    `ids` selection (a cleanup policy's thousands) is resolved BATCH ids at a time, so no query carries an
    unbounded `IN (...)` list (SQLite caps the parameters of a statement)."""
    if query.ids is not None and len(query.ids) > BATCH:
        ids = [found for start in range(0, len(query.ids), BATCH)
               for found in kit.store.iter_ids(attrs.evolve(query, ids=query.ids[start:start + BATCH]))]
    else:
        ids = list(kit.store.iter_ids(query))
    for start in range(0, len(ids), BATCH):
        yield list(kit.store.iter_examples(ExampleQuery(ids=tuple(ids[start:start + BATCH]))))
