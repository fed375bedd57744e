"""The `superseded` cleanup policy, which this plugin registers through the `cleanup_policies` hook: a live
example that is a near-duplicate (exact similarity at or above its task's and domain's threshold, candidates
found by MinHash as in `check.py`) of a better one is archived; each cluster keeps its best.

Better means higher quality, then accepted before candidate, then older. Examples are taken best first; each is
compared with the ones kept so far (an LSH of them, in the shape the task's lowest threshold needs) and kept
when none is similar enough, so a chain A ~ B ~ C where A and C differ more keeps A and C.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dspy_trainkit.pluginkit import ExampleQuery

from . import index as nd
from . import rules

if TYPE_CHECKING:
    from dspy_trainkit.pluginkit import Example, Kit


def superseded(kit: Kit, task: str, excluded: frozenset[str]) -> Iterator[tuple[str, str]]:
    """`(example id, detail)` of each live example of `task` (not in `excluded`) superseded by a better one."""
    live = [ex for ex in kit.store.iter_examples(ExampleQuery(task=task, where=nd.LIVE)) if ex.id not in excluded]
    if len(live) < 2:
        return
    num_perm, bands = nd.lsh_shape(rules.lowest_threshold(kit, task))
    ranked = sorted(live, key=_better_first)
    sketches = nd.sketch(ranked, num_perm, bands)
    kept: dict[str, nd.Sketch] = {}  # the examples kept so far
    by_band: dict[tuple[int, int], list[str]] = {}  # (band, band hash) -> ids of kept examples: a one-by-one LSH
    thresholds: dict[str | None, float] = {}
    for example, sk in zip(ranked, sketches, strict=True):
        if example.domain not in thresholds:
            thresholds[example.domain] = rules.rule(kit, task, example.domain).threshold
        threshold = thresholds[example.domain]
        start = nd.confirm_from(threshold, num_perm)  # as validate does: the estimate finds, the exact value decides
        entries = list(enumerate(sk.bands.tolist())) if sk.bands is not None else []
        others = {other for entry in entries for other in by_band.get(entry, ())}
        best = max(((nd.jaccard(sk.word_hashes, kept[other].word_hashes), other) for other in sorted(others)
                    if nd.similarity(sk.signature, kept[other].signature, num_perm) >= start), default=None)
        if best is not None and best[0] >= threshold:
            yield example.id, f"near-duplicate ({best[0]:.2f}) of better example {best[1]}"
        elif entries:
            kept[example.id] = sk  # kept: later (worse) examples are compared with it
            for entry in entries:
                by_band.setdefault(entry, []).append(example.id)


def _better_first(example: Example) -> tuple[Any, ...]:
    return (-(example.quality if example.quality is not None else -1.0),
            0 if example.status == "accepted" else 1, example.created_at, example.id)
