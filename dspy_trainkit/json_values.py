"""Values the store keeps exactly: JSON data whose numbers survive a round trip.

The store writes inputs, outputs and metadata as JSON through orjson, which writes NaN and Infinity as `null`
and refuses integers outside the 64-bit range (and a parser turns them into floats). Either way a value would
be changed without a word, or a whole batch would fail with a traceback. So intake checks each record once and
rejects one that holds such a value, naming the field and what to write instead; readers parse JSON with
`parse_json`, which keeps wide integers exact so that the check sees them as they were written.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

#: The integers orjson writes and reads back exactly.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
_LONG_NUMBER = re.compile(rb"\d{19}")  # 19 digits or more: an integer that may not fit in 64 bits
_NOT_A_NUMBER = re.compile(rb"[:,\[]\s*-?(NaN|Infinity)\b")  # as Python's json.dumps writes them


def parse_json(data: bytes | str) -> Any:
    """`orjson.loads`, except that integers too wide for 64 bits are kept exact: orjson makes them floats
    (`12345678901234567890123` -> `1.2345678901234568e+22`), so text holding such a long number is parsed
    again by the standard library. Raises `orjson.JSONDecodeError` (a ValueError) for text that is not JSON,
    saying so when the cause is a NaN or Infinity (which Python's json module writes, but JSON has not)."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        found = _NOT_A_NUMBER.search(raw)
        if found is None:
            raise
        token = found.group(1).decode()
        raise orjson.JSONDecodeError(f'{token} is not a JSON number; write it as text ("{token}") or as null',
                                     exc.doc, exc.pos) from None
    if _LONG_NUMBER.search(raw) is not None and _has_wide_float(value):
        return json.loads(data)
    return value


def _has_wide_float(value: Any) -> bool:
    stack = [value]
    while stack:
        current = stack.pop()
        if type(current) is float:
            if current.is_integer() and abs(current) >= 2.0**63:  # -2**63 - 1 rounds to -2**63: be wide
                return True
        elif isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False


def json_problem(value: Any, where: str) -> str | None:
    """Why `value` (found at `where`, e.g. `outputs.answer`) cannot be stored exactly as JSON, or None.

    Mapping keys must be text, floats finite and integers within 64 bits, at any depth."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        current, path = stack.pop()
        kind = type(current)
        if kind is str or current is None or kind is bool or isinstance(current, str):
            continue
        if kind is float or isinstance(current, float):
            if not math.isfinite(current):
                text = "NaN" if math.isnan(current) else ("Infinity" if current > 0 else "-Infinity")
                return (f"{path}: {text} is not a JSON number (it would be stored as null); write it as text "
                        f'("{text}") or leave the field out')
        elif kind is int or isinstance(current, int):
            if not INT_MIN <= current <= INT_MAX:
                return (f"{path}: the integer {current} is wider than 64 bits and cannot be stored exactly; "
                        "write it as text (in quotes)")
        elif isinstance(current, dict):
            for key, item in current.items():
                if not isinstance(key, str):
                    shown = "null" if key is None else f"{key!r} ({type(key).__name__})"
                    return f"{path}: the key {shown} is not text; field names must be text (quote the key)"
                stack.append((item, f"{path}.{key}"))
        elif isinstance(current, list | tuple):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(current))
    return None  # other types are orjson's to serialise or refuse (see models.content_hash)
