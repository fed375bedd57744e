"""What each dashboard page costs on a store of 1,000,000 examples, against the raw SQL the page needs.

The store is a real trainkit SQLite store (made by `tk.open`, so the schema and indexes are the migrations'),
filled by a raw sqlite3 `executemany` bulk build (intake would take hours at this size; the rows are the
columns intake writes: two tasks, 5 domains x 20 topics x 3 difficulties, scores with their scorer plugins,
an `added` event per 1000 examples). Each page is requested through Starlette's TestClient (routing, the
guard, the kit thread, the template: everything but the socket), with the default plugins; the baseline runs
the SQL queries that page needs with sqlite3 directly on the same file, fetching the same rows. Each page is
timed cold (its first request with nothing reused: the dashboard keeps the task list, readiness and the filter
suggestions for 60 s) and warm (median of `--rounds` requests, alternating with the baseline's rounds).

    python benchmarks/dashboard.py [--n 1000000] [--rounds 3] [--db PATH (kept, reused when it exists)]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

import dspy_trainkit as tk

COLUMNS = ("id", "task", "content_hash", "inputs", "outputs", "domain", "topic", "difficulty", "source",
           "status", "scores", "quality", "findings", "provenance", "metadata", "created_at", "updated_at",
           "last_used_at")
DOMAINS = [f"domain{i}" for i in range(5)]
TOPICS = [f"topic{i:02d}" for i in range(20)]
LEVELS = ["easy", "medium", "hard"]
PROVENANCE = orjson.dumps({"scorers": {"coherence": {"plugin": "coherence", "version": "0.1.0"},
                                       "novelty": {"plugin": "neardup", "version": "0.1.0"}}}).decode()


def build(path: Path, n: int) -> list[str]:
    """A trainkit store at `path` with `n` examples; returns a few ids to open (spread over the store)."""
    tk.open(f"sqlite:///{path}").close()  # schema and indexes by the migrations
    rng = random.Random(7)
    con = sqlite3.connect(path)
    con.execute("PRAGMA cache_size=-262144")
    con.execute("PRAGMA journal_mode=wal")
    start = time.time() - n * 0.01
    picked = []
    batch, events = [], []
    for i in range(n):
        example_id = f"{int((start + i * 0.01) * 1000):012x}7{i:019x}"
        task = "qa" if i % 10 else "problems"
        quality = round(rng.random(), 3)
        status = "candidate" if i % 50 == 0 else ("rejected" if quality < 0.2 else "accepted")
        words = " ".join(rng.choice(("sum", "area", "prime", "angle", "ratio", "graph", "mean")) for _ in range(8))
        batch.append((example_id, task, f"{i:064x}", orjson.dumps({"question": f"Q{i}: {words}?"}).decode(),
                      orjson.dumps({"answer": f"A{i}"}).decode(), rng.choice(DOMAINS), rng.choice(TOPICS),
                      rng.choice(LEVELS), "imported", status,
                      orjson.dumps({"coherence": quality, "novelty": 1.0}).decode(), quality, "[]", PROVENANCE,
                      "{}", start + i * 0.01, start + i * 0.01, None))
        if i % (n // 5) == n // 10:
            picked.append(example_id)
        if len(batch) == 1000:
            marks = ", ".join("?" * len(COLUMNS))
            con.executemany(f"INSERT INTO examples ({', '.join(COLUMNS)}) VALUES ({marks})", batch)
            events.append((f"{int(batch[-1][15] * 1000):012x}8{i:019x}", batch[-1][15], "added", "import", "",
                           orjson.dumps([row[0] for row in batch]).decode(), "{}"))
            batch = []
    if batch:
        marks = ", ".join("?" * len(COLUMNS))
        con.executemany(f"INSERT INTO examples ({', '.join(COLUMNS)}) VALUES ({marks})", batch)
    con.executemany("INSERT INTO events (id, time, kind, actor, reason, example_ids, details) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", events)
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return picked


def raw_queries(path: Path, ids: list[str]) -> dict[str, Callable[[], object]]:
    """The SQL each page needs, by page name, run with sqlite3 on the same file."""
    con = sqlite3.connect(path, check_same_thread=False)

    def q(sql: str, *params: object) -> list[tuple]:
        return con.execute(sql, params).fetchall()

    def overview() -> object:
        return (q("SELECT task, status, COUNT(*) FROM examples GROUP BY task, status"),
                q("SELECT task, source, COUNT(*) FROM examples GROUP BY task, source"),
                q("SELECT * FROM events WHERE time >= ? ORDER BY time DESC LIMIT 12", time.time() - 30 * 86400))

    def ready() -> object:
        return (q("SELECT domain, topic, difficulty, COUNT(*) FROM examples WHERE task='qa' AND status='accepted' "
                  "GROUP BY domain, topic, difficulty"),
                q("SELECT domain, topic, difficulty, COUNT(*) FROM examples WHERE task='qa' AND status='candidate' "
                  "GROUP BY domain, topic, difficulty"),
                q("SELECT domain, quality FROM examples WHERE task='qa' AND status='accepted'"))

    def examples_filtered() -> object:
        return q("SELECT * FROM examples WHERE task='qa' AND status='accepted' AND topic='topic03' "
                 "ORDER BY id DESC LIMIT 51")

    def examples_deep() -> object:
        return q("SELECT * FROM examples WHERE task='qa' AND id < ? ORDER BY id DESC LIMIT 51", ids[2])

    def examples_text() -> object:
        return q("SELECT * FROM examples WHERE (inputs LIKE '%prime prime prime%' OR outputs LIKE "
                 "'%prime prime prime%') ORDER BY id DESC LIMIT 51")

    def example() -> object:
        return (q("SELECT * FROM examples WHERE id=?", ids[1]),
                q("SELECT * FROM events WHERE example_ids LIKE ? ORDER BY time", f"%{ids[1]}%"))

    def review() -> object:
        return (q("SELECT COUNT(*) FROM examples WHERE task='qa' AND status='candidate'"),
                q("SELECT * FROM examples WHERE task='qa' AND status='candidate' ORDER BY id LIMIT 50"))

    def quality() -> object:
        return (q("SELECT scores, quality FROM examples WHERE task='qa' ORDER BY id DESC LIMIT 5000"),
                q("SELECT domain, topic, difficulty, COUNT(*), AVG(quality) FROM examples WHERE task='qa' "
                  "GROUP BY domain, topic, difficulty"))

    return {"overview": overview, "readiness fragment": ready, "examples (task+status+topic)": examples_filtered,
            "examples (keyset page deep in qa)": examples_deep, "examples (text search)": examples_text,
            "example detail": example, "review queue": review, "quality": quality}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    from dspy_trainkit_web.access import KitWorker
    from dspy_trainkit_web.app import AppConfig, build_app
    from starlette.testclient import TestClient

    with tempfile.TemporaryDirectory() as folder:
        path = args.db or Path(folder) / "dashboard.db"
        if not path.exists():
            began = time.perf_counter()
            build(path, args.n)
            print(f"built {args.n} examples in {time.perf_counter() - began:.0f} s (raw sqlite3 bulk build)")
        con = sqlite3.connect(path)
        ids = [r[0] for r in con.execute("SELECT id FROM examples WHERE id IN (SELECT id FROM examples "
                                         "WHERE task='qa' ORDER BY id LIMIT 1 OFFSET ?) OR rowid IN (?, ?)",
                                         (args.n // 3, args.n // 2, args.n // 4))]
        ids = sorted(ids) + [r[0] for r in con.execute("SELECT id FROM examples WHERE task='qa' ORDER BY id "
                                                      "LIMIT 1 OFFSET ?", (args.n // 2,))]
        con.close()
        url = f"sqlite:///{path}"
        worker = KitWorker(lambda: tk.open(url))
        client = TestClient(build_app(worker, AppConfig(hosts=frozenset({"testserver"}))))
        pages = {"overview": "/", "readiness fragment": "/ready?task=qa",
                 "examples (task+status+topic)": "/examples?task=qa&status=accepted&topic=topic03",
                 "examples (keyset page deep in qa)": f"/examples?task=qa&after={ids[2]}",
                 "examples (text search)": "/examples?q=prime+prime+prime",
                 "example detail": f"/examples/{ids[1]}", "review queue": "/review?task=qa",
                 "quality": "/quality?task=qa", "snapshots": "/snapshots", "runs": "/runs",
                 "effectiveness": "/effectiveness?task=qa", "healthz": "/healthz"}
        raw = raw_queries(path, ids)
        from dspy_trainkit_web import reads

        client.get("/healthz")  # open the kit (plugin loading is start-up, not a page)
        print(f"{'page':38} {'cold ms':>9} {'warm ms':>9} {'raw SQL ms':>11} {'cold/raw':>9} {'warm/raw':>9}")
        for name, target in pages.items():
            reads._cache.clear()  # cold: nothing reused (the task list, readiness, label suggestions)
            began = time.perf_counter()
            response = client.get(target)
            cold = time.perf_counter() - began
            assert response.status_code == 200, (name, response.status_code, response.text[:300])
            warm, base = [], []
            for _ in range(args.rounds):  # alternating, within the reuse window of the cached reads
                began = time.perf_counter()
                client.get(target)
                warm.append(time.perf_counter() - began)
                if name in raw:
                    began = time.perf_counter()
                    raw[name]()
                    base.append(time.perf_counter() - began)
            warm_ms = statistics.median(warm) * 1000
            if base:
                raw_ms = statistics.median(base) * 1000
                print(f"{name:38} {cold * 1000:9.1f} {warm_ms:9.1f} {raw_ms:11.1f} {cold * 1000 / raw_ms:8.1f}x "
                      f"{warm_ms / raw_ms:8.1f}x", flush=True)
            else:
                print(f"{name:38} {cold * 1000:9.1f} {warm_ms:9.1f} {'-':>11} {'-':>9} {'-':>9}", flush=True)
        worker.close()

if __name__ == "__main__":
    main()
