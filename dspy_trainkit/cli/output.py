"""Printing for commands: JSON for machines (`--json`), short aligned tables and key/value blocks for people.

Text from the store (example content, labels, messages) may hold terminal escape sequences or other control
characters that would recolour, retitle or rewrite the user's terminal; tables, previews and `show` print it
through `printable`, which shows each such character as a visible escape (`\x1b`). JSON output escapes
control characters by itself.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

import click
import orjson

#: C0 controls but tab and newline, DEL, C1 controls (0x9b is an 8-bit CSI), and bidirectional overrides
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = True) -> str:
    """`text` safe for a terminal: each control character (tabs kept; newlines too unless `newlines=False`)
    shown as a visible escape such as `\x1b`, so no escape sequence from the data reaches the terminal."""
    text = _CONTROL.sub(_visible, text)
    return text if newlines else text.replace("\n", "\\n")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def echo_json_stream(items: Iterable[Any]) -> None:
    """A JSON array written item by item, so a long listing never sits in memory whole."""
    first = True
    click.echo("[", nl=False)
    for item in items:
        click.echo(("\n  " if first else ",\n  ") + orjson.dumps(item).decode(), nl=False)
        first = False
    click.echo("\n]" if not first else "]")


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Print rows under headers with columns padded to fit; returns the number of rows."""
    rows = [["" if v is None else printable(str(v), newlines=False) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip())
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())
    return len(rows)


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def preview(value: Any, width: int = 40) -> str:
    text = printable(" ".join(str(value).split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def count_of(n: int, noun: str, plural: str | None = None) -> str:
    """`count_of(1, "example")` -> "1 example", `count_of(3, "example")` -> "3 examples"."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
