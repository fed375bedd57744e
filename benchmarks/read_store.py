"""Build a large store fast for the read-path benchmarks: trainkit creates the schema, then rows in trainkit's
schema are bulk inserted with raw sqlite3 (what intake would store, without paying for intake itself).

Rows look like imported QA data: task `qa`, inputs {"question"}, outputs {"answer"}, 4 domains x 10 topics x 3
difficulties, 80% accepted, and one `insert` audit event per 1000 examples, written the way this checkout's
store writes events (so the event-to-example links exist when this checkout has them).

    python benchmarks/read_store.py PATH.db [--rows 1000000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from pathlib import Path

import orjson

BATCH = 1000


def build(path: Path, rows: int, seed: int = 0) -> None:
    import attrs

    import dspy_trainkit as tk
    from dspy_trainkit.ids import new_id
    from dspy_trainkit.models import Event

    if path.exists():
        raise SystemExit(f"{path} exists; give a new path")
    with tk.open(f"sqlite:///{path}") as kit:  # creates the schema and applies this checkout's migrations
        store = kit.store
    rng = random.Random(seed)
    domains = ["algebra", "geometry", "physics", "history"]
    topics = [f"topic{i}" for i in range(10)]
    levels = ["easy", "medium", "hard"]
    words = [f"w{i}" for i in range(5000)]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=wal")
    db.execute("PRAGMA synchronous=off")
    db.execute("PRAGMA cache_size=-262144")
    has_links = bool(db.execute("SELECT 1 FROM sqlite_master WHERE name='event_examples'").fetchone())
    now = time.time() - 86400
    marks = ", ".join("?" * 18)
    db.execute("BEGIN")
    for start in range(0, rows, BATCH):
        batch = []
        for n in range(start, min(rows, start + BATCH)):
            question = " ".join(rng.choices(words, k=12)) + f" #{n}?"
            answer = " ".join(rng.choices(words, k=8))
            quality = round(rng.random(), 3)
            status = "accepted" if rng.random() < 0.8 else rng.choice(["candidate", "rejected"])
            batch.append((new_id(), "qa", f"{rng.getrandbits(256):064x}",
                          orjson.dumps({"question": question}).decode(), orjson.dumps({"answer": answer}).decode(),
                          rng.choice(domains), rng.choice(topics), rng.choice(levels), "imported", status,
                          orjson.dumps({"coherence": quality}).decode(), quality, "[]",
                          orjson.dumps({"origin": f"file:/data/qa.jsonl:{n + 1}"}).decode(), "{}",
                          now + n * 0.001, now + n * 0.001, None))
        db.executemany(f"INSERT INTO examples VALUES ({marks})", batch)
        ids = [r[0] for r in batch]
        event = Event(kind="insert", example_ids=ids, actor="import", reason="", details={"batch": start // BATCH})
        event = attrs.evolve(event, time=now + start * 0.001)
        if has_links:
            db.execute("INSERT INTO events (id, time, kind, actor, reason, example_ids, details, example_count) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (event.id, event.time, event.kind, event.actor, event.reason, "[]",
                        orjson.dumps(event.details).decode(), len(ids)))
            db.executemany("INSERT INTO event_examples (event_id, position, example_id) VALUES (?, ?, ?)",
                           [(event.id, i, x) for i, x in enumerate(ids)])
        else:
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (event.id, event.time, event.kind, event.actor, event.reason, orjson.dumps(ids).decode(),
                        orjson.dumps(event.details).decode()))
        if start % 100_000 == 0 and start:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    del store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    build(args.path, args.rows)
    print(f"built {args.path} with {args.rows} examples in {time.perf_counter() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
