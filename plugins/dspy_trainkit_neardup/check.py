"""Finding near-duplicates in a batch and scoring novelty: what the plugin's `validate` and `score` hooks do.

An example is a near-duplicate when the estimated Jaccard similarity of its word set (see `text.py`) to a stored
example of the same task (accepted or candidate), or to an earlier example of the same batch, is at least the
threshold of its task and domain. Identical content (same content hash) is not reported: the core's exact dedup
drops it. An example is never compared with itself (same id), so editing or re-scoring a stored example does not
flag it.

Novelty is 1 - the largest estimated similarity to a stored example of the task, counting the similarities from
the index's floor up: the similarity at which its LSH finds half of the pairs (0.70 with the default threshold).
Below that an example counts as novel (1.0): the index finds pairs of similarity 0.5 only by chance (3.5% of them
with the default threshold), and without a floor two equally ordinary examples would get 1.0 and 0.5 at random.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dspy_trainkit.pluginkit import Finding

from .index import KitState, Sketch, TaskIndex, half_found, hash_prefix, similarity, sketch, state_for

if TYPE_CHECKING:
    from dspy_trainkit.pluginkit import Example, Kit

CODE = "near-duplicate"


def validate(kit: Kit, examples: list[Example]) -> dict[int, list[Finding]]:
    state = state_for(kit)
    with state.lock:
        by_task: dict[str, list[int]] = {}
        for position, ex in enumerate(examples):
            by_task.setdefault(ex.task, []).append(position)
        found: dict[int, list[Finding]] = {}
        limit = 4 * max(kit.settings.batch_size, len(examples))
        for task, positions in by_task.items():
            index = state.index(kit, task)
            sketches = sketch([examples[p] for p in positions], index.num_perm)
            state.remember(sketches, limit)
            found.update(_check(kit, state, index, positions, examples, sketches))
        return found


def _check(kit: Kit, state: KitState, index: TaskIndex, positions: list[int], examples: list[Example],
           sketches: list[Sketch]) -> dict[int, list[Finding]]:
    """Findings for the examples at `positions` (all of one task), whose sketches are `sketches`."""
    batch = index.new_batch()  # the examples of this batch seen so far, by their number in `sketches`
    floor = half_found(index.num_perm, index.bands)
    found: dict[int, list[Finding]] = {}
    for number, (position, sk) in enumerate(zip(positions, sketches, strict=True)):
        sk.stored_similarity = 0.0
        if sk.minhash is None:
            continue
        rule = state.rule(kit, index.task, examples[position].domain)
        matches: list[tuple[float, int, str, str]] = []  # (similarity, batch position or -1, id, description)
        for other_id, other_hash, value in index.neighbours(sk):
            if value >= floor:
                sk.stored_similarity = max(sk.stored_similarity, value)
                if value >= rule.threshold and other_hash != sk.hash_prefix:
                    matches.append((value, -1, other_id, f"stored example {other_id}"))
        for other in batch.query(sk.minhash):
            earlier = sketches[other]
            if earlier.hash_prefix == sk.hash_prefix or earlier.example_id == sk.example_id:
                continue
            value = similarity(sk.signature, earlier.signature, index.num_perm)
            if value >= rule.threshold:
                matches.append((value, positions[other], earlier.example_id,
                                f"example {earlier.example_id} (position {positions[other]} in this batch)"))
        batch.insert(number, sk.minhash)
        if matches:
            found[position] = [_finding(matches, rule.threshold, rule.severity)]
    return found


def _finding(matches: list[tuple[float, int, str, str]], threshold: float, severity: str) -> Finding:
    """One finding naming the most similar example; on a tie a stored one, then the earliest (the same answer
    whatever order the LSH returns candidates in)."""
    value, _, _, other = min(matches, key=lambda m: (-m[0], m[1], m[2]))
    more = f"; {len(matches) - 1} more at or above the threshold" if len(matches) > 1 else ""
    return Finding(severity=severity, code=CODE,
                   message=f"near-duplicate of {other}: estimated similarity {value:.2f} >= {threshold:g}{more}")


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
            floor = half_found(index.num_perm, index.bands)
            for i, sk in zip(positions, sketch([examples[i] for i in positions], index.num_perm), strict=True):
                sk.stored_similarity = max((v for _, _, v in index.neighbours(sk) if v >= floor), default=0.0)
                known[i] = sk
        return {i: {"novelty": 1.0 - sk.stored_similarity} for i, sk in enumerate(known) if sk is not None}
