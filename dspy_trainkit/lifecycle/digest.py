"""A content digest of a whole store: one sha256 that two stores share exactly when they hold the same data.

Why: a restore drill (and `trainkit backup verify`) must show that what came back is what went in, across
backends (PostgreSQL -> archive -> SQLite). Counts alone miss an edited answer or a lost status change; the
digest covers every example's id, status and content hash, every snapshot's members digest, the audit trail,
every run's record and champion mark, and every plan slot's state. Derived data the backups leave out (example
values) is left out here too.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ..kit import Kit


def _feed(sha: Any, value: Any) -> None:
    sha.update(orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str))
    sha.update(b"\n")


def content_digest(kit: Kit) -> dict[str, Any]:
    """`{"sha256": HEX, "counts": {...}}` over the store's examples, snapshots, events, runs and plans."""
    from ..store import ExampleQuery

    store = kit.store
    sha = hashlib.sha256()
    counts = {"examples": 0, "snapshots": 0, "events": 0, "runs": 0, "plans": 0}
    rows = sorted((e.id, e.status, e.content_hash) for e in store.iter_examples(ExampleQuery()))
    for row in rows:
        _feed(sha, row)
    counts["examples"] = len(rows)
    for info in sorted(store.list_snapshots(), key=lambda s: s["name"]):
        _feed(sha, ["snapshot", info["name"], info.get("digest")])
        counts["snapshots"] += 1
    for event in store.iter_events():
        data = event.to_dict()
        _feed(sha, ["event", data.get("kind"), list(data.get("example_ids") or ()), data.get("actor"),
                    data.get("reason")])
        counts["events"] += 1
    champions = {c["task"]: c["run_id"] for c in store.list_champions()}
    for record in sorted(store.list_runs(), key=lambda r: r["id"]):
        _feed(sha, ["run", record["id"], record.get("task"), record.get("status"), record.get("score"),
                    champions.get(record.get("task")) == record["id"]])
        counts["runs"] += 1
    for plan in sorted(store.list_plans(), key=lambda p: p["name"]):
        slots = [(s.get("domain"), s.get("topic"), s.get("difficulty"), s.get("index"), s.get("state"),
                  s.get("example_id")) for s in store.plan_slot_records(plan["name"])]
        _feed(sha, ["plan", plan["name"], plan.get("task"), slots])
        counts["plans"] += 1
    return {"sha256": sha.hexdigest(), "counts": counts}
