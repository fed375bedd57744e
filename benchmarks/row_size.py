"""Would slimmer rows make imports faster? Raw sqlite3 inserts of the same QA rows, with and without the per-row
provenance trainkit stores today, same run.

An imported example's `provenance` column repeats the file's absolute path (`"origin": "/path/qa.jsonl:line N"`,
`"format": "jsonl"`) and the scorer-version map (`"scorers": {"coherence": {"plugin": ..., "version": ...}}`):
about 150 of a row's ~650 bytes. Keeping both once per intake event (a migration and a join on every read) only
pays if storing the smaller rows is measurably cheaper. This inserts --rows rows of `benchmarks/ingest.py`'s
QA data into the store's own schema and pragmas, 1000 rows a transaction, as

- `full`: the provenance as stored today (absolute path, format, scorer map);
- `slim`: only what is per row (`{"line": N}`),

alternating for --rounds rounds, each into a fresh file, and prints the median wall and CPU seconds of each,
the slim/full ratios and the file sizes.

    python benchmarks/row_size.py [--rows 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from dspy_trainkit_sqlstore.backend import SQLITE_PRAGMAS
from dspy_trainkit_sqlstore.schema import EXAMPLE_COLUMNS
from ingest import write_jsonl
from store_insert import remove_db, store_schema

SQL = (f"INSERT INTO examples ({', '.join(EXAMPLE_COLUMNS)}) VALUES ({', '.join('?' * len(EXAMPLE_COLUMNS))}) "
       "ON CONFLICT (task, content_hash) DO NOTHING")
SCORERS = {"coherence": {"plugin": "coherence", "version": "0.1.0"}}


def rows(lines: list[bytes], origin: str, slim: bool) -> list[tuple]:
    """The rows to insert, built before timing (only storing is measured)."""
    built = []
    for number, line in enumerate(lines, start=1):
        r = orjson.loads(line)
        now = time.time()
        provenance = {"line": number} if slim else {"origin": f"{origin}:line {number}", "format": "jsonl",
                                                    "scorers": SCORERS}
        built.append((uuid.uuid4().hex, "problems", hashlib.sha256(line).hexdigest(),
                      orjson.dumps({k: r[k] for k in ("domain", "topic", "difficulty")}).decode(),
                      orjson.dumps({k: r[k] for k in ("problem", "answer")}).decode(), r["domain"], r["topic"],
                      r["difficulty"], "imported", "accepted", '{"coherence":1.0}', 1.0, "[]",
                      orjson.dumps(provenance).decode(), "{}", now, now, None))
    return built


def insert(path: Path, schema: list[str], data: list[tuple]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, bytes on disk) of inserting `data` into a fresh file."""
    remove_db(path)
    conn = sqlite3.connect(path, isolation_level=None)
    for key, value in SQLITE_PRAGMAS.items():
        conn.execute(f"PRAGMA {key} = {value}")
    for statement in schema:
        conn.execute(statement)
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(data), 1000):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(SQL, data[start:start + 1000])
        conn.execute("COMMIT")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return wall, cpu, path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainkit-rowsize-") as tmp:
        folder = Path(tmp)
        source = folder / "qa.jsonl"
        write_jsonl(source, args.rows)
        lines = source.read_bytes().splitlines()
        schema = store_schema(folder)
        variants = {"full": rows(lines, str(source.resolve()), slim=False), "slim": rows(lines, "", slim=True)}
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
        for round_number in range(args.rounds):
            for name in (list(variants) if round_number % 2 == 0 else list(reversed(variants))):
                results[name].append(insert(folder / "t.db", schema, variants[name]))
                wall, cpu, size = results[name][-1]
                print(f"  round {round_number + 1}: {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {size / 2**20:.1f} MiB",
                      flush=True)
    median = {name: [statistics.median(r[i] for r in found) for i in range(3)] for name, found in results.items()}
    print(f"\n{args.rows:,} rows, median of {args.rounds} alternating rounds")
    for name, (wall, cpu, size) in median.items():
        print(f"{name:5s} {wall:7.2f} s wall {cpu:7.2f} s CPU {size / 2**20:7.1f} MiB")
    full, slim = median["full"], median["slim"]
    print(f"full/slim time ratio (above 1.0: slim rows are faster): wall {full[0] / slim[0]:.2f}, "
          f"CPU {full[1] / slim[1]:.2f}; size slim/full {slim[2] / full[2]:.2f}")


if __name__ == "__main__":
    main()
