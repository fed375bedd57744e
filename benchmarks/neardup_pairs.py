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
    more than reading its rows).

    python benchmarks/neardup_pairs.py [--stored 99000] [--rounds 7]

Needs only the checkout (plugins on the path) and numpy; nothing is stored.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from dspy_trainkit_neardup import index as nd  # noqa: E402
from ingest import write_jsonl  # noqa: E402

from dspy_trainkit import Example  # noqa: E402

BATCH = 1_000
CHUNK = 32  # check.STORED_CHUNK: intake asks for a batch's stored candidates 32 sketches at a time


def sketches_of(path: Path, num_perm: int, bands: int) -> list[nd.Sketch]:
    made: list[nd.Sketch] = []
    examples: list[Example] = []
    with path.open("rb") as f:
        for line in f:
            r = orjson.loads(line)
            examples.append(Example(task="problems", inputs={k: r[k] for k in ("domain", "topic", "difficulty")},
                                    outputs={"problem": r["problem"], "answer": r["answer"]}))
            if len(examples) == BATCH:
                made += nd.sketch(examples, num_perm, bands)
                examples = []
    return made + nd.sketch(examples, num_perm, bands)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stored", type=int, default=99_000, help="indexed records (default 99000)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7; the median is shown)")
    args = parser.parse_args()
    num_perm, bands = nd.lsh_shape(0.85)
    with tempfile.TemporaryDirectory(prefix="trainkit-pairs-") as tmp:
        source = Path(tmp) / "records.jsonl"
        write_jsonl(source, args.stored + BATCH)
        started = time.perf_counter()
        sketches = sketches_of(source, num_perm, bands)
    index = nd.TaskIndex("problems", num_perm, bands)
    for first in range(0, args.stored, BATCH):
        index.add(sketches[first:min(first + BATCH, args.stored)])
    print(f"indexed {len(index):,} records in {time.perf_counter() - started:.1f} s "
          f"({num_perm} slots, {bands} bands)")
    batch = sketches[args.stored:args.stored + BATCH]
    start = nd.confirm_from(nd.half_found(num_perm, bands), num_perm)
    chunks = [batch[first:first + CHUNK] for first in range(0, len(batch), CHUNK)]
    raw = [index.lsh.query_entries(np.stack([sk.bands for sk in chunk])) for chunk in chunks]
    pairs = sum(len(owner) for owner, _ in raw)
    stored = np.frombuffer(index.signatures, dtype=np.uint8).reshape(-1, num_perm)

    def search() -> int:
        return sum(len(index.candidates(chunk, [start] * len(chunk), other_content=True)[0]) for chunk in chunks)

    def floor() -> int:
        return sum(len(np.take(stored, keys, axis=0)) for _, keys in raw)

    def lookup() -> int:
        return sum(len(index.lsh.query_entries(np.stack([sk.bands for sk in chunk]))[0]) for chunk in chunks)

    times: dict[str, list[float]] = {"trainkit": [], "floor": [], "lookup": []}
    found = 0
    for _ in range(args.rounds):
        for name, work in (("trainkit", search), ("floor", floor), ("lookup", lookup)):
            began = time.perf_counter()
            result = work()
            times[name].append(time.perf_counter() - began)
            if name == "trainkit":
                found = result
    ours, least = statistics.median(times["trainkit"]), statistics.median(times["floor"])
    print(f"batch of {BATCH:,} against {len(index):,} stored: {pairs:,} raw LSH pairs "
          f"({pairs / BATCH:.0f} a record), {found:,} at or above the estimate cut {start:.3f}")
    print(f"trainkit candidate search: {ours * 1e3:7.1f} ms  ({ours * 1e9 / pairs:.0f} ns a pair, "
          f"median of {args.rounds})")
    print(f"  of which the LSH lookup: {statistics.median(times['lookup']) * 1e3:7.1f} ms")
    print(f"floor, reading the rows:   {least * 1e3:7.1f} ms  ({least * 1e9 / pairs:.0f} ns a pair)")
    print(f"ratio floor/trainkit: {least / ours:.2f}")


if __name__ == "__main__":
    main()
