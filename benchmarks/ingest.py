"""Import speed: `trainkit import` of QA records with the default plugins, against raw inserts, same run.

Headline (the issue's first row): `trainkit import FILE --task problems` of --rows records (default 100,000)
into a fresh SQLite store with the DEFAULT plugin set (every built-in plugin the install registers: validators,
scorers, pii, near-duplicates, ...; llm_judge is on the list but does nothing without a model) against the floor
for storing the same rows: a subprocess that reads the file line by line, parses it with orjson, builds the
same row tuples (id, sha256, JSON columns) and inserts them with stdlib sqlite3 `executemany` into the same
schema with the same pragmas, one transaction per 1000 rows. Beside it, labelled, the same import with the
plugins off (TRAINKIT_LOAD_PLUGINS=basic_checks,jsonl,dspy: declared fields and empty values only).
Each figure is raw seconds / trainkit seconds (higher is better, 1.0 = as fast as raw), the median over
--rounds alternating rounds (the order of the runs rotates every round), with the import's peak RSS; the same
ratio of the children's CPU seconds (user + system, start-up included; for PostgreSQL the client side only) is
printed beside it, since wall time on a machine shared with other work follows the load.

    python benchmarks/ingest.py [--rows 100000] [--rounds 3] [--baseline-rev main] [--postgres URL]
                                [--postgres-only] [--skip-plugins neardup] [--also-without neardup]
                                [--target 0.6] [--read-paths] [--dir DIR]

--baseline-rev REV also runs a git revision of this repository (checked out into a temporary worktree) in the
same rounds, both sides as `python -S` with the checkout on PYTHONPATH, so "before" and "after" share the
machine's load. --postgres URL (a database the benchmark may create schemas in) adds the PostgreSQL variant:
the default-plugin import into a fresh schema against raw psycopg2 `execute_values` (1000 rows a page and a
transaction, ON CONFLICT DO NOTHING as the store did before it used COPY) and raw `COPY` (1000 rows a
transaction), with the plugins-off import beside it; --postgres-only leaves the SQLite runs out. --skip-plugins
disables named plugins on every trainkit run and says so in each label (for isolating one plugin's share).
--also-without A,B adds, in the same rounds, the default import minus each named plugin, and prints what that
plugin may cost for the ratio --target (default 0.6): raw / target, less the import without it.
--read-paths also times `trainkit export --format dspy` and `kit.trainset` of the imported examples.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from cli_startup import checkout_command, worktree
from store_insert import DIFFICULTIES, DOMAINS, WORDS, remove_db, store_schema

TASK = "problems"
CONFIG = f'''default_task = "{TASK}"
[store]
url = "sqlite:///ingest.db"
[tasks.{TASK}]
signature = "domain, topic, difficulty -> problem, answer"
'''
PLUGINS_OFF = {"TRAINKIT_LOAD_PLUGINS": "basic_checks,jsonl,dspy"}

RAW_ROWS = r'''
import hashlib, time, uuid, orjson
def rows_of(source):
    with open(source, "rb") as f:
        for line in f:
            r = orjson.loads(line)
            now = time.time()
            inputs = {"domain": r["domain"], "topic": r["topic"], "difficulty": r["difficulty"]}
            outputs = {"problem": r["problem"], "answer": r["answer"]}
            yield (uuid.uuid4().hex, "problems", hashlib.sha256(line).hexdigest(), orjson.dumps(inputs).decode(),
                   orjson.dumps(outputs).decode(), r["domain"], r["topic"], r["difficulty"], "imported",
                   "accepted", "{}", None, "[]", "{}", "{}", now, now, None)
def batches(source, size=1000):
    rows = []
    for row in rows_of(source):
        rows.append(row)
        if len(rows) == size:
            yield rows
            rows = []
    if rows:
        yield rows
'''
RAW_SQLITE = RAW_ROWS + r'''
import sqlite3, sys
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
for rows in batches(source):
    conn.execute("BEGIN IMMEDIATE"); conn.executemany(sql, rows); conn.execute("COMMIT")
'''
RAW_POSTGRES = RAW_ROWS + r'''
import io, sys, psycopg2
from psycopg2.extras import execute_values
from dspy_trainkit_sqlstore.schema import EXAMPLE_COLUMNS
dsn, schema, source, how = sys.argv[1:5]
conn = psycopg2.connect(dsn, options=f"-c search_path={schema}")
cur = conn.cursor()
columns = ", ".join(EXAMPLE_COLUMNS)
def text(value):
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
for rows in batches(source):
    if how == "execute_values":
        execute_values(cur, f"INSERT INTO examples ({columns}) VALUES %s ON CONFLICT (task, content_hash) DO NOTHING",
                       rows, page_size=len(rows))
    else:
        buffer = io.StringIO("".join("\t".join(map(text, row)) + "\n" for row in rows))
        cur.copy_expert(f"COPY examples ({columns}) FROM STDIN", buffer)
    conn.commit()
'''


def write_jsonl(path: Path, rows: int, seed: int = 7) -> None:
    """`rows` distinct flat QA records, streamed to disk (the generator holds one line at a time)."""
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


#: CPU seconds (user + system) of the last child `run_child_rss` waited for: on a machine shared with other
#: work, wall time varies with the load, CPU time much less; both ratios are printed.
LAST_CPU = [0.0]


def run_child_rss(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    """Run a child; return wall seconds, its peak RSS in MiB (os.wait4: subprocess does not expose rusage) and
    its stdout; its CPU seconds go to LAST_CPU."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        LAST_CPU[0] = usage.ru_utime + usage.ru_stime
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args[:3])} ... exited {proc.returncode}:\n{err.read().decode()[-2000:]}")
        return elapsed, usage.ru_maxrss // 1024, out.read().decode()


class Side:
    """One checkout to time: this one, or a baseline revision."""

    def __init__(self, label: str, checkout: Path | None):
        self.label = label
        if checkout is None:
            checkout = Path(__file__).resolve().parent.parent
        self.command, self.env = checkout_command(checkout)

    def env_with(self, extra: dict[str, str]) -> dict[str, str]:
        return {**self.env, **extra}


def trainkit_import(side: Side, folder: Path, source: Path, rows: int, env: dict[str, str],
                    store_url: str = "sqlite:///ingest.db") -> tuple[float, int]:
    """A fresh store at `store_url`, then the timed import; returns (seconds, peak RSS MiB)."""
    if store_url.startswith("sqlite"):
        remove_db(folder / "ingest.db")
    env = side.env_with(env)
    (folder / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
    subprocess.run([*side.command, "--db", store_url, "init", "--force"], cwd=folder, check=True,
                   capture_output=True, env=env)
    (folder / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
    seconds, rss, out = run_child_rss([*side.command, "--db", store_url, "import", str(source), "--task", TASK,
                                       "-q", "--json"], folder, env)
    summary = orjson.loads(out)
    assert summary["imported"] + summary.get("rejected", 0) == rows or summary["read"] == rows, summary
    return seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3; the median is shown)")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--baseline-rev", help="also time this git revision (e.g. main) in the same rounds")
    parser.add_argument("--postgres", metavar="URL", help="also run the PostgreSQL variant against this database")
    parser.add_argument("--skip-plugins", default="", metavar="A,B",
                        help="disable these plugins on every trainkit run (labelled in the output)")
    parser.add_argument("--also-without", default="", metavar="A,B",
                        help="also time the default plugins minus each of these plugins, in the same rounds, and "
                             "print what each may cost for a ratio of --target")
    parser.add_argument("--target", type=float, default=0.6, help="the ratio --also-without budgets for (0.6)")
    parser.add_argument("--no-plugins-off", action="store_true", help="leave out the plugins-off figures")
    parser.add_argument("--postgres-only", action="store_true",
                        help="with --postgres: leave out the SQLite runs (raw and trainkit)")
    parser.add_argument("--read-paths", action="store_true",
                        help="also time export --format dspy and kit.trainset of the imported examples")
    run_sides(parser.parse_args(), "trainkit-ingest-", measure)


def run_sides(args: argparse.Namespace, prefix: str, measure_with) -> None:
    """`measure_with(args, folder, sides)` in `args.dir` (or a temporary folder named `prefix...`), on this
    checkout and, with `args.baseline_rev`, a worktree of that revision (removed afterwards)."""
    with contextlib.ExitStack() as stack:
        folder = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
        folder.mkdir(parents=True, exist_ok=True)
        sides = [Side("this checkout", None)]
        if args.baseline_rev:
            sides.append(Side(f"baseline {args.baseline_rev}", stack.enter_context(worktree(args.baseline_rev))))
        measure_with(args, folder, sides)


def measure(args: argparse.Namespace, folder: Path, sides: list[Side]) -> None:
    source = folder / "records.jsonl"
    write_jsonl(source, args.rows)
    print(f"{args.rows:,} QA records ({source.stat().st_size / 2**20:.0f} MiB), {args.rounds} alternating rounds",
          flush=True)
    schema_file = folder / "schema.json"
    schema_file.write_bytes(orjson.dumps(store_schema(folder)))
    skip = {"TRAINKIT_DISABLE_PLUGINS": args.skip_plugins} if args.skip_plugins else {}
    note = f" minus {args.skip_plugins}" if args.skip_plugins else ""
    runs: dict[str, tuple] = {}  # label -> (kind, side, env) ; "raw" is the baseline
    for side in sides if not args.postgres_only else ():
        runs[f"default plugins{note} ({side.label})"] = ("sqlite", side, skip)
        for name in without(args):
            runs[f"default plugins minus {name} ({side.label})"] = ("sqlite", side, {
                "TRAINKIT_DISABLE_PLUGINS": ",".join(filter(None, [args.skip_plugins, name]))})
        if not args.no_plugins_off:
            runs[f"plugins off ({side.label})"] = ("sqlite", side, PLUGINS_OFF)
    if args.postgres:
        for side in sides:
            runs[f"PostgreSQL, default plugins{note} ({side.label})"] = ("postgres", side, skip)
            for name in without(args):
                runs[f"PostgreSQL, default plugins minus {name} ({side.label})"] = ("postgres", side, {
                    "TRAINKIT_DISABLE_PLUGINS": ",".join(filter(None, [args.skip_plugins, name]))})
            if not args.no_plugins_off:
                runs[f"PostgreSQL, plugins off ({side.label})"] = ("postgres", side, PLUGINS_OFF)
    seconds: dict[str, list[float]] = {label: [] for label in runs}
    cpu: dict[str, list[float]] = {label: [] for label in [*runs, "sqlite3 executemany"]}
    rss: dict[str, list[int]] = {label: [] for label in runs}
    raw: dict[str, list[float]] = {} if args.postgres_only else {"sqlite3 executemany": []}
    if args.postgres:
        raw.update({"psycopg2 execute_values": [], "PostgreSQL COPY": []})
    order = [("raw", name) for name in raw] + [("trainkit", label) for label in runs]
    for round_ in range(args.rounds):
        shift = round_ % len(order)
        for kind, label in order[shift:] + order[:shift]:
            if kind == "raw":
                raw[label].append(time_raw(label, folder, source, schema_file, args.postgres, sides[0]))
                cpu.setdefault(label, []).append(LAST_CPU[0])
                print(f"  round {round_ + 1}: raw {label}: {raw[label][-1]:.2f} s", flush=True)
                continue
            store, side, env = runs[label]
            with postgres_schema(args.postgres, store == "postgres") as url:
                took, peak = trainkit_import(side, folder, source, args.rows, env, url or "sqlite:///ingest.db")
            seconds[label].append(took)
            cpu[label].append(LAST_CPU[0])
            rss[label].append(peak)
            print(f"  round {round_ + 1}: {label}: {took:.2f} s, peak RSS {peak} MiB", flush=True)
    print()
    print(f"{'figure':72} {'ratio raw/trainkit':>18} {'CPU ratio':>9} {'trainkit s':>10} {'rec/s':>8} "
          f"{'peak RSS':>9}")
    for label, times in seconds.items():
        baselines = (["sqlite3 executemany"] if runs[label][0] == "sqlite"
                     else ["psycopg2 execute_values", "PostgreSQL COPY"])
        for base in baselines:
            ratio = statistics.median(r / t for r, t in zip(raw[base], times, strict=True))
            cpu_ratio = statistics.median(r / t for r, t in zip(cpu[base], cpu[label], strict=True))
            print(f"{label + ' vs ' + base:72.72} {ratio:18.2f} {cpu_ratio:9.2f} {statistics.median(times):10.2f} "
                  f"{args.rows / statistics.median(times):8,.0f} {max(rss[label]):6} MiB")
    for base, times in raw.items():
        median = statistics.median(times)
        print(f"raw {base}: median {median:.2f} s ({args.rows / median:,.0f} rec/s)")
    for base, prefix in (("sqlite3 executemany", ""), ("psycopg2 execute_values", "PostgreSQL, ")):
        if base in raw and without(args):
            for side in sides:
                budgets(args, side, seconds, statistics.median(raw[base]), "wall", prefix)
                budgets(args, side, cpu, statistics.median(cpu[base]), "CPU", prefix)
    if args.read_paths:
        read_paths(folder, sides[0], args.rows)


def without(args: argparse.Namespace) -> list[str]:
    return [name.strip() for name in args.also_without.split(",") if name.strip()]


def budgets(args: argparse.Namespace, side: Side, measured: dict[str, list[float]], raw: float, what: str,
            prefix: str) -> None:
    """For each plugin of --also-without: the seconds (wall or CPU: `what`) the import may take for a ratio of
    --target, what is left of them for that plugin once the rest of the default import is paid, and what the
    plugin costs now (the default import's median minus the median without it)."""
    note = f" minus {args.skip_plugins}" if args.skip_plugins else ""
    full = measured.get(f"{prefix}default plugins{note} ({side.label})")
    allowed = raw / args.target
    for name in without(args):
        rest = statistics.median(measured[f"{prefix}default plugins minus {name} ({side.label})"])
        left = allowed - rest
        costs = statistics.median(full) - rest if full else None
        print(f"{prefix}{side.label}, {what}: for ratio {args.target:g} the import may take {allowed:.2f} s; "
              f"without {name} it takes {rest:.2f} s, which leaves {name} {left:.2f} s "
              f"({left / args.rows * 1e6:.0f} us a record)"
              + (f"; it takes {costs:.2f} s ({costs / args.rows * 1e6:.0f} us a record)" if costs is not None else ""))


def time_raw(label: str, folder: Path, source: Path, schema_file: Path, postgres: str | None, side: Side) -> float:
    if label == "sqlite3 executemany":
        remove_db(folder / "raw.db")
        took, _, _ = run_child_rss([sys.executable, "-S", "-c", RAW_SQLITE, str(folder / "raw.db"), str(source),
                                    str(schema_file)], folder, side.env)
        return took
    how = "execute_values" if "execute_values" in label else "copy"
    with postgres_schema(postgres, True) as url:
        assert url is not None
        subprocess.run([*side.command, "--db", url, "init", "--force"], cwd=folder, check=True, capture_output=True,
                       env=side.env)
        schema = url.rsplit("%3D", 1)[1]
        took, _, _ = run_child_rss([sys.executable, "-S", "-c", RAW_POSTGRES, postgres.split("?")[0], schema,
                                    str(source), how], folder, side.env)
    return took


@contextlib.contextmanager
def postgres_schema(base: str | None, wanted: bool):
    """A fresh PostgreSQL schema (dropped afterwards) and the store URL that uses it; None when not wanted."""
    if not wanted or base is None:
        yield None
        return
    import psycopg2

    name = f"ingest_bench_{os.getpid()}_{time.monotonic_ns()}"
    conn = psycopg2.connect(base)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE SCHEMA {name}")
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-c%20search_path%3D{name}"
    finally:
        conn.cursor().execute(f"DROP SCHEMA {name} CASCADE")
        conn.close()


def read_paths(folder: Path, side: Side, rows: int) -> None:
    """Export and conversion of the examples the last SQLite import stored (run after an import)."""
    seconds, peak, _ = run_child_rss([*side.command, "export", "--format", "dspy", "--task", TASK, "-o",
                                      str(folder / "train.dspy.json"), "-q"], folder, side.env_with(PLUGINS_OFF))
    print(f"trainkit export --format dspy: {seconds:.1f} s ({rows / seconds:,.0f}/s, peak RSS {peak} MiB)")
    import dspy_trainkit as tk
    from dspy_trainkit.settings import load_settings

    with tk.open(settings=load_settings(folder / "trainkit.toml", env={})) as kit:
        start = time.perf_counter()
        trainset = kit.trainset(TASK)
        took = time.perf_counter() - start
    print(f"kit.trainset -> {len(trainset):,} dspy.Example in {took:.2f} s (including importing dspy)")


if __name__ == "__main__":
    main()
