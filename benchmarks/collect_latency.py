"""What a pipeline pays per `kit.collect(...)` call while the background writer stores into SQLite.

Measured in one run, per call with `time.perf_counter_ns` around each call (the timer's own cost is in every row):

(a) baseline: an empty function taking the same arguments as `kit.collect`;
(b) baseline: a bare `queue.put_nowait` of a record dict like the one collect queues;
(c) `kit.collect(task, inputs, outputs, domain=, topic=, difficulty=)` for `--calls` distinct records, with the
    writer thread running intake (validation plugins, dedup, scoring, SQLite writes) at the same time.

Then the time from the last collect call until `kit.flush()` returns (the writer's backlog), and a check that
the store holds exactly `--calls` examples of the task. Percentiles are in microseconds; the ratios compare
collect with each baseline. The writer is started (and warmed up) before the measured calls. Garbage-collector
pauses during the collect calls are reported too: a full collection stops every thread and is what the max
column mostly shows.

    python benchmarks/collect_latency.py [--calls 20000] [--load basic_checks] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import queue
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dspy_trainkit as tk

TASK = "problems"
DOMAINS = ("algebra", "geometry", "probability", "number_theory", "calculus")
DIFFICULTIES = ("easy", "medium", "hard")
WORDS = ("value", "integer", "angle", "triangle", "circle", "radius", "sum", "product", "sequence", "term",
         "probability", "coin", "dice", "prime", "divisor", "remainder", "function", "derivative", "area", "slope")
SETTINGS = f"""
[tasks.{TASK}]
signature = "domain, topic, difficulty -> problem, solution, answer"
collection_mode = "automatic"

[tasks.warmup]
signature = "question -> answer"
"""


def make_calls(count: int, seed: int) -> list[tuple[dict[str, str], dict[str, str], str, str, str]]:
    """`count` distinct (inputs, outputs, domain, topic, difficulty), built before anything is timed."""
    rng = random.Random(seed)
    calls = []
    for n in range(count):
        domain, difficulty = rng.choice(DOMAINS), rng.choice(DIFFICULTIES)
        topic = f"{domain}-topic-{rng.randrange(20)}"
        words = " ".join(rng.choice(WORDS) for _ in range(25))
        inputs = {"domain": domain, "topic": topic, "difficulty": difficulty}
        outputs = {"problem": f"Problem {n}: {words}?", "solution": f"Work it out: {words}, so the answer is {n}.",
                   "answer": str(n)}
        calls.append((inputs, outputs, domain, topic, difficulty))
    return calls


def empty(task: str, inputs: Any, outputs: Any, *, domain: str | None = None, topic: str | None = None,
          difficulty: str | None = None, metadata: Any = None, provenance: Any = None) -> bool:
    return True


def time_calls(function: Any, calls: list[tuple[Any, ...]]) -> list[float]:
    """Per-call latency in microseconds of `function(TASK, inputs, outputs, domain=, topic=, difficulty=)`."""
    clock = time.perf_counter_ns
    latencies = []
    append = latencies.append
    for inputs, outputs, domain, topic, difficulty in calls:
        start = clock()
        function(TASK, inputs, outputs, domain=domain, topic=topic, difficulty=difficulty)
        append(clock() - start)
    return [ns / 1000 for ns in latencies]


def time_puts(calls: list[tuple[Any, ...]]) -> list[float]:
    """Per-call latency in microseconds of `put_nowait` of a record dict shaped like collect's."""
    target: queue.Queue[Any] = queue.Queue(maxsize=len(calls) + 1)
    records = [(f"collect #{n}", {"task": TASK, "inputs": inputs, "outputs": outputs, "source": "collected",
                                  "metadata": {}, "provenance": {"origin": "pipeline", "collected_at": 0.0},
                                  "domain": domain, "topic": topic, "difficulty": difficulty})
               for n, (inputs, outputs, domain, topic, difficulty) in enumerate(calls)]
    clock = time.perf_counter_ns
    latencies = []
    append = latencies.append
    put = target.put_nowait
    for record in records:
        start = clock()
        put(record)
        append(clock() - start)
    return [ns / 1000 for ns in latencies]


class GcPauses:
    """Garbage-collector pauses (any thread) while active: a full collection stops every thread, so it shows
    up in the max of whatever is being timed."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self.active = False
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._started) * 1e6))

    def summary(self) -> str:
        full = [us for generation, us in self.pauses if generation == 2]
        longest = max((us for _, us in self.pauses), default=0.0)
        return f"{len(self.pauses)} collections ({len(full)} full), longest {longest:.0f} us"


def percentiles(values: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98], max(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--load", default=None,
                        help="plugins to load, comma-separated (default: all installed but llm_judge)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    calls = make_calls(args.calls, args.seed)
    with tempfile.TemporaryDirectory(prefix="trainkit-collect-bench-") as folder:
        config = Path(folder) / "trainkit.toml"
        config.write_text(SETTINGS, encoding="utf-8")
        env = {"TRAINKIT_DISABLE_PLUGINS": "llm_judge"} if args.load is None else {"TRAINKIT_LOAD_PLUGINS": args.load}
        with tk.open(settings=tk.load_settings(config, env=env)) as kit:
            checkers = sorted(name for name, info in kit.pm.infos.items()
                              if info.status == "loaded" and {"validate", "score"} & set(info.hooks))
            for n in range(10):  # start and warm the writer (not measured, another task)
                kit.collect("warmup", {"question": f"warm {n}"}, {"answer": "a"})
            kit.flush()

            gc.collect()
            baseline_call = time_calls(empty, calls)
            baseline_put = time_puts(calls)
            gc.collect()
            pauses = GcPauses()
            gc.callbacks.append(pauses)
            pauses.active = True
            collected = time_calls(kit.collect, calls)
            pauses.active = False
            gc.callbacks.remove(pauses)
            started = time.perf_counter()
            flushed = kit.flush()
            flush_seconds = time.perf_counter() - started
            stored = kit.count(task=TASK)
            stats = kit.collection.stats.to_dict()

    rows = [("empty function call", baseline_call), ("queue.put_nowait", baseline_put), ("kit.collect", collected)]
    print(f"kit.collect per-call latency: {args.calls} calls, writer running against SQLite "
          f"(batch {kit.settings.batch_size}; validating/scoring plugins: {', '.join(checkers) or 'none'})")
    print(f"{'':24}{'p50 us':>10}{'p99 us':>10}{'max us':>11}")
    figures = {}
    for name, values in rows:
        figures[name] = percentiles(values)
        p50, p99, top = figures[name]
        print(f"{name:24}{p50:10.2f}{p99:10.2f}{top:11.1f}")
    for base in ("empty function call", "queue.put_nowait"):
        ratio = [c / b if b else float("inf") for c, b in zip(figures["kit.collect"], figures[base], strict=True)]
        print(f"{'collect / ' + base:36} p50 {ratio[0]:6.1f}x   p99 {ratio[1]:6.1f}x   max {ratio[2]:7.1f}x")
    print(f"garbage collector during the kit.collect calls: {pauses.summary()}")
    print(f"kit.flush() after the last call returned {flushed} in {flush_seconds:.3f} s")
    print(f"stored {stored} of {args.calls} collected examples; collector stats: {stats}")
    if stored != args.calls:
        print(f"MISMATCH: {args.calls} calls but {stored} examples stored", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
