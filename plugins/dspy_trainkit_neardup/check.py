"""Finding near-duplicates in a batch and scoring novelty: what the plugin's `validate` and `score` hooks do.

An example is a near-duplicate when the Jaccard similarity of its word set (see `text.py`) to a stored example
of the same task (accepted or candidate), or to an earlier example of the same batch, is at least the threshold
of its task and domain. Identical content (same content hash) is not reported: the core's exact dedup drops it.
An example is never compared with itself (same id), so editing or re-scoring a stored example does not flag it.

MinHash only finds the candidates. Its estimate has a standard error of about 0.03 near 0.85, which flagged
pairs whose real similarity was 0.82-0.84 at threshold 0.85; so every candidate whose estimate comes within
three standard errors of what counts is confirmed with its exact similarity (the word sets of the batch are at
hand; those of stored candidates, as 64-bit word hashes, are read from their saved signature rows in one query
per batch, see `persist.word_sets`), and only the exact value flags, is reported and sets novelty. The estimates
of all candidate pairs of a batch are made in one numpy operation (`TaskIndex.candidates`, `index.estimates`).

Novelty is 1 - the largest similarity to a stored example of the task, or to an earlier example of the same
batch that is scored too (so a pair scores the same whether it arrives in one batch or in two), counting the
similarities from the index's floor up: the similarity at which its LSH finds half of the pairs (0.70 with the
default threshold). Below that an example counts as novel (1.0): the index finds pairs of similarity 0.5 only by
chance (3.5% of them with the default threshold), and without a floor two equally ordinary examples would get
1.0 and 0.5 at random.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dspy_trainkit.pluginkit import Finding

from .bands import earlier_in_batch
from .index import (
    Sketch,
    TaskIndex,
    confirm_from,
    estimates,
    half_found,
    hash_prefix,
    jaccard,
    lsh_shape,
    sketch,
    state_for,
)
from .persist import word_sets
from .rules import lowest_threshold

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dspy_trainkit.pluginkit import Example, Kit

CODE = "near-duplicate"
Match = tuple[float, int, str, str]  # (similarity, batch position or -1 for a stored example, id, description)


def prepare(kit: Kit, examples: list[Example]) -> dict[int, Sketch]:
    """Each example's sketch in the shape of its task's index (from the settings alone: no store, no index)."""
    state = state_for(kit)
    with state.lock:
        by_task: dict[str, list[int]] = {}
        for position, ex in enumerate(examples):
            by_task.setdefault(ex.task, []).append(position)
        made: dict[int, Sketch] = {}
        for task, positions in by_task.items():
            state.rule(kit, task, None)  # checks the settings first
            num_perm, bands = lsh_shape(lowest_threshold(kit, task))
            made.update(zip(positions, sketch([examples[p] for p in positions], num_perm, bands), strict=True))
        return made


def _sketches(index: TaskIndex, examples: list[Example], made: list[Sketch | None]) -> list[Sketch]:
    """The sketches `prepare` made for `examples`, or new ones when any is missing or of another shape."""
    if all(sk is not None and sk.task == index.task and (sk.bands is None or len(sk.bands) == index.bands)
           for sk in made):
        return made  # type: ignore[return-value]
    return sketch(examples, index.num_perm, index.bands)


def validate(kit: Kit, examples: list[Example], prepared: Mapping[int, Sketch] | None = None
             ) -> dict[int, list[Finding]]:
    prepared = prepared or {}
    state = state_for(kit)
    with state.lock:
        by_task: dict[str, list[int]] = {}
        for position, ex in enumerate(examples):
            by_task.setdefault(ex.task, []).append(position)
        found: dict[int, list[Finding]] = {}
        limit = 4 * max(kit.settings.batch_size, len(examples))
        for task, positions in by_task.items():
            index = state.index(kit, task)
            sketches = _sketches(index, [examples[p] for p in positions], [prepared.get(p) for p in positions])
            state.remember(sketches, limit)
            rules = [state.rule(kit, task, examples[p].domain) for p in positions]
            compared = compare(kit, index, positions, sketches, [rule.threshold for rule in rules])
            for position, rule, matches in zip(positions, rules, compared, strict=True):
                flagged = [m for m in matches if m[0] >= rule.threshold]
                if flagged:
                    found[position] = [_finding(flagged, rule.threshold, rule.severity)]
        return found


def compare(kit: Kit, index: TaskIndex, positions: list[int], sketches: list[Sketch],
            thresholds: list[float]) -> list[list[Match]]:
    """For each of `sketches` (the examples at `positions` of a batch, all of `index`'s task, in order), the
    stored examples and earlier examples of the batch whose exact similarity to it is at least the lower of the
    novelty floor and its threshold. Also sets each sketch's `stored_similarity` and `batch_similar` (the values
    from the floor up), which novelty reads."""
    floor = half_found(index.num_perm, index.bands)
    starts = [confirm_from(min(floor, threshold), index.num_perm) for threshold in thresholds]
    candidates: list[list[tuple[int, str]]] = [[] for _ in sketches]  # per sketch: (batch number or -1; id)
    # stored candidates whose estimate is near what counts, other content than the sketch's: one LSH query and
    # one numpy estimate for the batch
    numbers, keys, _ = index.candidates(sketches, starts, other_content=True)
    # words kept in memory settle a pair below what counts without reading the store; a pair at or above it is
    # confirmed from the store as before (the store has the last word: the example may be gone or edited)
    below = index.jaccard_kept(sketches, numbers, keys) < np.minimum(floor, np.asarray(thresholds))[numbers]
    ids = index.ids
    for number, key in zip(numbers[~below].tolist(), keys[~below].tolist(), strict=True):
        candidates[number].append((-1, ids[key]))  # type: ignore[arg-type]
    # earlier examples of the batch sharing a band, estimated together
    words_of = [number for number, sk in enumerate(sketches) if sk.bands is not None]
    later, earlier = [], []
    if len(words_of) > 1:
        for row, found in enumerate(earlier_in_batch(np.stack([sketches[n].bands for n in words_of]))):
            sk = sketches[words_of[row]]
            for e in found:
                other = sketches[words_of[e]]
                if other.hash_prefix != sk.hash_prefix and other.example_id != sk.example_id:
                    later.append(row)
                    earlier.append(e)
    if later:
        signatures = np.frombuffer(b"".join(sketches[n].signature for n in words_of),
                                   dtype=np.uint8).reshape(len(words_of), -1)
        values = estimates(signatures, signatures, np.array(later), np.array(earlier)).tolist()
        for row, e, value in zip(later, earlier, values, strict=True):
            number, other = words_of[row], words_of[e]
            if value >= starts[number]:
                candidates[number].append((other, sketches[other].example_id))
    stored_words = word_sets(kit, index, list(dict.fromkeys(i for found in candidates for o, i in found if o < 0)))
    compared = []
    for number, (sk, found) in enumerate(zip(sketches, candidates, strict=True)):
        sk.stored_similarity, sk.batch_similar = 0.0, []
        cut = min(floor, thresholds[number])
        matches: list[Match] = []
        for other, other_id in found:
            if other >= 0:
                value = jaccard(sk.word_hashes, sketches[other].word_hashes)
            else:
                other_words = stored_words.get(other_id)
                if other_words is None:  # gone from the store since it was indexed
                    continue
                value = jaccard(sk.word_hashes, other_words)
            if other < 0:
                position, description = -1, f"stored example {other_id}"
                if value >= floor:
                    sk.stored_similarity = max(sk.stored_similarity, value)
            else:
                position = positions[other]
                description = f"example {other_id} (position {position} in this batch)"
                if value >= floor:
                    sk.batch_similar.append((other_id, value))
            if value >= cut:
                matches.append((value, position, other_id, description))
        compared.append(matches)
    return compared


def _finding(matches: list[Match], threshold: float, severity: str) -> Finding:
    """One finding naming the most similar example; on a tie a stored one, then the earliest (the same answer
    whatever order the LSH returns candidates in)."""
    value, _, _, other = min(matches, key=lambda m: (-m[0], m[1], m[2]))
    more = f"; {len(matches) - 1} more at or above the threshold" if len(matches) > 1 else ""
    return Finding(severity=severity, code=CODE,
                   message=f"near-duplicate of {other}: similarity {value:.2f} >= {threshold:g}{more}")


def novelty(kit: Kit, examples: list[Example]) -> dict[int, dict[str, float]]:
    state = state_for(kit)
    with state.lock:
        known: list[Sketch | None] = []
        for ex in examples:
            sk = state.pending.get(ex.id)
            usable = sk is not None and sk.stored_similarity is not None and sk.task == ex.task
            known.append(sk if usable and sk.hash_prefix == hash_prefix(ex.content_hash) else None)
        missing: dict[str, list[int]] = {}  # scored without this plugin's validate first: compare now
        for i, sk in enumerate(known):
            if sk is None:
                missing.setdefault(examples[i].task, []).append(i)
        for task, positions in missing.items():
            index = state.index(kit, task)
            sketches = sketch([examples[i] for i in positions], index.num_perm, index.bands)
            compare(kit, index, positions, sketches, [1.0] * len(positions))  # the floor is what counts here
            for i, sk in zip(positions, sketches, strict=True):
                known[i] = sk
        scored = {ex.id for ex in examples}  # an earlier example of the batch that was rejected does not count
        scores = {}
        for i, sk in enumerate(known):
            if sk is not None:
                closest = max([sk.stored_similarity or 0.0, *(v for other, v in sk.batch_similar if other in scored)])
                scores[i] = {"novelty": 1.0 - closest}
        return scores
