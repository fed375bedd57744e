"""PostgreSQL import linearity: seconds per 10k rows at the start and at the end of one large import into a fresh
schema, for `trainkit import` and for raw psycopg2 `execute_values` / COPY of the same rows.

A store whose cost per row grows with the table (a planner without statistics choosing a scan for the dedup
probe, an index that stops fitting in memory) shows it here before it shows in a total: the end/start ratio of
an import that is linear from the first row stays near 1.0. The trainkit import runs as `trainkit import` in a
child process whose store records the time after each committed batch; the first batch (start-up, first
imports of plugin code) is left out of the first window, so the figure measures the steady cost per row.

    python benchmarks/pg_linearity.py --postgres URL [--rows 200000] [--window 10000] [--baseline-rev main]
                                      [--skip-plugins neardup] [--plugins-off] [--rounds 1] [--dir DIR]

Output per run: seconds for the first and last window, their ratio (end / start; 1.0 = linear), and the total.
With --rounds > 1 the runs alternate and each figure is the median.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import orjson
from ingest import CONFIG, PLUGINS_OFF, RAW_ROWS, TASK, Side, postgres_schema, run_child_rss, run_sides, write_jsonl

#: `trainkit ...` in-process with the store's insert timed: (rows so far, perf_counter) after each batch.
TIMED_IMPORT = r'''
import sys, time, orjson
from dspy_trainkit_sqlstore.backend import PeeweeStore
marks_path, args = sys.argv[1], sys.argv[2:]
real = PeeweeStore.insert_examples
marks = []
def timed(self, examples, event):
    result = real(self, examples, event)
    marks.append((marks[-2] if marks else 0) + len(examples))
    marks.append(time.perf_counter())
    return result
PeeweeStore.insert_examples = timed
from dspy_trainkit.cli.main import cli
try:
    cli.main(args, standalone_mode=False)
finally:
    open(marks_path, "wb").write(orjson.dumps(marks))
'''
#: The raw floor with the same marks: 1000 rows a transaction, as ingest.py's raw runs.
TIMED_RAW = RAW_ROWS + r'''
import io, sys, psycopg2
from psycopg2.extras import execute_values
from dspy_trainkit_sqlstore.schema import EXAMPLE_COLUMNS
dsn, schema, source, how, marks_path = sys.argv[1:6]
conn = psycopg2.connect(dsn, options=f"-c search_path={schema}")
cur = conn.cursor()
columns = ", ".join(EXAMPLE_COLUMNS)
def field(value):
    if value is None:
        return ""
    return '"' + value.replace('"', '""') + '"' if isinstance(value, str) else repr(value)
marks, done = [], 0
for rows in batches(source):
    if how == "execute_values":
        execute_values(cur, f"INSERT INTO examples ({columns}) VALUES %s ON CONFLICT (task, content_hash) DO NOTHING",
                       rows, page_size=len(rows))
    else:
        data = "".join(",".join(map(field, row)) + "\n" for row in rows).encode()
        cur.copy_expert(f"COPY examples ({columns}) FROM STDIN WITH (FORMAT csv)", io.BytesIO(data))
    conn.commit()
    done += len(rows)
    marks += [done, time.perf_counter()]
open(marks_path, "wb").write(orjson.dumps(marks))
'''


def windows(marks: list[float], window: int) -> tuple[float, float, float]:
    """(seconds of the first window after the first batch, seconds of the last window, seconds in all after
    the first batch) from the flat (rows, time) marks."""
    points = list(zip(marks[::2], marks[1::2], strict=True))
    start_rows, start_time = points[0]
    first_end = next(t for rows, t in points if rows >= start_rows + window)
    end_rows, end_time = points[-1]
    last_start = next(t for rows, t in reversed(points) if rows <= end_rows - window)
    return first_end - start_time, end_time - last_start, end_time - start_time


def trainkit_run(side: Side, folder: Path, source: Path, env: dict[str, str], url: str) -> list[float]:
    env = side.env_with(env)
    (folder / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
    subprocess.run([*side.command, "--db", url, "init", "--force"], cwd=folder, check=True, capture_output=True,
                   env=env)
    (folder / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
    marks = folder / "marks.json"
    run_child_rss([sys.executable, "-S", "-c", TIMED_IMPORT, str(marks), "--db", url, "import", str(source),
                   "--task", TASK, "-q"], folder, env)
    return orjson.loads(marks.read_bytes())


def raw_run(side: Side, folder: Path, source: Path, how: str, base: str, url: str) -> list[float]:
    subprocess.run([*side.command, "--db", url, "init", "--force"], cwd=folder, check=True, capture_output=True,
                   env=side.env)
    marks = folder / "marks.json"
    schema = url.rsplit("%3D", 1)[1]
    run_child_rss([sys.executable, "-S", "-c", TIMED_RAW, base.split("?")[0], schema, str(source), how,
                   str(marks)], folder, side.env)
    return orjson.loads(marks.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, metavar="URL", help="a database to create schemas in")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=10_000, help="rows per timed window (default 10000)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline-rev", help="also time this git revision (e.g. main) in the same rounds")
    parser.add_argument("--skip-plugins", default="", metavar="A,B", help="disable these plugins (labelled)")
    parser.add_argument("--plugins-off", action="store_true", help="also time the import with the plugins off")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    run_sides(parser.parse_args(), "trainkit-pglin-", measure)


def measure(args: argparse.Namespace, folder: Path, sides: list[Side]) -> None:
    source = folder / "records.jsonl"
    write_jsonl(source, args.rows)
    skip = {"TRAINKIT_DISABLE_PLUGINS": args.skip_plugins} if args.skip_plugins else {}
    note = f" minus {args.skip_plugins}" if args.skip_plugins else ""
    runs: dict[str, tuple[str, Side, dict[str, str]]] = {
        "raw psycopg2 execute_values": ("execute_values", sides[0], {}), "raw COPY": ("copy", sides[0], {})}
    for side in sides:
        runs[f"trainkit import, default plugins{note} ({side.label})"] = ("trainkit", side, skip)
        if args.plugins_off:
            runs[f"trainkit import, plugins off ({side.label})"] = ("trainkit", side, PLUGINS_OFF)
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label in runs}
    labels = list(runs)
    print(f"{args.rows:,} QA records into a fresh schema; windows of {args.window:,} rows", flush=True)
    for round_ in range(args.rounds):
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            how, side, env = runs[label]
            with postgres_schema(args.postgres, True) as url:
                assert url is not None
                marks = (trainkit_run(side, folder, source, env, url) if how == "trainkit"
                         else raw_run(side, folder, source, how, args.postgres, url))
            results[label].append(windows(marks, args.window))
            first, last, total = results[label][-1]
            print(f"  round {round_ + 1}: {label}: first {first:.2f} s, last {last:.2f} s, "
                  f"end/start {last / first:.2f}, {total:.1f} s in all", flush=True)
    print()
    print(f"{'run':64} {'first s':>8} {'last s':>8} {'end/start':>9} {'total s':>8}")
    for label, figures in results.items():
        first = statistics.median(f[0] for f in figures)
        last = statistics.median(f[1] for f in figures)
        ratio = statistics.median(f[1] / f[0] for f in figures)
        total = statistics.median(f[2] for f in figures)
        print(f"{label:64.64} {first:8.2f} {last:8.2f} {ratio:9.2f} {total:8.1f}")


if __name__ == "__main__":
    main()
