"""Import speed and memory: `trainkit import` of a large JSONL file against raw sqlite3 in the same run.

(a) import: `trainkit import FILE --task problems` in a subprocess on a fresh SQLite store: streaming read,
    mapping, validation (basic_checks: declared fields, empty values), exact dedup by content hash, status,
    batched store with audit events. The quality plugins (scorers, near-duplicates, ...) are switched off with
    TRAINKIT_LOAD_PLUGINS for this figure, which is the issue's target; --all-plugins also times the default
    plugin set on --all-rows records, to show what full judging costs.
(b) raw: a subprocess that reads the same file line by line, parses it with orjson, builds the same rows (id,
    sha256, JSON columns) and inserts them with stdlib sqlite3 `executemany` into the same schema with the same
    pragmas, one transaction per batch of 1000: the floor for storing these rows.
Both print records/s; the ratio import/raw is the figure to watch (target >= 0.5), with the import's peak RSS
(target < 300 MB, and it must not grow with the file: compare --rows 100000 with --rows 1000000).
Then (c): 100,000 stored examples converted to `dspy.Example` with `kit.trainset`, and exported with
`trainkit export --format dspy`, timed.

    python benchmarks/ingest.py [--rows 1000000] [--repeat 1] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from store_insert import DIFFICULTIES, DOMAINS, WORDS, remove_db, store_schema

TASK = "problems"
CONFIG = f'''default_task = "{TASK}"
[store]
url = "sqlite:///ingest.db"
[tasks.{TASK}]
signature = "domain, topic, difficulty -> problem, answer"
'''

RAW_SCRIPT = r'''
import hashlib, sqlite3, sys, time, uuid, orjson
from dspy_trainkit_sqlstore.backend import SQLITE_PRAGMAS
from dspy_trainkit_sqlstore.schema import EXAMPLE_COLUMNS
path, source, schema_file = sys.argv[1:4]
conn = sqlite3.connect(path, isolation_level=None)
for key, value in SQLITE_PRAGMAS.items():
    conn.execute(f"PRAGMA {key} = {value}")
for statement in orjson.loads(open(schema_file, "rb").read()):
    conn.execute(statement)
sql = (f"INSERT INTO examples ({', '.join(EXAMPLE_COLUMNS)}) VALUES ({', '.join('?' * len(EXAMPLE_COLUMNS))}) "
       "ON CONFLICT (task, content_hash) DO NOTHING")
start, rows, count = time.perf_counter(), [], 0
def flush():
    conn.execute("BEGIN IMMEDIATE"); conn.executemany(sql, rows); conn.execute("COMMIT"); rows.clear()
with open(source, "rb") as f:
    for line in f:
        r = orjson.loads(line)
        now = time.time()
        inputs = {"domain": r["domain"], "topic": r["topic"], "difficulty": r["difficulty"]}
        outputs = {"problem": r["problem"], "answer": r["answer"]}
        rows.append((uuid.uuid4().hex, "problems", hashlib.sha256(line).hexdigest(), orjson.dumps(inputs).decode(),
                     orjson.dumps(outputs).decode(), r["domain"], r["topic"], r["difficulty"], "imported",
                     "accepted", "{}", None, "[]", "{}", "{}", now, now, None))
        count += 1
        if len(rows) == 1000:
            flush()
if rows:
    flush()
print(count, time.perf_counter() - start)
'''


def write_jsonl(path: Path, rows: int, seed: int = 7) -> None:
    """`rows` distinct flat records, streamed to disk (the generator holds one line at a time)."""
    rng = random.Random(seed)
    with path.open("wb") as out:
        for i in range(rows):
            domain, difficulty = rng.choice(DOMAINS), rng.choice(DIFFICULTIES)
            topic = f"{domain}_topic_{rng.randrange(20):02d}"
            a, b = rng.randint(2, 999), rng.randint(2, 999)
            filler = " ".join(rng.choice(WORDS) for _ in range(rng.randint(14, 22)))
            out.write(orjson.dumps({
                "domain": domain, "topic": topic, "difficulty": difficulty,
                "problem": f"#{i}: in this {difficulty} problem let a = {a} and b = {b}; consider the {filler}. "
                           "What is a * b?",
                "answer": str(a * b)}) + b"\n")


BASIC = {"TRAINKIT_LOAD_PLUGINS": "basic_checks,jsonl,dspy"}


def run_child_rss(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run a child; return wall seconds, its peak RSS in MiB (os.wait4: subprocess does not expose rusage),
    and its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss // 1024, out.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="Work folder (default: a temporary one).")
    parser.add_argument("--all-plugins", action="store_true",
                        help="Also time an import with every default plugin (scorers, near-duplicates, ...).")
    parser.add_argument("--all-rows", type=int, default=20_000, help="Records for --all-plugins (default 20,000).")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="trainkit-ingest-"))
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "records.jsonl"
    print(f"writing {args.rows:,} records to {source} ...", flush=True)
    write_jsonl(source, args.rows)
    print(f"file size {source.stat().st_size / 2**20:.0f} MiB")
    schema_file = folder / "schema.json"
    schema_file.write_bytes(orjson.dumps(store_schema(folder)))
    trainkit = [sys.executable, "-c", "from dspy_trainkit.cli.main import main; main()"]

    ratios = []
    for round_ in range(1, args.repeat + 1):
        remove_db(folder / "ingest.db")
        subprocess.run([*trainkit, "--db", "sqlite:///ingest.db", "init", "--force"], cwd=folder, check=True,
                       capture_output=True)
        (folder / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
        seconds, rss, out = run_child_rss([*trainkit, "import", str(source), "--task", TASK, "-q", "--json"], folder,
                                          BASIC)
        summary = orjson.loads(out)
        assert summary["imported"] == args.rows, summary
        import_rate = args.rows / seconds

        remove_db(folder / "raw.db")
        raw_seconds, raw_rss, raw_out = run_child_rss(
            [sys.executable, "-c", RAW_SCRIPT, str(folder / "raw.db"), str(source), str(schema_file)], folder)
        raw_rate = args.rows / raw_seconds
        ratios.append(import_rate / raw_rate)
        print(f"round {round_}: import {import_rate:,.0f} rec/s (peak RSS {rss} MiB, wall {seconds:.1f} s incl. "
              f"start-up) | raw sqlite3 {raw_rate:,.0f} rec/s (peak RSS {raw_rss} MiB) | ratio {ratios[-1]:.2f}",
              flush=True)
    print(f"import/raw ratio (median of {len(ratios)}): {statistics.median(ratios):.2f}  (target >= 0.5)")
    # (c) export, then conversion of 100k stored examples. The export runs first: a child forked from this
    # process counts this process's pages in its peak RSS until it execs, so it must not follow the trainset.
    export_seconds, export_rss, _ = run_child_rss(
        [*trainkit, "export", "--format", "dspy", "--task", TASK, "-o", str(folder / "train.dspy.json"), "-q"],
        folder, BASIC)
    print(f"trainkit export --format dspy of {args.rows:,} examples: {export_seconds:.1f} s "
          f"({args.rows / export_seconds:,.0f}/s, peak RSS {export_rss} MiB)")
    count = min(100_000, args.rows)
    import dspy_trainkit as tk
    from dspy_trainkit.settings import load_settings

    with tk.open(settings=load_settings(folder / "trainkit.toml", env={})) as kit:
        start = time.perf_counter()
        trainset = kit.trainset(TASK, limit=count)
        convert_seconds = time.perf_counter() - start
    assert len(trainset) == count and set(trainset[0].inputs().keys()) == {"domain", "topic", "difficulty"}
    print(f"kit.trainset -> {count:,} dspy.Example in {convert_seconds:.2f} s ({count / convert_seconds:,.0f}/s, "
          "including reading the store and importing dspy)")

    if args.all_plugins:
        part = folder / "part.jsonl"
        with source.open("rb") as full, part.open("wb") as out:
            for _, line in zip(range(args.all_rows), full, strict=False):
                out.write(line)
        remove_db(folder / "ingest.db")
        subprocess.run([*trainkit, "--db", "sqlite:///ingest.db", "init", "--force"], cwd=folder, check=True,
                       capture_output=True)
        (folder / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
        env = {"TRAINKIT_DISABLE_PLUGINS": "llm_judge"}
        seconds, rss, out = run_child_rss([*trainkit, "import", str(part), "--task", TASK, "-q", "--json"], folder,
                                          env)
        print(f"with every default plugin (scorers, near-duplicates, pii, ...), {args.all_rows:,} records: "
              f"{args.all_rows / seconds:,.0f} rec/s (peak RSS {rss} MiB); against raw: "
              f"{args.all_rows / seconds / raw_rate:.2f}")

if __name__ == "__main__":
    main()
