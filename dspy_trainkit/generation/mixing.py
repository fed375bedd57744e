"""The mix of synthetic and real data: how much of each task's (and domain's) accepted data is synthetic.

Why: synthetic data fills gaps cheaply, but a trainset that is mostly generated teaches the generator's habits
(its phrasings, its mistakes) rather than the real distribution. Each task may cap the synthetic share of its
accepted examples with `max_synthetic_ratio`; intake enforces the cap when it decides a status
(`assessment.cap_synthetic`), and `trainkit stats` / `kit.stats()` show the share from these rows. Synthetic
means source `synthetic` or `bootstrap`; everything else (collected, imported, manual) is real.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from ..assessment import SYNTHETIC_SOURCES
from ..store import ExampleQuery

if TYPE_CHECKING:
    from ..kit import Kit


def synthetic_share(kit: Kit, query: ExampleQuery | None = None) -> list[dict[str, Any]]:
    """One row per task and one per (task, domain) of the accepted examples matching `query` (its status is
    replaced by accepted): `synthetic`, `real`, `ratio` (synthetic / all, None when empty) and the task's `cap`."""
    query = attrs.evolve(query or ExampleQuery(), status="accepted", limit=None, offset=0)
    return share_rows(kit, kit.store.group_counts(["task", "domain", "source"], query))


def share_rows(kit: Kit, groups: Iterable[tuple[tuple[Any, ...], int]]) -> list[dict[str, Any]]:
    """The rows of `synthetic_share` from `((task, domain, source), count)` groups of accepted examples
    (`kit.stats` has them from its one grouped pass already)."""
    counts: dict[tuple[str, str | None], list[int]] = {}
    for (task, domain, source), n in groups:
        column = 0 if source in SYNTHETIC_SOURCES else 1
        for key in ((task, None), (task, domain if domain is not None else "(none)")):
            counts.setdefault(key, [0, 0])[column] += n
    rows = []
    for (task, domain), (synthetic, real) in sorted(counts.items(), key=lambda i: (i[0][0], i[0][1] or "")):
        total = synthetic + real
        rows.append({"task": task, "domain": domain, "synthetic": synthetic, "real": real,
                     "ratio": round(synthetic / total, 4) if total else None,
                     "cap": kit.settings.task(task).max_synthetic_ratio})
    return rows
