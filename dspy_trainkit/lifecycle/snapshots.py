"""Snapshots: immutable, named sets of examples that optimization reads, so a result can be reproduced.

A snapshot records each example's id and content hash and its whole content as it was (the store keeps that
copy), plus the selection and settings that chose it. Reading a snapshot later gives the same examples, byte
for byte, after edits, archiving or cleanup. `diff` compares two snapshots by id and content hash; `split`
makes deterministic, seeded, stratified train/dev splits of one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import NotFoundError, TrainkitError, ValidationError
from ..models import TASK_NAME, Event, Example, Snapshot
from ..store import ExampleQuery, redact_url
from . import balance

if TYPE_CHECKING:
    from ..kit import Kit

GROUPS = ("task", "domain", "topic", "difficulty")


def digest_of(members: list[tuple[str, str]]) -> str:
    """sha256 over the (id, content hash) pairs in order: equal digests mean equal snapshots."""
    sha = hashlib.sha256()
    for example_id, content in members:
        sha.update(f"{example_id}:{content}\n".encode())
    return sha.hexdigest()


def _query_config(query: ExampleQuery) -> dict[str, Any]:
    data = attrs.asdict(query)
    data["where"] = [list(c) for c in query.where]
    data["ids"] = list(query.ids) if query.ids is not None else None
    return {k: v for k, v in data.items() if v not in (None, [], 0) or k == "status"}


def create(kit: Kit, name: str, query: ExampleQuery, *, balanced: bool = False, cap: int | None = None,
           total: int | None = None, actor: str = "api", reason: str = "", progress: Any = None) -> Snapshot:
    """Take snapshot `name` of the examples `query` selects (balanced: at most `cap` per cell, best first)."""
    if not isinstance(name, str) or not TASK_NAME.match(name):
        raise ValidationError(f"snapshot name {name!r}: use letters, digits, '_', '.', '-', starting with a letter")
    if kit.store.snapshot_info(name) is not None:
        raise TrainkitError(f"snapshot {name!r} exists already; snapshots never change, so pick another name "
                            "(see `trainkit snapshot list`)")
    if balanced:
        examples = balance.select(kit, query, cap=cap, total=total)
    else:
        examples = []
        for example in kit.store.iter_examples(query):
            examples.append(example)
            if progress is not None and len(examples) % 1000 == 0:
                progress(len(examples))
    if progress is not None:
        progress(len(examples))
    tasks = sorted({ex.task for ex in examples})
    config: dict[str, Any] = {"query": _query_config(query), "balanced": balanced}
    if balanced:
        config.update(cap=cap if cap is not None else kit.settings.task(query.task or "").cell_cap, total=total)
    config["tasks"] = {t: {"cell_target": kit.settings.task(t).cell_target, "cell_cap": kit.settings.task(t).cell_cap,
                           "min_quality": kit.settings.task(t).min_quality} for t in tasks}
    config["store"] = redact_url(kit.store.url)
    members = [(ex.id, ex.content_hash) for ex in examples]
    snapshot = Snapshot(name=name, members=members, config=config)
    digest = digest_of(members)
    event = Event(kind="snapshot_created", actor=actor, reason=reason,
                  details={"snapshot": name, "size": len(members), "digest": digest})
    kit.store.create_snapshot(snapshot, examples, event, digest)
    kit.notify(event)
    return snapshot


def info(kit: Kit, name: str) -> dict[str, Any]:
    found = kit.store.snapshot_info(name)
    if found is None:
        known = ", ".join(s["name"] for s in kit.store.list_snapshots()) or "none yet"
        raise NotFoundError(f"no snapshot named {name!r} (known: {known}); take one with `trainkit snapshot create`")
    return found


def get(kit: Kit, name: str) -> Snapshot:
    """The snapshot with its members (id, content hash) and config."""
    found = info(kit, name)
    members = [(m[0], m[1]) for m in kit.store.snapshot_members(name)]
    return Snapshot(name=name, members=members, config=found["config"], created_at=found["created_at"])


def examples(kit: Kit, name: str, *, task: str | None = None) -> Iterator[Example]:
    """The snapshot's examples as they were when it was taken (optionally only one task's)."""
    info(kit, name)
    for example in kit.store.iter_snapshot_examples(name):
        if task is None or example.task == task:
            yield example


def diff(kit: Kit, a: str, b: str) -> dict[str, Any]:
    """What changed from snapshot `a` to snapshot `b`: ids added, removed, and changed (same id, another
    content hash), with counts grouped by task, domain, topic and difficulty (labels as in `b`, or `a` for
    removed examples)."""
    info(kit, a)
    info(kit, b)
    old = {m[0]: m for m in kit.store.snapshot_members(a)}
    new = {m[0]: m for m in kit.store.snapshot_members(b)}
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(i for i in set(old) & set(new) if old[i][1] != new[i][1])
    groups: dict[str, dict[str, dict[str, int]]] = {g: defaultdict(lambda: {"added": 0, "removed": 0, "changed": 0})
                                                    for g in GROUPS}
    for kind, ids, source in (("added", added, new), ("removed", removed, old), ("changed", changed, new)):
        for example_id in ids:
            member = source[example_id]
            for position, group in enumerate(GROUPS, start=2):
                label = str(member[position]) if member[position] is not None else "(none)"
                groups[group][label][kind] += 1
    return {"from": a, "to": b, "added": added, "removed": removed, "changed": changed,
            "unchanged": len(set(old) & set(new)) - len(changed),
            "by": {g: dict(sorted(v.items())) for g, v in groups.items()}}


def _rank(seed: int | str, example_id: str) -> str:
    return hashlib.sha256(f"{seed}:{example_id}".encode()).hexdigest()


def seeded_cut(examples: list[Example], fraction: float, seed: int | str,
               *, least: int = 0) -> tuple[list[Example], list[Example]]:
    """(first, rest): `examples` ordered by a seeded hash of their id, the first max(least, round(n * fraction))
    of them and the others, each list in that order. The same examples, fraction and seed always give the same
    cut, whatever order they come in."""
    ranked = sorted(examples, key=lambda ex: _rank(seed, ex.id))
    cut = max(least, round(len(ranked) * fraction))
    return ranked[:cut], ranked[cut:]


def split(kit: Kit, name: str, *, dev_fraction: float = 0.2, seed: int = 0,
          task: str | None = None) -> tuple[list[Example], list[Example]]:
    """Deterministic train/dev split of a snapshot, stratified by task and cell (see `split_examples`). The
    same snapshot, fraction and seed always give the same split, whatever order the store returns."""
    if not 0 <= dev_fraction < 1:
        raise ValidationError(f"dev_fraction {dev_fraction!r} must be at least 0 and below 1")
    return split_examples(list(examples(kit, name, task=task)), dev_fraction=dev_fraction, seed=seed)


def split_examples(members: Iterable[Example], *, dev_fraction: float = 0.2,
                   seed: int = 0) -> tuple[list[Example], list[Example]]:
    """`split` of examples not (yet) in a snapshot, such as the ones a snapshot would take (a dry run): in each
    task x cell stratum the examples are ordered by a seeded hash of their id and the first
    round(n * dev_fraction) go to dev; both lists keep the order of `members`."""
    if not 0 <= dev_fraction < 1:
        raise ValidationError(f"dev_fraction {dev_fraction!r} must be at least 0 and below 1")
    strata: dict[tuple[Any, ...], list[tuple[int, Example]]] = defaultdict(list)
    for position, example in enumerate(members):
        key = (example.task, example.domain or "", example.topic or "", example.difficulty or "")
        strata[key].append((position, example))
    train: list[tuple[int, Example]] = []
    dev: list[tuple[int, Example]] = []
    for key in sorted(strata):
        ranked = sorted(strata[key], key=lambda pair: _rank(seed, pair[1].id))
        cut = round(len(ranked) * dev_fraction)
        dev.extend(ranked[:cut])
        train.extend(ranked[cut:])
    train.sort(key=lambda pair: pair[0])  # back in the given order
    dev.sort(key=lambda pair: pair[0])
    return [ex for _, ex in train], [ex for _, ex in dev]


def export(kit: Kit, name: str, output: Path | None, *, format_name: str | None = None, provenance: bool = False,
           task: str | None = None) -> int:
    """Write a snapshot's examples (as they were) with a registered export format, like `trainkit export`
    (`exporting.export_examples`); returns how many."""
    from ..files.exporting import export_examples

    info(kit, name)
    tasks = {task} if task is not None else {m[2] for m in kit.store.snapshot_members(name)}
    return export_examples(kit, output, examples=examples(kit, name, task=task), tasks=tasks,
                           format_name=format_name, provenance=provenance)
