"""What a store read asks for (`ExampleQuery`), what a batch insert answers (`InsertResult`), and the label
columns every store can group and filter by."""

from __future__ import annotations

import math
from typing import Any

import attrs

#: Columns `stats` can group by, and `ExampleQuery` can filter on.
GROUP_COLUMNS = ("task", "status", "source", "domain", "topic", "difficulty")


def _as_ids(value: Any) -> tuple[str, ...] | None:
    """`ids="0192..."` or any iterable of ids -> a tuple, so API callers need not build one."""
    if value is None or isinstance(value, tuple):
        return value
    return (value,) if isinstance(value, str) else tuple(value)


def _as_conditions(value: Any) -> tuple[tuple[str, str, object], ...]:
    """`where="quality<0.5"`, a list of such strings, or parsed (field, op, value) triples -> parsed triples."""
    items = [value] if isinstance(value, str) else list(value or ())
    if not items:
        return ()  # no condition: the parser (and its patterns) stay unimported, as `stats` needs none
    from .where import check_condition, parse_where

    return tuple(parse_where(item) if isinstance(item, str) else check_condition(tuple(item)) for item in items)


def _finite_min_quality(value: Any) -> Any:
    """NaN is refused like a NaN `--where` bound (`--min-quality nan` passed click's 0..1 range check)."""
    if isinstance(value, float) and not math.isfinite(value):
        from ..errors import TrainkitError

        raise TrainkitError(f"--min-quality {value!r}: needs a finite number between 0 and 1, e.g. 0.5")
    return value


@attrs.frozen(kw_only=True)
class ExampleQuery:
    """A filter over examples: exact matches on the label columns, a minimum quality, paging and order."""

    task: str | None = None
    status: str | None = None
    source: str | None = None
    domain: str | None = None
    topic: str | None = None
    difficulty: str | None = None
    min_quality: float | None = attrs.field(default=None, converter=lambda v: _finite_min_quality(v))
    ids: tuple[str, ...] | None = attrs.field(default=None, converter=lambda v: _as_ids(v))
    # (field, op, value) from dspy_trainkit.store.where, ANDed; "quality<0.5" strings are parsed here
    where: tuple[tuple[str, str, object], ...] = attrs.field(default=(), converter=lambda v: _as_conditions(v))
    # case-insensitive substring of the inputs or outputs (their stored JSON text, so a field name matches too)
    text: str | None = attrs.field(default=None, converter=lambda v: v or None)
    # keyset paging: only examples after this id in `order` ("created": larger ids, "-created": smaller ids);
    # a page of a million-row listing then costs one index seek, where `offset` skips every row before it
    after: str | None = None
    limit: int | None = None
    offset: int = 0
    order: str = "created"  # "created" | "-created" | "-quality"

    def equalities(self) -> dict[str, str]:
        return {col: getattr(self, col) for col in GROUP_COLUMNS if getattr(self, col) is not None}


@attrs.frozen
class InsertResult:
    """What a batch insert did: the ids stored and the ones skipped as duplicates (same task + content hash)."""

    inserted: tuple[str, ...]
    duplicates: tuple[str, ...]
