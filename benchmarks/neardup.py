"""Near-duplicate detection (plugin `neardup`) through the whole intake, against the same intake without it.

Generates `--rows` realistic practice problems (~55 words each, deterministic seed; see problem_texts.py), of
which `--planted` (default rows/50) are near-copies of an earlier problem with 1-3 words replaced, placed
anywhere after their original (the same batch or many batches later). Then:

(a) off: `kit.add_many(records)` into a fresh SQLite store with neardup disabled (the other quality plugins
    lengths, consistency, pii, coherence, relevance, accuracy, llm_judge are disabled in every run);
(b) on:  the same with neardup on. Prints examples/s of both and the ratio on/off, the recall of planted pairs
    (copy rejected with a finding naming its original), and false flags: flagged examples that are not planted
    copies, split by whether their exact word-set Jaccard with the example named reaches the threshold (a real
    near-duplicate the generator made by chance) or not (an estimation error), and the novelty scores of the
    accepted examples;
(c) build, in a fresh process: the store of (b) opened again and the task's index loaded from the signatures
    saved in it, timed; then rebuilt from the texts (reading the store, words and MinHashes, LSH insert, saving),
    timed; then a second index built beside the first, whose growth of the process's resident memory is the
    memory an index takes.

With --compare-libraries it instead times building a MinHash LSH index (128 permutations, word sets) over the
generated texts with rensa and with datasketch (if installed) and checks which planted pairs each finds.

    python benchmarks/neardup.py [--rows 100000] [--planted N] [--seed 7] [--repeat 1] [--threshold 0.85]
                                [--compare-libraries]
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from problem_texts import TASK, generate

OTHER_QUALITY_PLUGINS = ("lengths", "consistency", "pii", "coherence", "relevance", "accuracy", "llm_judge")
SETTINGS_TOML = f'''default_task = "{TASK}"
[tasks.{TASK}]
signature = "domain, topic, difficulty -> problem, answer"
collection_mode = "automatic"
[plugin.neardup]
threshold = {{threshold}}
'''
OTHER_ID = re.compile(r"example ([0-9A-Za-z_-]+)")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def open_kit(folder: Path, name: str, *, neardup: bool, fresh: bool = True, threshold: float = 0.85) -> Any:
    import dspy_trainkit as tk
    from dspy_trainkit.settings import load_settings

    db = folder / f"{name}.db"
    if fresh:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    config = folder / "trainkit.toml"
    config.write_text(SETTINGS_TOML.format(threshold=threshold), encoding="utf-8")
    disable = OTHER_QUALITY_PLUGINS + (() if neardup else ("neardup",))
    return tk.open(f"sqlite:///{db}", settings=load_settings(config, env={}), disable=disable)


def run_intake(folder: Path, name: str, records: list[dict[str, Any]], *, neardup: bool, threshold: float) -> float:
    with open_kit(folder, name, neardup=neardup, threshold=threshold) as kit:
        gc.collect()
        start = time.perf_counter()
        report = kit.add_many(records, actor="benchmark")
        elapsed = time.perf_counter() - start
    if report.stored != len(records):
        raise SystemExit(f"intake stored {report.stored} of {len(records)} (problems: {report.problems[:3]})")
    return elapsed


def word_set(record_or_example: Any) -> set[str]:
    from dspy_trainkit_neardup.text import words

    if isinstance(record_or_example, dict):
        return set(words(record_or_example["inputs"], record_or_example["outputs"]))
    return set(words(record_or_example.inputs, record_or_example.outputs))


def evaluate(folder: Path, records: list[dict[str, Any]], planted: dict[int, int], threshold: float) -> None:
    with open_kit(folder, "on", neardup=False, fresh=False) as kit:
        examples = {ex.metadata["n"]: ex for ex in kit.examples(task=TASK)}
    id_to_n = {ex.id: n for n, ex in examples.items()}
    flagged = {n: ex for n, ex in examples.items() if any(f.code == "near-duplicate" for f in ex.findings)}
    found = named = 0
    for copy, original in planted.items():
        if copy in flagged:
            found += 1
            messages = [f.message for f in flagged[copy].findings if f.code == "near-duplicate"]
            named += any(id_to_n.get(m) == original for msg in messages for m in OTHER_ID.findall(msg))
    false = [n for n in flagged if n not in planted]
    real = 0
    for n in false:
        message = next(f.message for f in flagged[n].findings if f.code == "near-duplicate")
        other = id_to_n.get(OTHER_ID.findall(message)[0])
        a, b = word_set(records[n]), word_set(records[other])
        real += len(a & b) / len(a | b) >= threshold
    unplanted = len(records) - len(planted)
    print(f"recall of planted pairs: {found}/{len(planted)} = {found / len(planted):.2%} flagged "
          f"({named} naming their original)")
    print(f"false flags among {unplanted} unplanted examples: {len(false)} ({len(false) / unplanted:.3%}); "
          f"{real} of them are real near-duplicates made by the generator (exact Jaccard >= {threshold}), "
          f"{len(false) - real} estimation errors")
    accepted = [ex.scores["novelty"] for ex in examples.values() if ex.status == "accepted"]
    below = [v for v in accepted if v < 1.0]
    print(f"novelty of {len(accepted)} accepted examples: {len(accepted) - len(below)} at 1.0, {len(below)} below "
          f"(median of those {statistics.median(below) if below else float('nan'):.3f}, "
          f"min {min(below, default=float('nan')):.3f})")


def measure_build(folder: Path, threshold: float) -> None:
    """Build the index from the store of run (b) in a fresh process, so that its memory is measured alone."""
    result = subprocess.run([sys.executable, __file__, "--build-only", str(folder), "--threshold", str(threshold)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"index build failed:\n{result.stderr}")
    print(result.stdout, end="")


def build_only(folder: Path, threshold: float) -> None:
    from dspy_trainkit_neardup.index import build, lsh_shape, state_for

    with open_kit(folder, "on", neardup=True, fresh=False, threshold=threshold) as kit:
        index = state_for(kit).index(kit, TASK)  # what opening a kit does: load the saved signatures
        times = index.build_seconds
        print(f"index load from the store: {times['loaded']} saved signatures loaded, {times['computed']} computed, "
              f"in {times['total']:.2f} s (reading the store {times['read']:.2f} s, LSH insert {times['insert']:.2f} "
              f"s); {index.bands} bands of {index.num_perm // index.bands} rows")
        rebuilt = build(kit, TASK, *lsh_shape(threshold))  # what it did before signatures were saved
        times = rebuilt.build_seconds
        print(f"index rebuild from the texts: {len(rebuilt)} examples in {times['total']:.2f} s "
              f"({len(rebuilt) / times['total']:,.0f} examples/s; reading the store {times['read']:.2f} s, words and "
              f"MinHashes {times['sketch']:.2f} s, LSH insert {times['insert']:.2f} s, saving {times['save']:.2f} s)")
        del rebuilt
        # memory: a second index of the same examples beside the first (imports, the store's page cache and
        # the allocator's arenas are warm by now, so what the process grows by is the index)
        gc.collect()
        before = rss_mb()
        second = build(kit, TASK, *lsh_shape(threshold))
        gc.collect()
        grown = rss_mb() - before
        print(f"index memory: +{grown:.0f} MB resident for {len(second)} examples "
              f"({grown * 1e6 / max(len(second), 1):,.0f} bytes per example)")


def compare_libraries(records: list[dict[str, Any]], planted: dict[int, int], threshold: float) -> None:
    from dspy_trainkit_neardup.text import words
    from rensa import RMinHash, RMinHashLSH

    word_lists = [words(r["inputs"], r["outputs"]) for r in records]
    copies = list(planted)
    bands = 16  # 16 bands of 8 rows for both libraries
    print(f"{len(records)} texts, mean {statistics.mean(len(w) for w in word_lists):.1f} words, "
          f"{len(planted)} planted pairs, 128 permutations in {bands} bands, threshold {threshold}; "
          "times are MinHash + LSH insert from the word lists")

    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    hashes = RMinHash.from_token_sets(word_lists, num_perm=128, seed=1)
    lsh = RMinHashLSH(threshold=threshold, num_perm=128, num_bands=bands)
    lsh.insert_pairs(list(enumerate(hashes)))
    elapsed = time.perf_counter() - start
    grown = rss_mb() - before
    found = sum(1 for c in copies if planted[c] in lsh.query(hashes[c])
                and hashes[c].jaccard(hashes[planted[c]]) >= threshold)
    print(f"rensa:      build {elapsed:6.2f} s = {len(records) / elapsed:9,.0f} texts/s, "
          f"+{grown:.0f} MB; planted pairs found {found}/{len(planted)}")
    del hashes, lsh
    gc.collect()
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        print("datasketch: not installed (pip install datasketch)")
        return
    before = rss_mb()
    start = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=128, params=(bands, 128 // bands))
    minhashes = []
    for n, tokens in enumerate(word_lists):
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([t.encode() for t in tokens])
        minhashes.append(m)
        lsh.insert(n, m)
    elapsed = time.perf_counter() - start
    grown = rss_mb() - before
    found = sum(1 for c in copies if planted[c] in lsh.query(minhashes[c])
                and minhashes[c].jaccard(minhashes[planted[c]]) >= threshold)
    print(f"datasketch: build {elapsed:6.2f} s = {len(records) / elapsed:9,.0f} texts/s, "
          f"+{grown:.0f} MB; planted pairs found {found}/{len(planted)} (bands/rows {lsh.b}/{lsh.r})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="examples in all (default 100000)")
    parser.add_argument("--planted", type=int, default=None, help="near-copies among them (default rows/50)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="alternating off/on rounds (default 1)")
    parser.add_argument("--threshold", type=float, default=0.85, help="[plugin.neardup] threshold (default 0.85)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the database files (default: a temp)")
    parser.add_argument("--compare-libraries", action="store_true",
                        help="time rensa against datasketch building an LSH index instead")
    parser.add_argument("--build-only", type=Path, default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    threshold = options.threshold
    if options.build_only is not None:
        build_only(options.build_only, threshold)
        return
    planted_count = options.planted if options.planted is not None else options.rows // 50

    start = time.perf_counter()
    records, planted = generate(options.rows, planted=planted_count, seed=options.seed)
    print(f"generated {len(records)} records ({len(planted)} planted near-copies) in "
          f"{time.perf_counter() - start:.1f} s")
    if options.compare_libraries:
        compare_libraries(records, planted, threshold)
        return

    with tempfile.TemporaryDirectory(dir=options.dir) as temp:
        folder = Path(temp)
        offs, ons = [], []
        for _ in range(options.repeat):  # alternating, so that noise on a shared machine hits both alike
            offs.append(run_intake(folder, "off", records, neardup=False, threshold=threshold))
            ons.append(run_intake(folder, "on", records, neardup=True, threshold=threshold))
        off, on = statistics.median(offs), statistics.median(ons)
        runs = f" (median of {options.repeat})" if options.repeat > 1 else ""
        print(f"intake, neardup off: {off:6.2f} s = {len(records) / off:8,.0f} examples/s{runs}")
        print(f"intake, neardup on:  {on:6.2f} s = {len(records) / on:8,.0f} examples/s{runs}  "
              f"(ratio on/off {off / on:.2f})")
        evaluate(folder, records, planted, threshold)
        measure_build(folder, threshold)


if __name__ == "__main__":
    main()
