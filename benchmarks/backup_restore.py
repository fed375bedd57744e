"""Backup and restore time and size, for recovery objectives (RPO/RTO) in docs/operations.md.

A SQLite store (the default backend) of --rows examples, with scores, provenance and one intake event per
1,000 examples (as imports record them), is filled once through the store's bulk load. Then, in alternating
rounds (median of --rounds), each operation is timed against a baseline measured in the same round:

* baseline: copying the store file with `shutil.copyfile` (what a backup cannot beat: reading every byte once);
* `backup` (default kind for SQLite: the online-backup copy, integrity check, gzip'd tar) and
  `backup --portable` (JSON lines, restorable into any backend);
* `restore` of each into a new SQLite store (the same path `trainkit restore` takes), and `backup verify`
  (checksums and a trial restore into a scratch store) of the default kind.

With --postgres (and TRAINKIT_TEST_POSTGRES_URL set), the portable backup is also restored into a fresh
PostgreSQL schema and backed up from it.

RPO (data you can lose) is the backup interval plus one backup's time; RTO (time to be back) is one restore
plus the verify before it, plus starting the services. Prints seconds, MiB and ratios to the baseline copy.

    python benchmarks/backup_restore.py [--rows 100000 1000000] [--rounds 3] [--postgres]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dspy_trainkit as tk  # noqa: E402
from dspy_trainkit.lifecycle.restore import restore  # noqa: E402
from dspy_trainkit.lifecycle.verification import verify_backup  # noqa: E402
from dspy_trainkit.models import Event, Example  # noqa: E402

BATCH = 5000
TOPICS = [f"topic{i}" for i in range(40)]


def fill(url: str, rows: int) -> None:
    """`rows` examples as an import leaves them (accepted, scored, with provenance), one event per 1,000."""
    base = time.time() - 86400
    with tk.open(url) as kit:
        store = kit.store
        for start in range(0, rows, BATCH):
            batch = [Example(task="qa", inputs={"question": f"What is {i} plus {i % 97}? {uuid.uuid4().hex}"},
                             outputs={"answer": f"{i + i % 97}, because adding {i % 97} to {i} gives it."},
                             domain="math", topic=TOPICS[i % len(TOPICS)], difficulty=("easy", "medium", "hard")[i % 3],
                             source="imported", status="accepted",
                             scores={"lengths": 0.9, "coherence": 0.8, "relevance": 0.7}, quality=0.8,
                             provenance={"origin": f"data/qa.jsonl:{i + 1}"}, created_at=base + i * 0.01)
                     for i in range(start, min(rows, start + BATCH))]
            events = [Event(kind="added", example_ids=tuple(e.id for e in batch[j:j + 1000]), actor="import",
                            reason="import data/qa.jsonl", time=batch[j].created_at)
                      for j in range(0, len(batch), 1000)]
            with store.write_transaction():
                store.load_examples(batch)
                store.load_events(events)


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def mib(path: Path) -> float:
    return path.stat().st_size / (1 << 20)


def one_round(folder: Path, source: str, db: Path, n: int, times: dict[str, list[float]],
              sizes: dict[str, float], postgres: str | None) -> None:
    copy, default, portable = folder / f"copy{n}.db", folder / f"b{n}.tgz", folder / f"p{n}.tgz"
    with tk.open(source) as kit:
        settings, pm = kit.settings, kit.pm
        times["baseline copy"].append(timed(lambda: shutil.copyfile(db, copy)))
        times["backup (sqlite)"].append(timed(lambda: kit.backup(default)))
        times["backup --portable"].append(timed(lambda: kit.backup(portable, portable=True)))
    sizes.update({"store file": mib(db), "backup (sqlite)": mib(default), "backup --portable": mib(portable)})
    times["backup verify (sqlite)"].append(timed(lambda: verify_backup(default, settings, pm)))

    def restore_into(file: Path, url: str) -> None:
        with tk.open(url) as target:
            restore(file, target, open_store=lambda u: tk.open(u))

    times["restore (sqlite)"].append(timed(lambda: restore_into(default, f"sqlite:///{folder / f'r{n}.db'}")))
    times["restore --portable"].append(timed(lambda: restore_into(portable, f"sqlite:///{folder / f'q{n}.db'}")))
    if postgres:
        import psycopg2

        schema = f"tk_bench_{uuid.uuid4().hex[:10]}"
        conn = psycopg2.connect(postgres)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {schema}")
        url = f"{postgres}?options=-c%20search_path%3D{schema}"
        try:
            times["restore into PostgreSQL"].append(timed(lambda: restore_into(portable, url)))
            with tk.open(url) as kit:
                times["backup from PostgreSQL"].append(timed(lambda: kit.backup(folder / f"pg{n}.tgz")))
            sizes["backup from PostgreSQL"] = mib(folder / f"pg{n}.tgz")
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP SCHEMA {schema} CASCADE")
            conn.close()
    for path in (copy, default, portable, folder / f"r{n}.db", folder / f"q{n}.db", folder / f"pg{n}.tgz"):
        for extra in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            extra.unlink(missing_ok=True)


def measure(rows: int, rounds: int, postgres: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="tk-bench-backup-", dir=os.environ.get("BENCH_DIR")) as tmp:
        folder = Path(tmp)
        db = folder / "source.db"
        source = f"sqlite:///{db}"
        fill_time = timed(lambda: fill(source, rows))
        print(f"\n{rows:,} examples (filled in {fill_time:.1f} s by bulk load)", flush=True)
        times: dict[str, list[float]] = {}
        for key in ("baseline copy", "backup (sqlite)", "backup --portable", "backup verify (sqlite)",
                    "restore (sqlite)", "restore --portable", *(("restore into PostgreSQL", "backup from PostgreSQL")
                                                               if postgres else ())):
            times[key] = []
        sizes: dict[str, float] = {}
        for n in range(rounds):
            one_round(folder, source, db, n, times, sizes, postgres)
            print(f"  round {n + 1}: " + ", ".join(f"{key} {values[-1]:.1f} s" for key, values in times.items()),
                  flush=True)  # a long run shows each round as it ends
        base = statistics.median(times["baseline copy"])
        print(f"{'operation':<26}{'median s':>10}{'x copy':>9}{'MiB':>9}{'k rows/s':>10}")
        for key, values in times.items():
            median = statistics.median(values)
            shown = sizes.get(key, sizes["store file"] if key == "baseline copy" else None)
            size = "-" if shown is None else f"{shown:.1f}"
            print(f"{key:<26}{median:>10.2f}{median / base:>9.1f}{size:>9}{rows / median / 1000:>10.0f}")
        backup_s, restore_s = statistics.median(times["backup (sqlite)"]), statistics.median(times["restore (sqlite)"])
        verify_s = statistics.median(times["backup verify (sqlite)"])
        print(f"RPO with an hourly timer: <= 1 h + {backup_s:.1f} s; RTO: verify {verify_s:.1f} s + restore "
              f"{restore_s:.1f} s = {verify_s + restore_s:.1f} s (+ starting the services)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="also restore into and back up from PostgreSQL "
                        "(TRAINKIT_TEST_POSTGRES_URL)")
    args = parser.parse_args()
    postgres = os.environ.get("TRAINKIT_TEST_POSTGRES_URL") if args.postgres else None
    if args.postgres and not postgres:
        parser.error("--postgres needs TRAINKIT_TEST_POSTGRES_URL")
    print(f"backup/restore benchmark: {args.rounds} alternating rounds, medians; SQLite store"
          + (", PostgreSQL restore target" if postgres else ""))
    for rows in args.rows:
        measure(rows, args.rounds, postgres)


if __name__ == "__main__":
    main()
