"""What `kit.value` costs on a large task, against reading its evidence from the store in the same run.

A task of N accepted examples (default 10,000) in a fresh SQLite store and one stored random-search run with C
candidates (default 1,000), each showing 16 random examples as demos, scored with a planted effect per example.
Measured in one run, interleaved, median of `--rounds`:

- the baseline: streaming the C candidates from the store (`store.iter_candidates`), the least any valuation
  must do;
- `kit.value(task)` with the default plugins: read, the `demo_value` ridge fit (dual form, a C x C solve),
  combining, and storing N values; its peak traced memory (tracemalloc, numpy included);
- reading values back: `kit.values(task, limit=100)` (the 100 lowest) against the same query in raw sqlite3.

It also prints the rank correlation between the planted and the estimated effects, so a fast but wrong
estimator cannot pass unnoticed.

With `--valuation-run B` it also times a budgeted valuation run (`kit.valuation_run`) of B programs of 4 demos,
each scored on 10 validation examples, against a loopback OpenAI-compatible server, beside the same LM calls
made in a plain loop (no plan, no claims, no stored candidates): the difference is what the stored, resumable
plan costs per program.

    python benchmarks/valuation.py [--n 10000] [--candidates 1000] [--rounds 3] [--valuation-run 50]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import dspy_trainkit as tk
from dspy_trainkit import load_settings
from dspy_trainkit.optimization.records import Run

QUALITY = ("lengths", "consistency", "pii", "neardup", "coherence", "relevance", "accuracy", "llm_judge")


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0.0] * len(values)
        for rank, index in enumerate(order):
            out[index] = float(rank)
        return out

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    mean = (n - 1) / 2
    cov = sum((x - mean) * (y - mean) for x, y in zip(ra, rb, strict=True))
    var = sum((x - mean) ** 2 for x in ra)
    return cov / var


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--candidates", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--valuation-run", type=int, default=0, metavar="B")
    args = parser.parse_args()
    if args.valuation_run:
        valuation_run(args.valuation_run)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        with tk.open(f"sqlite:///{db}", settings=load_settings(env={}, cwd=Path(folder)), disable=QUALITY) as kit:
            kit.add_many({"task": "qa", "inputs": {"q": f"question {i}"}, "outputs": {"a": str(i)}}
                         for i in range(args.n))
            ids = list(kit.store.iter_ids(tk.ExampleQuery(task="qa", status="accepted")))
            effect = {i: rng.gauss(0, 1) for i in ids}
            candidates = []
            for seed in range(args.candidates):
                demos = rng.sample(ids, 16)
                candidates.append({"seed": seed, "score": 50 + sum(effect[d] for d in demos) + rng.gauss(0, 1),
                                   "demo_ids": demos, "subscores": []})
            run = Run(task="qa", optimizer="random-search", status="succeeded", val_ids=ids[:20])
            kit.store.save_run(run.record(), [], candidates)

            read, valued, reads, raw_reads, peaks = [], [], [], [], []
            raw = sqlite3.connect(db)
            for _ in range(args.rounds):
                start = time.perf_counter()
                count = sum(1 for _ in kit.store.iter_candidates("qa"))
                read.append(time.perf_counter() - start)
                tracemalloc.start()
                start = time.perf_counter()
                report = kit.value("qa")
                valued.append(time.perf_counter() - start)
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
                start = time.perf_counter()
                lowest = kit.values("qa", limit=100)
                reads.append(time.perf_counter() - start)
                start = time.perf_counter()
                rows = raw.execute("SELECT * FROM example_values WHERE task = ? ORDER BY value, example_id "
                                   "LIMIT 100", ("qa",)).fetchall()
                raw_reads.append(time.perf_counter() - start)
            raw.close()
            assert count == args.candidates and len(rows) == len(lowest) == 100
            estimated = {v.example_id: v.value for v in report.values}
            shared = [i for i in ids if i in estimated]
            rho = spearman([effect[i] for i in shared], [estimated[i] for i in shared])

    median = statistics.median
    print(f"{args.n} examples, {args.candidates} candidates of 16 demos, {args.rounds} rounds (median)")
    print(f"  read candidates (baseline)    {median(read) * 1000:8.1f} ms")
    print(f"  kit.value (default plugins)   {median(valued) * 1000:8.1f} ms   ratio baseline/value "
          f"{median(read) / median(valued):.3f}   peak traced memory {max(peaks) / 2**20:.0f} MiB")
    print(f"  raw sqlite3: 100 lowest       {median(raw_reads) * 1000:8.2f} ms")
    print(f"  kit.values(limit=100)         {median(reads) * 1000:8.2f} ms   ratio raw/kit "
          f"{median(raw_reads) / median(reads):.3f}")
    print(f"  valued {len(report.values)} examples; rank correlation with the planted effects: {rho:.3f}")


def valuation_run(budget: int) -> None:
    """A valuation run of `budget` programs against a loopback server, and the same calls in a plain loop."""
    import dspy

    from dspy_trainkit.effectiveness.sampling import design, slot_demos
    from dspy_trainkit.testing import OpenAIServer, make_lm

    def exact(example: object, prediction: object, trace: object = None) -> float:
        return float(getattr(prediction, "a", None) == getattr(example, "a", None))

    with tempfile.TemporaryDirectory() as folder, OpenAIServer(lambda _body: {"a": "ok"}) as server:
        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
        settings = load_settings(env={}, cwd=Path(folder))
        with tk.open(f"sqlite:///{Path(folder) / 'run.db'}", settings=settings, disable=QUALITY) as kit:
            kit.add_many({"task": "qa", "inputs": {"q": f"question {i}"}, "outputs": {"a": str(i)}}
                         for i in range(200))
            lm = make_lm(server)
            start = time.perf_counter()
            report = kit.valuation_run("qa", budget=budget, demos=4, val_size=10, lm=lm, concurrency=1,
                                       program=lambda: dspy.Predict("q -> a"), metric=exact)
            planned = time.perf_counter() - start
            config = design(list(kit.store.iter_ids(tk.ExampleQuery(task="qa", status="accepted"))), demos=4,
                            val_size=10, seed=0)
            val = [kit.get(i) for i in config["val_ids"]]
            start = time.perf_counter()
            with dspy.context(lm=lm):
                for index in range(budget):
                    program = dspy.Predict("q -> a")
                    program.demos = [dspy.Example(**kit.get(i).inputs, **kit.get(i).outputs)
                                     for i in slot_demos(config, index)]
                    for example in val:
                        program(**example.inputs)
            plain = time.perf_counter() - start
    print(f"valuation run: {budget} programs x 10 validation examples, {report.lm_calls} LM calls, concurrency 1")
    print(f"  kit.valuation_run            {planned:8.2f} s   ({planned / budget * 1000:.1f} ms per program)")
    print(f"  the same calls, plain loop   {plain:8.2f} s   ({plain / budget * 1000:.1f} ms per program); "
          f"plan overhead {(planned - plain) / budget * 1000:+.1f} ms per program")


if __name__ == "__main__":
    main()
