"""What `kit.readiness` costs on a large task, and what reading (domain, quality) instead of whole rows saves.

A task of N accepted, scored examples spread over 3 domains x 5 topics x 2 difficulties in a fresh SQLite store.
Measured in one run, interleaved, median of `--rounds`:

- readiness as shipped (`store.iter_qualities`: two narrow columns);
- the baseline: the same readiness with the quality distribution read through whole examples (the Store
  interface's default `iter_qualities`, which any backend without its own override gets);
- `kit.count(task=..., status="accepted")` for scale.

    python benchmarks/readiness.py [--n 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import dspy_trainkit as tk
from dspy_trainkit import load_settings
from dspy_trainkit.store import Store

QUALITY = ("lengths", "consistency", "pii", "neardup", "coherence", "relevance", "accuracy", "llm_judge")


class _Scorer:
    @tk.hookimpl
    def score(self, examples, context):
        return {i: {"made_up": (int(ex.outputs["a"]) % 100) / 100} for i, ex in enumerate(examples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        kit = tk.open(f"sqlite:///{Path(folder) / 'bench.db'}", settings=load_settings(env={}, cwd=Path(folder)),
                      disable=QUALITY, plugins=[("bench_scorer", _Scorer())])
        with kit:
            kit.add_many({"task": "qa", "inputs": {"q": f"question {i}"}, "outputs": {"a": str(i)},
                          "domain": f"d{i % 3}", "topic": f"t{i % 5}", "difficulty": ("easy", "hard")[i % 2]}
                         for i in range(args.n))
            accepted = kit.count(task="qa", status="accepted")
            narrow, whole, count = [], [], []
            original = type(kit.store).iter_qualities
            for _ in range(args.rounds):
                start = time.perf_counter()
                shipped = kit.readiness("qa")
                narrow.append(time.perf_counter() - start)
                type(kit.store).iter_qualities = Store.iter_qualities  # the whole-row baseline
                try:
                    start = time.perf_counter()
                    baseline = kit.readiness("qa")
                    whole.append(time.perf_counter() - start)
                finally:
                    type(kit.store).iter_qualities = original
                start = time.perf_counter()
                kit.count(task="qa", status="accepted")
                count.append(time.perf_counter() - start)
            assert shipped[0].quality == baseline[0].quality  # the same answer either way
    n, w, c = statistics.median(narrow), statistics.median(whole), statistics.median(count)
    print(f"accepted examples: {accepted:,} (quality scored: {shipped[0].quality['scored']:,})")
    print(f"readiness, narrow read (shipped):  {n * 1000:8.1f} ms")
    print(f"readiness, whole rows (baseline):  {w * 1000:8.1f} ms   baseline / shipped = {w / n:.1f}x")
    print(f"kit.count of accepted (scale):     {c * 1000:8.1f} ms   shipped / count = {n / c:.1f}x")


if __name__ == "__main__":
    main()
