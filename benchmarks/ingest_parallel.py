"""Parallel judging: `trainkit import --workers N` for N in 0 (serial), 1, 2, against raw inserts, same run.

The same records and raw baseline as benchmarks/ingest.py (--rows QA records, default 100,000, into a fresh
SQLite store with the DEFAULT plugin set; raw = stdlib sqlite3 `executemany` of the same rows, one transaction
per 1000). Each figure is raw seconds / trainkit seconds (higher is better), the median over --rounds alternating
rounds (the order rotates every round), with the ratio against the serial import beside it, the CPU ratio
(user + system of the import and its workers) and the peak RSS of the writer process. On a machine with few
cores shared with other work the wall-time figures follow the load: read them beside the CPU ratio and
`available cores`, printed first.

    python benchmarks/ingest_parallel.py [--rows 100000] [--rounds 3] [--workers 0,1,2] [--dir DIR]
    python benchmarks/ingest_parallel.py --split [--rows 20000] [--workers 0,2]

--split answers "what would more cores give" without the cores: it imports in this process and reports the CPU
seconds of the writer (this process) and of the workers (its children) separately. With enough free cores the
workers keep up and the writer is the limit, so serial CPU / writer CPU bounds the speed-up of any worker count;
CPU seconds follow the machine's load far less than wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import orjson
from ingest import CONFIG, LAST_CPU, TASK, Side, run_child_rss, time_raw, write_jsonl
from store_insert import remove_db, store_schema


def import_with(side: Side, folder: Path, source: Path, rows: int, workers: int) -> tuple[float, int]:
    """A fresh SQLite store, then the timed `trainkit import --workers N`; (seconds, peak RSS MiB)."""
    remove_db(folder / "ingest.db")
    (folder / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
    subprocess.run([*side.command, "--db", "sqlite:///ingest.db", "init", "--force"], cwd=folder, check=True,
                   capture_output=True, env=side.env)
    (folder / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
    seconds, rss, out = run_child_rss([*side.command, "--db", "sqlite:///ingest.db", "import", str(source),
                                       "--task", TASK, "--workers", str(workers), "-q", "--json"], folder, side.env)
    summary = orjson.loads(out)
    assert summary["read"] == rows, summary
    return seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="0,1,2", help="worker counts to time (0: serial)")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--split", action="store_true", help="CPU of the writer and of the workers, in-process")
    parser.add_argument("--skip-plugins", default="", metavar="A,B", help="--split: disable these plugins (labelled)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    if args.split:
        split(args.rows, counts, args.dir, tuple(filter(None, args.skip_plugins.split(","))))
        return
    with contextlib.ExitStack() as stack:
        folder = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trainkit-parallel-")))
        folder.mkdir(parents=True, exist_ok=True)
        side = Side("this checkout", None)
        source = folder / "records.jsonl"
        write_jsonl(source, args.rows)
        schema_file = folder / "schema.json"
        schema_file.write_bytes(orjson.dumps(store_schema(folder)))
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"{args.rows:,} QA records, {args.rounds} alternating rounds, available cores: {cores}", flush=True)
        labels = ["raw", *(f"--workers {n}" for n in counts)]
        seconds: dict[str, list[float]] = {label: [] for label in labels}
        cpu: dict[str, list[float]] = {label: [] for label in labels}
        rss: dict[str, list[int]] = {label: [] for label in labels}
        for round_ in range(args.rounds):
            shift = round_ % len(labels)
            for label in labels[shift:] + labels[:shift]:
                if label == "raw":
                    took, peak = time_raw("sqlite3 executemany", folder, source, schema_file, None, side), 0
                else:
                    took, peak = import_with(side, folder, source, args.rows, int(label.split()[-1]))
                seconds[label].append(took)
                cpu[label].append(LAST_CPU[0])
                rss[label].append(peak)
                print(f"  round {round_ + 1}: {label}: {took:.2f} s, CPU {LAST_CPU[0]:.2f} s", flush=True)
        print()
        print(f"{'figure (default plugins, SQLite)':36} {'raw/trainkit':>12} {'serial/this':>11} {'CPU raw/this':>12} "
              f"{'median s':>9} {'peak RSS':>9}")
        serial = f"--workers {counts[0]}"
        for label in labels[1:]:
            ratio = statistics.median(r / t for r, t in zip(seconds["raw"], seconds[label], strict=True))
            speedup = statistics.median(s / t for s, t in zip(seconds[serial], seconds[label], strict=True))
            cpu_ratio = statistics.median(r / t for r, t in zip(cpu["raw"], cpu[label], strict=True))
            print(f"{'import ' + label:36} {ratio:12.3f} {speedup:11.2f} {cpu_ratio:12.3f} "
                  f"{statistics.median(seconds[label]):9.2f} {max(rss[label]):5} MiB")
        print(f"raw sqlite3 executemany: median {statistics.median(seconds['raw']):.2f} s")


def split(rows: int, counts: list[int], folder: Path | None, skip: tuple[str, ...] = ()) -> None:
    """Writer and worker CPU seconds of an in-process import per worker count (see the module docstring)."""
    import resource

    import attrs

    import dspy_trainkit as tk
    from dspy_trainkit.settings import load_settings

    with contextlib.ExitStack() as stack:
        folder = folder or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trainkit-split-")))
        source = folder / "records.jsonl"
        write_jsonl(source, rows)
        (folder / "trainkit.toml").write_text(CONFIG.replace("sqlite:///ingest.db", f"sqlite:///{folder}/s.db"))
        print(f"{rows:,} QA records, default plugins{' minus ' + ','.join(skip) if skip else ''}, SQLite, "
              "in-process")
        serial_cpu = None
        for workers in counts:
            remove_db(folder / "s.db")
            settings = attrs.evolve(load_settings(folder / "trainkit.toml", env={}), intake_workers=workers,
                                       disable_plugins=skip)
            with tk.open(settings=settings) as kit:
                kit.examples(limit=1)  # the store and plugins open before the clock starts
                me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
                report = kit.import_files([source], task=TASK)
                me2, kids2 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            assert report.read == rows
            writer = me2.ru_utime + me2.ru_stime - me.ru_utime - me.ru_stime
            helpers = kids2.ru_utime + kids2.ru_stime - kids.ru_utime - kids.ru_stime
            serial_cpu = serial_cpu or writer
            print(f"  --workers {workers}: writer CPU {writer:.2f} s, workers CPU {helpers:.2f} s; serial CPU / "
                  f"writer CPU = {serial_cpu / writer:.2f} (the speed-up bound with a free core per worker)")


if __name__ == "__main__":
    main()
