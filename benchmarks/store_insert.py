"""Bulk insert speed of the SQLite store against raw sqlite3 on the same schema, measured in the same run.

(a) store: `PeeweeStore.insert_examples(batch, event)` in batches of `--batch` (the intake's default batch size)
    into a fresh file opened the normal way (`PeeweeStore.open("sqlite:///...")`), starting from Example objects
    whose content hash is already computed (intake computes it when it builds them; --uncached-hash hands over
    fresh copies instead, as intake's status step currently does). The figure includes serialising Examples to
    rows and writing one audit event per batch.
(b) raw: stdlib sqlite3 `executemany` of rows pre-built as tuples (the same INSERT statement) into a fresh file
    with the same schema (the CREATE statements copied from a store-made file's sqlite_master) and the same
    pragmas (backend.SQLITE_PRAGMAS), one BEGIN IMMEDIATE transaction per batch: the cost of storing alone.
(c) with --through-intake: `kit.add_many(records)` from plain dicts (as an importer yields them after parsing),
    i.e. building Examples, content hashes, validation plugins, exact dedup against the store, status and store.

Runs alternate (a)(b)[(c)] for `--repeat` rounds, each into a fresh file, and print rows/s per run, the median,
and the median of the per-round ratios store/raw (target: >= 0.80).

    python benchmarks/store_insert.py [--rows 100000] [--repeat 3] [--through-intake] [--uncached-hash] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
from dspy_trainkit_sqlstore import backend
from dspy_trainkit_sqlstore.backend import PeeweeStore, example_row
from dspy_trainkit_sqlstore.schema import EXAMPLE_COLUMNS

from dspy_trainkit.models import Event, Example

TASK = "problems"
DOMAINS = ("algebra", "geometry", "probability", "number_theory", "calculus")
DIFFICULTIES = ("easy", "medium", "hard")
WORDS = ("value", "integer", "angle", "triangle", "circle", "radius", "sum", "product", "sequence", "term",
         "probability", "coin", "dice", "prime", "divisor", "remainder", "function", "derivative", "area", "slope",
         "point", "line", "square", "ratio", "fraction", "percent", "average", "median", "set", "element")
SETTINGS_TOML = f'''default_task = "{TASK}"
[intake]
batch_size = {{batch}}
[tasks.{TASK}]
signature = "domain, topic, difficulty -> problem, answer"
collection_mode = "automatic"
'''


# -- data ------------------------------------------------------------------------------------------------
def generate_records(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` distinct example records over 5 domains x 20 topics x 3 difficulties, the same for a seed."""
    rng = random.Random(seed)
    topics = {d: [f"{d}_topic_{n:02d}" for n in range(20)] for d in DOMAINS}
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(records) < count:
        domain = rng.choice(DOMAINS)
        topic = rng.choice(topics[domain])
        difficulty = rng.choice(DIFFICULTIES)
        a, b = rng.randint(2, 999), rng.randint(2, 999)
        filler = " ".join(rng.choice(WORDS) for _ in range(rng.randint(14, 22)))
        problem = (f"In this {difficulty} {topic.replace('_', ' ')} problem, let a = {a} and b = {b}. "
                   f"Consider the {filler}. What is a * b + {rng.randint(1, 99)}?")
        if problem in seen:
            continue
        seen.add(problem)
        records.append({
            "task": TASK,
            "inputs": {"domain": domain, "topic": topic, "difficulty": difficulty},
            "outputs": {"problem": problem, "answer": str(a * b)},
            "domain": domain, "topic": topic, "difficulty": difficulty,
            "source": "synthetic",
            "provenance": {"generator": "benchmarks/store_insert.py", "seed": seed},
        })
    return records


def batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# -- runs ------------------------------------------------------------------------------------------------
def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def store_schema(folder: Path) -> list[str]:
    """The CREATE statements of a store made the normal way, in creation order."""
    path = folder / "schema.db"
    PeeweeStore.open(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        statements = [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
                                                 "ORDER BY rowid")]
    conn.close()
    remove_db(path)
    return statements


def run_store(path: Path, example_batches: list[list[Example]], profile: cProfile.Profile | None = None,
              *, uncached_hash: bool = False) -> float:
    remove_db(path)
    if uncached_hash:  # fresh copies (outside the timing) whose content hash is not computed yet
        example_batches = [[attrs.evolve(ex) for ex in batch] for batch in example_batches]
    store = PeeweeStore.open(f"sqlite:///{path}")
    try:
        gc.collect()
        if profile is not None:
            profile.enable()
        start = time.perf_counter()
        for batch in example_batches:
            event = Event(kind="added", example_ids=[ex.id for ex in batch], actor="benchmark",
                          details={"sources": ["synthetic"]})
            store.insert_examples(batch, event)
        elapsed = time.perf_counter() - start
        if profile is not None:
            profile.disable()
    finally:
        store.close()
    return elapsed


def run_raw(path: Path, row_batches: list[list[tuple[Any, ...]]], schema: list[str]) -> float:
    remove_db(path)
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    for key, value in backend.SQLITE_PRAGMAS.items():
        conn.execute(f"PRAGMA {key} = {value}")
    for statement in schema:
        conn.execute(statement)
    columns = ", ".join(EXAMPLE_COLUMNS)
    sql = (f"INSERT INTO examples ({columns}) VALUES ({', '.join('?' * len(EXAMPLE_COLUMNS))}) "
           "ON CONFLICT (task, content_hash) DO NOTHING")
    try:
        gc.collect()
        start = time.perf_counter()
        for rows in row_batches:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    return elapsed


def run_intake(folder: Path, path: Path, record_batches: list[list[dict[str, Any]]], batch_size: int) -> float:
    import dspy_trainkit as tk
    from dspy_trainkit.settings import load_settings

    remove_db(path)
    config = folder / "trainkit.toml"
    config.write_text(SETTINGS_TOML.format(batch=batch_size), encoding="utf-8")
    settings = load_settings(config, env={})
    records = [r for batch in record_batches for r in batch]
    with tk.open(f"sqlite:///{path}", settings=settings) as kit:
        gc.collect()
        start = time.perf_counter()
        report = kit.add_many(records, actor="benchmark")
        elapsed = time.perf_counter() - start
    if report.stored != len(records):
        raise SystemExit(f"intake stored {report.stored} of {len(records)} (problems: {report.problems[:3]})")
    return elapsed


def count_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM examples").fetchone()[0]
    finally:
        conn.close()


# -- main ------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="examples per run (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction (default 1000, the intake's)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--through-intake", action="store_true", help="also time kit.add_many (whole intake)")
    parser.add_argument("--profile", action="store_true", help="cProfile one extra store run and print the top")
    parser.add_argument("--uncached-hash", action="store_true",
                        help="hand the store Examples whose content hash is not computed yet, as intake does today "
                             "(its status decision makes new Examples with attrs.evolve, which drops the cached hash)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the database files (default: a temp)")
    options = parser.parse_args()

    t0 = time.perf_counter()
    records = generate_records(options.rows, options.seed)
    examples = [Example.from_dict(r) for r in records]
    for ex in examples:
        ex.content_hash  # noqa: B018 - intake computes it when it builds the example, before the store sees it
    rows = [example_row(ex) for ex in examples]
    example_batches = batches(examples, options.batch)
    row_batches = batches(rows, options.batch)
    record_batches = batches(records, options.batch)
    problem = sum(len(r["outputs"]["problem"]) for r in records) / len(records)
    print(f"{len(examples)} examples (problem text ~{problem:.0f} chars), batches of {options.batch}, "
          f"prepared in {time.perf_counter() - t0:.1f}s")
    print(f"SQLITE_PRAGMAS: {backend.SQLITE_PRAGMAS}")

    with tempfile.TemporaryDirectory(prefix="trainkit-insert-", dir=options.dir) as tmp:
        folder = Path(tmp)
        schema = store_schema(folder)
        path = folder / "bench.db"
        results: dict[str, list[float]] = {"store": [], "raw": [], "intake": []}
        for round_no in range(1, options.repeat + 1):
            runs = [("store", lambda: run_store(path, example_batches, uncached_hash=options.uncached_hash)),
                    ("raw", lambda: run_raw(path, row_batches, schema))]
            if options.through_intake:
                runs.append(("intake", lambda: run_intake(folder, path, record_batches, options.batch)))
            line = []
            for name, run in runs:
                elapsed = run()
                stored = count_rows(path)
                if stored != len(examples):
                    raise SystemExit(f"{name} run stored {stored} rows, expected {len(examples)}")
                rate = len(examples) / elapsed
                results[name].append(rate)
                line.append(f"{name} {rate:9,.0f} rows/s")
            print(f"round {round_no}: " + "  ".join(line))

        print()
        print("median rows/s:  " + "  ".join(f"{name} {statistics.median(rates):,.0f}"
                                             for name, rates in results.items() if rates))
        ratios = [s / r for s, r in zip(results["store"], results["raw"], strict=True)]
        verdict = "meets" if statistics.median(ratios) >= 0.8 else "BELOW"
        print(f"store/raw: median {statistics.median(ratios):.2f} (per round: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}); {verdict} the 0.80 target")
        print("  (the store figure includes serialising Example objects to rows and one audit event per batch;"
              " raw inserts pre-built tuples)")
        print("  (content hashes were " + ("computed inside the store run (--uncached-hash)" if options.uncached_hash
                                           else "computed beforehand, as intake does when building Examples") + ")")
        if results["intake"]:
            intake_raw = [i / r for i, r in zip(results["intake"], results["raw"], strict=True)]
            intake_store = [i / s for i, s in zip(results["intake"], results["store"], strict=True)]
            print(f"intake/raw: median {statistics.median(intake_raw):.2f}; intake/store: median "
                  f"{statistics.median(intake_store):.2f}")
            print("  (intake starts from dicts: builds Examples, hashes, validates, dedups, decides status, stores)")

        if options.profile:
            profile = cProfile.Profile()
            run_store(path, example_batches, profile, uncached_hash=options.uncached_hash)
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("tottime").print_stats(18)
            print()
            print("cProfile of one store run (by own time):")
            print(out.getvalue())
        remove_db(path)


if __name__ == "__main__":
    main()
