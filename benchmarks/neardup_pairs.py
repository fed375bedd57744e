"""The near-duplicate candidate search per batch, against the least any exact search must do: read the rows.

On templated text (the intake benchmark's QA records: a fixed sentence around 14-22 words drawn from a small
vocabulary) two unrelated records share about half their words, and the LSH that finds pairs at the 0.85
threshold with 99% recall also returns a share of those 0.5-0.6 pairs by chance: hundreds per record at 100k
stored. Every such pair's estimate must be made to know it is below the novelty floor. This measures where that
leaves the search:

(1) `--stored` records of `ingest.py`'s generator are sketched and indexed (`TaskIndex`, the default shape);
(2) `--rounds` alternating rounds of, for the next 1,000 records (one intake batch):
    (a) trainkit: `TaskIndex.candidates` as intake calls it (32 sketches at a time, estimates from the novelty
        floor's cut, other content only): LSH lookup, estimates, filters, unique;
    (b) the LSH lookup alone (`BandIndex.query_entries`), part of (a);
    (c) floor: numpy gathering the stored signature rows of the same raw LSH pairs (the 1,000 x 162 signature
        bytes are in cache; the stored rows are not), which any exact search has to read once;
(3) prints the raw LSH pairs of the batch, ns per pair of both, and floor / trainkit (1.0 = the search costs no
    more than reading its rows);
(4) prints what sketching the batch costs a record, whole and in parts (words, rensa's MinHash, word hashes):
    the part of neardup's cost that every record pays whatever the store holds.

With --baseline-rev REV it also measures that git revision's neardup plugin (checked out into a temporary
worktree) on the same records, each side in its own process, the processes alternating, and prints baseline /
this checkout for the search.

    python benchmarks/neardup_pairs.py [--stored 99000] [--rounds 7] [--baseline-rev REV] [--processes 3]

Needs only the checkout (plugins on the path) and numpy; nothing is stored.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
#: The checkout whose neardup plugin is measured (`--code`): set before the plugin is imported.
CODE = Path(os.environ.get("TRAINKIT_PAIRS_CODE", ROOT))
sys.path[:0] = [str(CODE), str(CODE / "plugins")]

from cli_startup import worktree  # noqa: E402
from dspy_trainkit_neardup import index as nd  # noqa: E402
from ingest import write_jsonl  # noqa: E402

from dspy_trainkit import Example  # noqa: E402

BATCH = 1_000
CHUNK = 32  # check.STORED_CHUNK: intake asks for a batch's stored candidates 32 sketches at a time


def sketches_of(path: Path, num_perm: int, bands: int) -> tuple[list[nd.Sketch], list[Example]]:
    """The sketches of every record of `path`, and the examples of its last batch (timed again as the floor)."""
    made: list[nd.Sketch] = []
    examples: list[Example] = []
    with path.open("rb") as f:
        for line in f:
            r = orjson.loads(line)
            examples.append(Example(task="problems", inputs={k: r[k] for k in ("domain", "topic", "difficulty")},
                                    outputs={"problem": r["problem"], "answer": r["answer"]}))
            if len(examples) == BATCH:
                made += nd.sketch(examples, num_perm, bands)
                last, examples = examples, []
    if examples:
        made += nd.sketch(examples, num_perm, bands)
        last = examples
    return made, last


def sketch_parts(examples: list[Example], num_perm: int, bands: int) -> dict[str, Any]:
    """What sketching one batch costs, whole and in its parts: cutting the texts into words, rensa's MinHash
    digests, the words' 64-bit hashes. Any near-duplicate check of this design pays it for every record, whatever
    the store holds: it is the floor of neardup's cost per record."""
    word_lists = [nd.words(ex.inputs, ex.outputs) for ex in examples]
    parts = {"sketch": lambda: nd.sketch(examples, num_perm, bands),
             "words": lambda: [nd.words(ex.inputs, ex.outputs) for ex in examples],
             "minhash": lambda: nd.digests(word_lists, num_perm)}
    if hasattr(nd, "word_sets_of"):
        parts["word hashes"] = lambda: nd.word_sets_of(word_lists)
    found: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(5):
        for name, work in parts.items():
            began = time.perf_counter()
            work()
            found[name].append((time.perf_counter() - began) / len(examples))
    return {name: min(values) for name, values in found.items()}


def measure(stored_count: int, rounds: int) -> dict[str, Any]:
    """Index `stored_count` records, then time the search for the next batch: medians of `rounds` rounds."""
    num_perm, bands = nd.lsh_shape(0.85)
    with tempfile.TemporaryDirectory(prefix="trainkit-pairs-") as tmp:
        source = Path(tmp) / "records.jsonl"
        write_jsonl(source, stored_count + BATCH)
        sketches, last = sketches_of(source, num_perm, bands)
    per_record = sketch_parts(last, num_perm, bands)
    index = nd.TaskIndex("problems", num_perm, bands)
    for first in range(0, stored_count, BATCH):
        index.add(sketches[first:min(first + BATCH, stored_count)])
    batch = sketches[stored_count:stored_count + BATCH]
    start = nd.confirm_from(nd.half_found(num_perm, bands), num_perm)
    chunks = [batch[first:first + CHUNK] for first in range(0, len(batch), CHUNK)]
    raw = [index.lsh.query_entries(np.stack([sk.bands for sk in chunk])) for chunk in chunks]
    stored = np.frombuffer(index.signatures, dtype=np.uint8).reshape(-1, num_perm)

    def search() -> int:
        return sum(len(index.candidates(chunk, [start] * len(chunk), other_content=True)[0]) for chunk in chunks)

    def lookup() -> int:
        return sum(len(index.lsh.query_entries(np.stack([sk.bands for sk in chunk]))[0]) for chunk in chunks)

    def floor() -> int:
        return sum(len(np.take(stored, keys, axis=0)) for _, keys in raw)

    times: dict[str, list[float]] = {"search": [], "lookup": [], "floor": []}
    found = 0
    for _ in range(rounds):
        for name, work in (("search", search), ("floor", floor), ("lookup", lookup)):
            began = time.perf_counter()
            result = work()
            times[name].append(time.perf_counter() - began)
            if name == "search":
                found = result
    return {"stored": len(index), "pairs": sum(len(owner) for owner, _ in raw), "found": found, "cut": start,
            "shape": [num_perm, bands], "per_record": per_record,
            **{name: statistics.median(values) for name, values in times.items()}}


def report(label: str, got: dict[str, Any]) -> None:
    pairs = got["pairs"]
    print(f"{label}: candidate search {got['search'] * 1e3:6.1f} ms ({got['search'] * 1e9 / pairs:.0f} ns a pair; "
          f"LSH lookup {got['lookup'] * 1e3:.1f} ms), floor {got['floor'] * 1e3:.1f} ms "
          f"({got['floor'] * 1e9 / pairs:.0f} ns a pair): floor/search {got['floor'] / got['search']:.2f}")
    parts = got["per_record"]
    print(f"{label}: sketching the batch {parts['sketch'] * 1e6:.1f} us a record (" + ", ".join(
        f"{name} {parts[name] * 1e6:.1f}" for name in parts if name != "sketch") + "; fastest of 5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stored", type=int, default=99_000, help="indexed records (default 99000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds a measurement (default 7; the median is shown)")
    parser.add_argument("--baseline-rev", help="also measure this git revision's neardup plugin (e.g. main), "
                                               "in alternating processes")
    parser.add_argument("--processes", type=int, default=3,
                        help="with --baseline-rev: alternating processes a side (default 3)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one side's figures, for the parent
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.stored, args.rounds)))
        return
    if not args.baseline_rev:
        got = measure(args.stored, args.rounds)
        print(f"batch of {BATCH:,} against {got['stored']:,} stored ({got['shape'][0]} slots, {got['shape'][1]} "
              f"bands): {got['pairs']:,} raw LSH pairs ({got['pairs'] / BATCH:.0f} a record), {got['found']:,} at "
              f"or above the estimate cut {got['cut']:.3f}")
        report("this checkout", got)
        return
    with worktree(args.baseline_rev) as checkout:
        sides = {"this checkout": ROOT, f"baseline {args.baseline_rev}": checkout}
        results: dict[str, list[dict[str, Any]]] = {label: [] for label in sides}
        for _ in range(args.processes):
            for label, code in sides.items():
                out = subprocess.run([sys.executable, __file__, "--json", "--stored", str(args.stored), "--rounds",
                                      str(args.rounds)], check=True, capture_output=True, text=True,
                                     env={**os.environ, "TRAINKIT_PAIRS_CODE": str(code)}).stdout
                results[label].append(json.loads(out))
    first = results["this checkout"][0]
    print(f"batch of {BATCH:,} against {first['stored']:,} stored: {first['pairs']:,} raw LSH pairs "
          f"({first['pairs'] / BATCH:.0f} a record), {first['found']:,} at or above the estimate cut; "
          f"medians over {args.processes} alternating processes a side")
    medians = {label: {key: statistics.median(r[key] for r in runs) for key in ("search", "lookup", "floor")}
               | {"pairs": runs[0]["pairs"], "per_record": {name: min(r["per_record"][name] for r in runs)
                                                            for name in runs[0]["per_record"]}}
               for label, runs in results.items()}
    for label, got in medians.items():
        report(label, got)
    this, before = medians["this checkout"], medians[f"baseline {args.baseline_rev}"]
    print(f"ratio baseline/this checkout (candidate search): {before['search'] / this['search']:.2f}")


if __name__ == "__main__":
    main()
