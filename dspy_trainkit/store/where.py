"""`--where` conditions: `FIELD OP VALUE` over the example columns every store can filter on.

Kept deliberately small (no boolean logic, no SQL): conditions are ANDed, `topic=` (no value) means "no
topic", and `topic!=x` includes examples without a topic, which covers "reject everything
below 0.4 in geometry" or "accept the candidates of a topic" without exposing the store's query language.
"""

from __future__ import annotations

import re

from ..errors import TrainkitError

FIELDS = ("task", "status", "source", "domain", "topic", "difficulty", "quality", "created_at", "updated_at")
NUMERIC = ("quality", "created_at", "updated_at")
OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(!=|>=|<=|=|>|<)\s*(.*?)\s*$")

Condition = tuple[str, str, object]


def parse_where(text: str) -> Condition:
    """`"quality < 0.5"` -> `("quality", "<", 0.5)`; a clear error naming what is allowed otherwise."""
    match = _CONDITION.match(text)
    if not match:
        raise TrainkitError(f"--where {text!r}: use FIELD OP VALUE, e.g. 'quality<0.5' or 'topic=geometry' "
                            f"(operators {' '.join(OPERATORS)})")
    field, op, raw = match.groups()
    if field not in FIELDS:
        raise TrainkitError(f"--where {text!r}: unknown field {field!r}; use one of {', '.join(FIELDS)}")
    value: object = raw.strip("'\"")
    if field in NUMERIC:
        try:
            value = float(raw)
        except ValueError:
            raise TrainkitError(f"--where {text!r}: {field} needs a number") from None
    elif op not in ("=", "!="):
        raise TrainkitError(f"--where {text!r}: {field} takes = or != only")
    elif value == "":
        value = None  # 'domain=' selects examples without a domain, 'domain!=' those with one
    return field, op, value


def parse_all(texts: tuple[str, ...] | list[str]) -> tuple[Condition, ...]:
    return tuple(parse_where(t) for t in texts)
