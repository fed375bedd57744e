"""Reads a front end (the web dashboard, a notebook) needs beyond the `Kit` methods, exported through
`dspy_trainkit.pluginkit` so that a front-end plugin reaches them without importing the core's inner modules.

Each is a thin, named door onto code the CLI already uses (snapshot diffs, the Prometheus scrape, the redacted
settings of `trainkit config show`), so the dashboard and the CLI cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kit import Kit


def snapshot_diff(kit: Kit, a: str, b: str) -> dict[str, Any]:
    """What `trainkit snapshot diff A B` prints: ids added, removed and changed, with counts by label."""
    from .lifecycle.snapshots import diff

    return diff(kit, a, b)


def snapshot_contents(kit: Kit, name: str, *, limit: int | None = None) -> list[Any]:
    """Up to `limit` examples of snapshot `name` as they were when it was taken (NotFoundError naming the known
    snapshots when there is none)."""
    from itertools import islice

    from .lifecycle.snapshots import examples

    return list(islice(examples(kit, name), limit))


def metrics_text(kit: Kit) -> str:
    """One Prometheus scrape of the store, as `trainkit metrics` serves it."""
    from .operations.metrics import render

    return render(kit)


def settings_data(kit: Kit) -> dict[str, Any]:
    """The effective settings as `trainkit config show --json` prints them: every secret shown as ***."""
    import attrs

    from .redaction import redact_data

    data = attrs.asdict(kit.settings, value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v)
    result: dict[str, Any] = redact_data(data)
    return result
