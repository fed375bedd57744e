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
    bulk_jaccard,
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
#: Sketches whose stored candidates are reduced at a time (`_stored_matches`): their pairs are the temporary memory.
STORED_CHUNK = 32
#: Pairs confirmed from read word sets at a time: their words, laid end to end, are the temporary memory.
PAIR_CHUNK = 8_192
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
            origins = [_text_or_none(examples[p].provenance.get("origin")) for p in positions]
            compared = compare(kit, index, positions, sketches, [rule.threshold for rule in rules], origins)
            for position, rule, matches in zip(positions, rules, compared, strict=True):
                flagged = [m for m in matches if m[0] >= rule.threshold]
                if flagged:
                    found[position] = [_finding(flagged, rule.threshold, rule.severity)]
        return found


def compare(kit: Kit, index: TaskIndex, positions: list[int], sketches: list[Sketch],
            thresholds: list[float], origins: list[str | None] | None = None) -> list[list[Match]]:
    """For each of `sketches` (the examples at `positions` of a batch, all of `index`'s task, in order), the
    stored examples at or above its threshold and the earlier examples of the batch at or above the lower of the
    novelty floor and its threshold, by exact similarity. Also sets each sketch's `stored_similarity` and
    `batch_similar` (the values from the floor up), which novelty reads. An earlier example of the batch is
    described by its origin (`origins`, as `data.jsonl:line 12`) where it has one: its position in the batch
    counts after exact duplicates are dropped, so it maps to no line of a file."""
    floor = half_found(index.num_perm, index.bands)
    starts = [confirm_from(min(floor, threshold), index.num_perm) for threshold in thresholds]
    best, flagged = _stored_matches(kit, index, sketches, starts, floor, thresholds)
    candidates: list[list[int]] = [[] for _ in sketches]  # per sketch: earlier batch numbers near what counts
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
                candidates[number].append(other)
    compared = []
    for number, (sk, found) in enumerate(zip(sketches, candidates, strict=True)):
        sk.stored_similarity, sk.batch_similar = best[number], []
        cut = min(floor, thresholds[number])
        matches: list[Match] = [(value, -1, other_id, f"stored example {other_id}")
                                for value, other_id in flagged[number]]
        for other in found:
            other_id = sketches[other].example_id
            value = jaccard(sk.word_hashes, sketches[other].word_hashes)
            position = positions[other]
            if value >= floor:
                sk.batch_similar.append((other_id, value))
            if value >= cut:
                where = origins[other] if origins and origins[other] is not None else f"position {position}"
                matches.append((value, position, other_id, f"example {other_id} ({where} in this batch)"))
        compared.append(matches)
    return compared


def _stored_matches(kit: Kit, index: TaskIndex, sketches: list[Sketch], starts: list[float], floor: float,
                    thresholds: list[float]) -> tuple[list[float], list[list[tuple[float, str]]]]:
    """Per sketch, the largest exact similarity to a stored example from the novelty floor up (0.0 for none), and
    the `(similarity, id)` of the stored examples at or above its threshold. Reduced in numpy, STORED_CHUNK
    sketches at a time, so memory stays bounded however many stored examples a sketch is close to (templated text
    makes every pair a candidate). A pair is settled by the word hashes kept in memory; the store is read for the
    pairs that flag (it has the last word: the example may be gone or edited) and for examples whose words are not
    kept."""
    best = np.zeros(len(sketches))
    flagged: list[list[tuple[float, str]]] = [[] for _ in sketches]
    levels = np.asarray(thresholds, dtype=np.float64)
    read_numbers, read_keys = [], []
    for first in range(0, len(sketches), STORED_CHUNK):
        part = sketches[first:first + STORED_CHUNK]
        numbers, keys, _ = index.candidates(part, starts[first:first + STORED_CHUNK], other_content=True)
        values = index.jaccard_kept(part, numbers, keys)
        numbers = numbers + first
        settled = ~np.isnan(values) & (values < levels[numbers])
        counted = settled & (values >= floor)
        np.maximum.at(best, numbers[counted], values[counted])
        read_numbers.append(numbers[~settled])
        read_keys.append(keys[~settled])
    numbers = np.concatenate(read_numbers) if read_numbers else np.zeros(0, dtype=np.int64)
    keys = np.concatenate(read_keys) if read_keys else np.zeros(0, dtype=np.int64)
    if not len(numbers):
        return best.tolist(), flagged
    ids = index.ids
    wanted: list[str] = [ids[key] for key in keys.tolist()]  # type: ignore[misc]
    packed = word_sets(kit, index, list(dict.fromkeys(wanted)))
    pairs = [(number, other_id) for number, other_id in zip(numbers.tolist(), wanted, strict=True)
             if other_id in packed]  # an id missing is gone from the store since it was indexed
    for first in range(0, len(pairs), PAIR_CHUNK):
        chunk = pairs[first:first + PAIR_CHUNK]
        words = np.frombuffer(b"".join(packed[other_id] for _, other_id in chunk), dtype="<u8").astype(np.uint64)
        lengths = np.array([len(packed[other_id]) // 8 for _, other_id in chunk], dtype=np.int64)
        chunk_numbers = np.array([number for number, _ in chunk], dtype=np.int64)
        values = bulk_jaccard(sketches, chunk_numbers, words, lengths)
        counted = values >= floor
        np.maximum.at(best, chunk_numbers[counted], values[counted])
        for number, (_, other_id), value in zip(chunk_numbers.tolist(), chunk, values.tolist(), strict=True):
            if value >= thresholds[number]:
                flagged[number].append((value, other_id))
    return best.tolist(), flagged


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


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
