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
#: Every byte but the ASCII digits: `raw.translate(None, _NOT_DIGITS)` keeps the digits (30x cheaper than the
#: search above, which a line with fewer than 19 digits in all can skip).
_NOT_DIGITS = bytes(sorted(set(range(256)) - set(b"0123456789")))
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
    if (len(raw.translate(None, _NOT_DIGITS)) >= 19 and _LONG_NUMBER.search(raw) is not None
            and _has_wide_float(value)):  # (fewer than 19 digits in all, the usual line, cannot hold one)
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


#: Nesting deeper than this is refused: orjson writes at most 255 levels, and the store adds a few of its own.
MAX_DEPTH = 200
_BASIC = (str, bool, type(None))
_FLAT = frozenset(_BASIC)


def json_problem(value: Any, where: str) -> str | None:
    """Why `value` (found at `where`, e.g. `outputs.answer`) cannot be stored exactly as JSON, or None.

    Mapping keys must be text, floats finite and integers within 64 bits, at any depth; nesting is at most
    MAX_DEPTH levels and never circular (a recursive YAML alias); any other type must be one orjson writes
    (dates, for example, are written as text)."""
    if type(value) is dict and all(type(k) is str and type(v) in _FLAT for k, v in value.items()):
        return None  # the usual record part, text only: no walk (this runs for every record of an import)
    stack: list[tuple[Any, Any, int]] = [(value, where, 0)]
    open_: set[int] = set()  # the containers on the path being walked: meeting one again is a cycle
    while stack:
        current, path, depth = stack.pop()
        if path is _CLOSE:
            open_.discard(id(current))
            continue
        if isinstance(current, _BASIC):
            continue
        if isinstance(current, float):
            if not math.isfinite(current):
                text = "NaN" if math.isnan(current) else ("Infinity" if current > 0 else "-Infinity")
                return (f"{path}: {text} is not a JSON number (it would be stored as null); write it as text "
                        f'("{text}") or leave the field out')
        elif isinstance(current, int):
            if not INT_MIN <= current <= INT_MAX:
                return (f"{path}: the integer {current} is wider than 64 bits and cannot be stored exactly; "
                        "write it as text (in quotes)")
        elif isinstance(current, dict | list | tuple):
            if id(current) in open_:
                return f"{path}: the value contains itself (a recursive alias?), which JSON cannot hold"
            if depth >= MAX_DEPTH:
                shown = path if len(path) <= 80 else f"{path[:60]}..."
                return f"{shown}: nested more than {MAX_DEPTH} levels deep; flatten it or store it as text"
            open_.add(id(current))
            stack.append((current, _CLOSE, depth))
            # pushed last to first, so the first problem in the record's own order is the one named
            if isinstance(current, dict):
                for key in current:
                    if not isinstance(key, str):
                        shown = "null" if key is None else f"{key!r} ({type(key).__name__})"
                        return f"{path}: the key {shown} is not text; field names must be text (quote the key)"
                stack.extend((item, f"{path}.{key}", depth + 1) for key, item in reversed(current.items()))
            else:
                stack.extend((current[index], f"{path}[{index}]", depth + 1)
                             for index in range(len(current) - 1, -1, -1))
        else:
            try:
                orjson.dumps(current)
            except TypeError:
                name = type(current).__name__
                return (f"{path}: {'an' if name[:1] in 'aeiou' else 'a'} {name} value is not JSON data (text, "
                        "numbers, true/false, null, lists, mappings)")
    return None


_CLOSE: Any = object()  # marks, on the walk's stack, the end of a container's items


def bytes_escaped(text: str) -> str:
    """`text` with each byte that was not UTF-8 (held by Python as a lone surrogate, from a command-line argument
    or a file name) written as `\\xff`: text that prints and stores."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def text_problem(value: Any, where: str) -> str | None:
    """Why a text in `value` (found at `where`) cannot be stored, or None: a lone surrogate, which UTF-8 cannot
    encode. Python makes one of each byte that is not UTF-8 in a command-line argument (`--domain`), and a
    program may hand one over; the store's JSON writer and its text columns refuse it with a traceback."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        current, path = stack.pop()
        if isinstance(current, str):
            if not current.isascii():
                try:
                    current.encode("utf-8")
                except UnicodeEncodeError as exc:
                    return (f"{path}: holds {current[exc.start]!r}, a lone surrogate (often a byte that is not "
                            "UTF-8, from a command-line argument or a file in another encoding), which cannot be "
                            "stored; check the encoding of its source")
        elif isinstance(current, dict):
            for key, item in reversed(current.items()):
                stack.append((item, f"{path}.{key}"))
                stack.append((key, f"{path} key {key!r}"))
        elif isinstance(current, list | tuple):
            stack.extend((current[index], f"{path}[{index}]") for index in range(len(current) - 1, -1, -1))
    return None
