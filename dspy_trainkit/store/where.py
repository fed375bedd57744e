"""`--where` conditions: `FIELD OP VALUE` over the example columns every store can filter on.

Kept deliberately small (no boolean logic, no SQL): conditions are ANDed, `topic=` (no value) means "no
topic", and `topic!=x` includes examples without a topic, which covers "reject everything
below 0.4 in geometry" or "accept the candidates of a topic" without exposing the store's query language.
"""

from __future__ import annotations

import math
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
        _finite(f"--where {text!r}", field, value)
    elif op not in ("=", "!="):
        raise TrainkitError(f"--where {text!r}: {field} takes = or != only")
    elif value == "":
        value = None  # 'domain=' selects examples without a domain, 'domain!=' those with one
    return field, op, value


def check_condition(condition: tuple[object, ...]) -> Condition:
    """A (field, op, value) triple built in code, checked like a parsed one: a NaN or infinite number is refused
    here too, so no store is ever asked to compare with one."""
    if len(condition) != 3:
        raise TrainkitError(f"where condition {condition!r}: use (field, op, value), e.g. ('quality', '<', 0.5)")
    field, op, value = condition
    if isinstance(value, float):
        _finite(f"where condition {condition!r}", str(field), value)
    return str(field), str(op), value


def _finite(where: str, field: str, value: float) -> None:
    """NaN and infinities are refused: SQLite and PostgreSQL order them differently (`quality<nan` selected
    nothing on one and everything on the other), and no real bound needs one."""
    if not math.isfinite(value):
        raise TrainkitError(f"{where}: {field} needs a finite number, not {value!r} (NaN and infinity compare "
                            "differently in each store); use a bound such as 'quality<0.5' or 'quality>=0'")


def parse_all(texts: tuple[str, ...] | list[str]) -> tuple[Condition, ...]:
    return tuple(parse_where(t) for t in texts)
