"""Read paths on a large store against raw sqlite3 doing the same work, measured in the same run.

One row per figure of issue 15's read-path table, each a ratio raw time / trainkit time (higher is better; 1.0
is as fast as raw), the median of alternating rounds, every command in a fresh process so that peak RSS is
per command:

- stats: `kit.stats()` against the raw six-column `GROUP BY` that yields the same counts, both timed inside
  their process on an open store; beside it the same as whole commands (`trainkit stats` against a python
  script running the query) and against the three-column `GROUP BY domain, topic, difficulty` of the table;
- export: `trainkit export --task qa --status accepted --format dspy` against a script streaming the same rows
  into the same file (checked byte for byte);
- trainset: `kit.trainset("qa")` (marking the examples used, as by default) against `dspy.Example(...)
  .with_inputs(...)` per streamed row, timed inside the process, with each process's peak RSS;
- log --id: `trainkit log --id X` (wall and peak RSS) and, in-process, reading that example's events with their
  counts as `log` does (`store.iter_event_counts`), in milliseconds.

The store is made by `read_store.py` (raw bulk insert of rows in trainkit's schema; see there):

    python benchmarks/read_store.py /tmp/after.db
    python benchmarks/read_paths.py /tmp/after.db [--rounds 3] [--only stats,export,trainset,log]
        [--before-python /path/to/main/.venv/bin/python --before-store /tmp/before.db]

`--before-*` times another trainkit (its interpreter, e.g. a venv of the main branch) on its own copy of the
store (built with that checkout's `read_store.py` schema) in the same rounds, so before and after share the
machine's noise. Byte-code caching is left on (PYTHONDONTWRITEBYTECODE is removed), as users run it.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAIN = "from dspy_trainkit.cli.entry import main; main()"
TIMED = "import sys, time\nstart = time.perf_counter()\n{body}\nprint(f'ELAPSED {{time.perf_counter() - start}}')\n"

RAW_STATS = ("import sqlite3\ncon = sqlite3.connect({db!r})\n"
             "rows = con.execute('SELECT task, status, source, domain, topic, difficulty, COUNT(*) FROM examples "
             "GROUP BY 1, 2, 3, 4, 5, 6').fetchall()")
RAW_CELLS = ("import sqlite3\ncon = sqlite3.connect({db!r})\n"
             "rows = con.execute('SELECT domain, topic, difficulty, COUNT(*) FROM examples GROUP BY 1, 2, 3')"
             ".fetchall()")
KIT_STATS = "import dspy_trainkit as tk\nkit = tk.open('sqlite:///' + {db!r}, create=False)"
RAW_EXPORT = """import orjson, sqlite3
con = sqlite3.connect({db!r})
with open({out!r}, 'wb') as f:
    f.write(b'{{"format": "dspy-trainkit/dspy-examples", "task": "qa", "examples": [')
    keys = {{}}
    for n, (i, o) in enumerate(con.execute("SELECT inputs, outputs FROM examples WHERE task = 'qa' AND "
                                           "status = 'accepted' ORDER BY id")):
        i = orjson.loads(i)
        keys.update(dict.fromkeys(i))
        f.write((b',\\n  ' if n else b'\\n  ') + orjson.dumps({{**i, **orjson.loads(o)}}))
    f.write(b'\\n], "input_keys": ' + orjson.dumps(list(keys)) + b'}}\\n')
"""
RAW_TRAINSET = """import dspy, orjson, sqlite3
con = sqlite3.connect({db!r})
start = time.perf_counter()
trainset = []
for i, o in con.execute("SELECT inputs, outputs FROM examples WHERE task = 'qa' AND status = 'accepted' "
                        "ORDER BY id"):
    i = orjson.loads(i)
    trainset.append(dspy.Example(**i, **orjson.loads(o)).with_inputs(*i))
print(f'ELAPSED {{time.perf_counter() - start}}')
"""
KIT_TRAINSET = """import dspy, dspy_trainkit as tk
kit = tk.open('sqlite:///' + {db!r}, create=False)
start = time.perf_counter()
trainset = kit.trainset('qa', signature='question -> answer')
print(f'ELAPSED {{time.perf_counter() - start}}')
"""


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_") and k != "PYTHONDONTWRITEBYTECODE"}


def run(argv: list[str], cwd: Path) -> tuple[float, float, float | None, str]:
    """(wall seconds, peak RSS MiB, ELAPSED printed by the process or None, stdout) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{argv[:3]}... failed ({proc.returncode}): {err.decode()[-2000:]}")
    rss = proc_rss(proc)
    elapsed = next((float(line.split()[1]) for line in out.decode().splitlines() if line.startswith("ELAPSED ")),
                   None)
    return wall, rss, elapsed, out.decode()


def proc_rss(proc: subprocess.Popen) -> float:
    return getattr(proc, "_tk_rss", 0.0)


class RssPopen(subprocess.Popen):
    """Popen that keeps the child's peak RSS (from wait4) when it is reaped."""

    def _try_wait(self, wait_flags):  # type: ignore[override]
        pid, status, usage = os.wait4(self.pid, wait_flags)
        if pid:
            self._tk_rss = usage.ru_maxrss / 1024
        return pid, status


subprocess.Popen = RssPopen  # type: ignore[misc]  # this script only


def python(interpreter: str, code: str) -> list[str]:
    return [interpreter, "-c", code]


def trainkit(interpreter: str, *args: str) -> list[str]:
    return [interpreter, "-c", MAIN, *args]


def median(values: list[float]) -> float:
    return statistics.median(values)


def some_id(db: Path) -> str:
    con = sqlite3.connect(db)
    (count,) = con.execute("SELECT COUNT(*) FROM examples").fetchone()
    (example_id,) = con.execute("SELECT id FROM examples ORDER BY id LIMIT 1 OFFSET ?", (count // 2,)).fetchone()
    return example_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="stats,export,trainset,log")
    parser.add_argument("--before-python")
    parser.add_argument("--before-store", type=Path)
    args = parser.parse_args()
    rows = args.only.split(",")
    db = str(args.store.resolve())
    sides = {"after": (sys.executable, db)}
    if args.before_python:
        sides["before"] = (args.before_python, str(args.before_store.resolve()))
    work = Path(tempfile.mkdtemp(prefix="tk-read-"))
    me = sys.executable
    results: dict[str, list[tuple[float, float, float | None]]] = {}

    def record(name: str, result: tuple[float, float, float | None, str]) -> str:
        results.setdefault(name, []).append(result[:3])
        return result[3]

    for py, store in sides.values():  # apply pending migrations before timing anything
        run(trainkit(py, "--db", f"sqlite:///{store}", "migrate"), work)
    ids = {side: some_id(Path(store)) for side, (_py, store) in sides.items()}
    for n in range(args.rounds):
        print(f"round {n + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for side, (py, store) in sides.items():
            example_id = ids[side]
            if "stats" in rows:
                record(f"{side}:raw-stats", run(python(me, TIMED.format(body=RAW_STATS.format(db=store))), work))
                record(f"{side}:raw-cells", run(python(me, TIMED.format(body=RAW_CELLS.format(db=store))), work))
                record(f"{side}:kit-stats", run(python(py, KIT_STATS.format(db=store) + "\n"
                                                       + TIMED.format(body="kit.stats()")), work))
                record(f"{side}:cli-stats", run(trainkit(py, "--db", f"sqlite:///{store}", "stats"), work))
            if "export" in rows:
                raw_out, kit_out = work / f"raw-{side}.dspy.json", work / f"kit-{side}.dspy.json"
                record(f"{side}:raw-export", run(python(me, RAW_EXPORT.format(db=store, out=str(raw_out))), work))
                record(f"{side}:cli-export", run(trainkit(py, "--db", f"sqlite:///{store}", "export", "--task", "qa",
                                                          "--status", "accepted", "--format", "dspy", "-o",
                                                          str(kit_out)), work))
                if raw_out.read_bytes() != kit_out.read_bytes():
                    raise SystemExit(f"{side}: trainkit's export differs from the raw one")
            if "trainset" in rows:
                record(f"{side}:raw-trainset", run(python(me, "import time\n" + RAW_TRAINSET.format(db=store)), work))
                record(f"{side}:kit-trainset", run(python(py, "import time\n" + KIT_TRAINSET.format(db=store)),
                                                   work))
            if "log" in rows:
                record(f"{side}:cli-log", run(trainkit(py, "--db", f"sqlite:///{store}", "log", "--id", example_id),
                                              work))
                record(f"{side}:kit-log", run(python(py, KIT_STATS.format(db=store) + "\n" + TIMED.format(
                    body=f"read = getattr(kit.store, 'iter_event_counts', kit.events)  # main: events with ids\n"
                         f"events = list(read(example_id={example_id!r}))")), work))
                record(f"{side}:pass", run(python(py, "pass"), work))

    def wall(name: str) -> float:
        return median([r[0] for r in results[name]])

    def inner(name: str) -> float:
        return median([r[2] for r in results[name]])

    def rss(name: str) -> float:
        return max(r[1] for r in results[name])

    print(f"store: {args.store} ({args.rounds} rounds, medians; ratio = raw / trainkit, higher is better)")
    for side in sides:
        print(f"-- {side}" + (f" ({sides[side][0]})" if side == "before" else ""))
        if "stats" in rows:
            kit_stats = inner(f"{side}:kit-stats")
            print(f"stats in-process: kit.stats() {kit_stats:.3f} s vs raw 6-column GROUP BY "
                  f"{inner(f'{side}:raw-stats'):.3f} s: ratio {inner(f'{side}:raw-stats') / kit_stats:.2f}"
                  f"; vs raw GROUP BY domain, topic, difficulty {inner(f'{side}:raw-cells'):.3f} s: ratio "
                  f"{inner(f'{side}:raw-cells') / inner(f'{side}:kit-stats'):.2f}")
            cli_stats = wall(f"{side}:cli-stats")
            print(f"stats command: trainkit stats {cli_stats:.3f} s vs python raw script "
                  f"{wall(f'{side}:raw-stats'):.3f} s: ratio {wall(f'{side}:raw-stats') / cli_stats:.2f}")
        if "export" in rows:
            print(f"export --format dspy: trainkit {wall(f'{side}:cli-export'):.2f} s ({rss(f'{side}:cli-export'):.0f}"
                  f" MiB) vs raw {wall(f'{side}:raw-export'):.2f} s ({rss(f'{side}:raw-export'):.0f} MiB): ratio "
                  f"{wall(f'{side}:raw-export') / wall(f'{side}:cli-export'):.2f}")
        if "trainset" in rows:
            kit_rss, raw_rss = rss(f"{side}:kit-trainset"), rss(f"{side}:raw-trainset")
            print(f"trainset: kit.trainset {inner(f'{side}:kit-trainset'):.2f} s, {kit_rss:.0f} MiB peak vs raw "
                  f"{inner(f'{side}:raw-trainset'):.2f} s, {raw_rss:.0f} MiB: ratio "
                  f"{inner(f'{side}:raw-trainset') / inner(f'{side}:kit-trainset'):.2f}, memory "
                  f"{kit_rss / raw_rss:.2f}x raw")
        if "log" in rows:
            print(f"log --id: events with counts (what log reads) {inner(f'{side}:kit-log') * 1000:.1f} ms; "
                  f"trainkit log --id "
                  f"{wall(f'{side}:cli-log'):.3f} s, {rss(f'{side}:cli-log'):.0f} MiB peak (python -c pass "
                  f"{wall(f'{side}:pass'):.3f} s)")


if __name__ == "__main__":
    main()
