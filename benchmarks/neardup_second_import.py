"""A second import into a large store against the same import into an empty store, default plugins on.

The near-duplicate index of a task holds every stored example; a new process used to rebuild it from every
stored row (54 s and 3.3 GiB at a million stored). Now it loads the signatures saved in the store (see
docs/neardup.md). This measures what that leaves:

(1) once per run: `--stored` generated practice problems (~55 words each, 2% planted near-copies; see
    problem_texts.py) imported with the default plugins into a SQLite store cached in the run's temp folder
    (timed, printed), and `--rows` new ones (2% near-copies of each other, 1% near-copies of stored problems);
(2) `--repeat` alternating rounds of: (a) `kit.import_files` of the new file into an empty store, (b) the same
    into a copy of the cached store (the copy is not timed). Each import runs in its own process (so the second
    one starts without an index, as `trainkit import` does) that reports its wall time, its peak RSS
    (`resource.getrusage`) and the time spent in the neardup plugin's hooks (validate, score, on_data_changed,
    with loading the index).

Prints the medians, the ratio second/empty (target <= 1.2), the second import's peak RSS (target < 1 GiB), and
neardup's cost per imported record in both.

    python benchmarks/neardup_second_import.py [--stored 1000000] [--rows 100000] [--repeat 3] [--dir DIR]
                                               [--keep FOLDER]

With --keep FOLDER the files are made in FOLDER and kept; a later run with the same FOLDER (and the same
--stored and --rows) reuses its generated files and cached store instead of building them again.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from problem_texts import TASK, generate, near_copy

CONFIG = f'''default_task = "{TASK}"
[tasks.{TASK}]
signature = "domain, topic, difficulty -> problem, answer"
collection_mode = "automatic"
'''
CHUNK = 100_000  # records generated at a time (generate() holds its records in memory)

CHILD = r'''
import json, resource, sys, time
from pathlib import Path
start = time.perf_counter()
import dspy_trainkit as tk
from dspy_trainkit.settings import load_settings
import dspy_trainkit_neardup.check as check
import dspy_trainkit_neardup.index as index
import dspy_trainkit_neardup.persist as persist

spent = {"validate": 0.0, "score": 0.0, "changed": 0.0, "load": 0.0}

def timed(owner, name, key):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t0
    setattr(owner, name, wrapper)

timed(check, "validate", "validate")
timed(check, "novelty", "score")
timed(index.KitState, "changed", "changed")
timed(persist, "load", "load")  # inside validate's time: the first batch loads the index
folder, db, source = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with tk.open(f"sqlite:///{db}", settings=load_settings(folder / "trainkit.toml", env={})) as kit:
    report = kit.import_files([source]).files[source]
    built = {task: dict(i.build_seconds) for task, i in index.state_for(kit).indexes.items()}
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "stored": report.stored, "rejected": report.rejected, "neardup": spent, "index": built}))
'''


def write(path: Path, records: list[dict]) -> None:
    with path.open("ab") as out:
        for r in records:
            out.write(orjson.dumps({**r, "source": "imported"}) + b"\n")


def make_files(folder: Path, stored: int, rows: int, seed: int) -> None:
    """The stored file (in chunks of generated problems) and the new one (with near-copies of stored ones)."""
    old, new = folder / "stored.jsonl", folder / "new.jsonl"
    rng = random.Random(seed)
    samples: list[dict] = []
    for first in range(0, stored, CHUNK):
        size = min(CHUNK, stored - first)
        records, _ = generate(size, planted=size // 50, seed=seed + first)
        write(old, records)
        samples.extend(rng.sample(records, min(size, max(1, rows // 100 * size // stored))))  # to copy later
    records, _ = generate(rows, planted=rows // 50, seed=seed - 1)
    for position, original in zip(rng.sample(range(rows), min(len(samples), rows // 100)), samples, strict=False):
        copy = dict(original, metadata={"n": -1}, outputs=dict(original["outputs"]))
        copy["outputs"]["problem"] = near_copy(original["outputs"]["problem"], rng.choice((1, 2)), rng)
        records[position] = copy
    write(new, records)


def run_import(folder: Path, db: Path, source: Path) -> dict:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(db), str(source)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"import into {db.name} failed:\n{result.stderr[-3000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["wall"] = time.perf_counter() - started
    return data


def remove(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def per_record(data: dict, rows: int) -> str:
    parts = data["neardup"]
    total = parts["validate"] + parts["score"] + parts["changed"]
    return (f"{total * 1e6 / rows:5.0f} us/record (validate {parts['validate']:.2f} s of which loading the index "
            f"{parts['load']:.2f} s, score {parts['score']:.2f} s, index upkeep and saving {parts['changed']:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stored", type=int, default=1_000_000, help="examples in the large store (1000000)")
    parser.add_argument("--rows", type=int, default=100_000, help="records in the second import (100000)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="folder for the temp files (default: system temp)")
    parser.add_argument("--keep", type=Path, default=None, help="make and keep the files in this folder")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=options.dir) as temp:
        folder = options.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "trainkit.toml").write_text(CONFIG, encoding="utf-8")
        cache, built_file = folder / "cache.db", folder / "built.json"
        old, new = folder / "stored.jsonl", folder / "new.jsonl"
        if options.keep is not None and built_file.exists():
            built = json.loads(built_file.read_text())
            print(f"reusing the files and the cached store of {folder}")
            # a store kept from an older checkout gets this one's migrations now, untimed: applied in the timed
            # process, the migration's write transaction gave that connection the writer's page cache before the
            # index load scanned the store (+130 MB of peak RSS at a million, an artifact of the reuse)
            subprocess.run([sys.executable, "-c", "import sys, dspy_trainkit as tk; tk.open(sys.argv[1]).close()",
                            f"sqlite:///{cache}"], check=True)
        else:
            for path in (old, new):
                path.unlink(missing_ok=True)
            remove(cache)
            t0 = time.perf_counter()
            make_files(folder, options.stored, options.rows, options.seed)
            print(f"generated {options.stored} + {options.rows} records in {time.perf_counter() - t0:.0f} s")
            built = run_import(folder, cache, old)
            built_file.write_text(json.dumps(built))
        print(f"built the cached store: {built['stored']} stored ({built['rejected']} rejected) in "
              f"{built['seconds']:.0f} s, peak RSS {built['peak_mb']:.0f} MB")
        print(f"  neardup while building it: {per_record(built, options.stored)}")
        empties, seconds = [], []
        for _ in range(options.repeat):  # alternating, so that noise on a shared machine hits both alike
            empty = folder / "empty.db"
            remove(empty)
            empties.append(run_import(folder, empty, new))
            second = folder / "second.db"
            remove(second)
            shutil.copyfile(cache, second)
            seconds.append(run_import(folder, second, new))
            os.sync()
        rows = options.rows
        e = statistics.median(d["seconds"] for d in empties)
        s = statistics.median(d["seconds"] for d in seconds)
        peak_e = max(d["peak_mb"] for d in empties)
        peak_s = max(d["peak_mb"] for d in seconds)
        median_e = min(empties, key=lambda d: abs(d["seconds"] - e))
        median_s = min(seconds, key=lambda d: abs(d["seconds"] - s))
        runs = f" (median of {options.repeat})" if options.repeat > 1 else ""
        print(f"import of {rows} into an empty store:         {e:7.2f} s{runs}, peak RSS {peak_e:5.0f} MB; "
              f"stored {median_e['stored']}, rejected {median_e['rejected']}")
        print(f"import of {rows} into a store of {built['stored']}: {s:7.2f} s{runs}, peak RSS {peak_s:5.0f} MB; "
              f"stored {median_s['stored']}, rejected {median_s['rejected']}")
        print(f"ratio second/empty: {s / e:.2f} (target <= 1.2); peak RSS at {built['stored']} stored: "
              f"{peak_s / 1024:.2f} GiB (target < 1 GiB)")
        print(f"neardup into the empty store:  {per_record(median_e, rows)}")
        print(f"neardup into the large store:  {per_record(median_s, rows)}")
        index = next(iter(median_s["index"].values()), {})
        print(f"index of the large store: {index.get('loaded', 0)} signatures loaded, {index.get('computed', 0)} "
              f"computed, reading the store {index.get('read', 0):.2f} s, LSH insert {index.get('insert', 0):.2f} s")


if __name__ == "__main__":
    main()
