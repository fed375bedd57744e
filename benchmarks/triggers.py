"""What re-optimization triggers cost: the `triggers` plugin on the write path, and one trigger evaluation.

1. Intake with and without the `triggers` plugin (its `on_data_changed` marks changes for waiting builders):
   `kit.add_many` of N examples into a fresh SQLite store, interleaved rounds, median time of each and the
   ratio plugin-on / plugin-off. The claim to check: marking never slows the writer.
2. One trigger evaluation (`triggers.observe` + `evaluate`) on a task with N accepted examples whose last run's
   snapshot holds 80% of them, against the baseline of one `kit.count(task=..., status="accepted")` measured
   in the same run: cold (first evaluation: the snapshot's ids are read, and with `quality_shift` on also its
   members' content for the mean quality) and warm (snapshot facts cached; the accepted ids are still read).

    python benchmarks/triggers.py [--n 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import dspy_trainkit as tk
from dspy_trainkit import load_settings
from dspy_trainkit.optimization import triggers

QUALITY = ("lengths", "consistency", "pii", "neardup", "coherence", "relevance", "accuracy", "llm_judge")


def records(n: int, start: int = 0) -> list[dict]:
    return [{"task": "qa", "inputs": {"question": f"question number {i}"}, "outputs": {"answer": f"answer {i}"},
             "domain": "math", "topic": f"t{i % 7}", "difficulty": ("easy", "hard")[i % 2]}
            for i in range(start, start + n)]


def open_kit(folder: Path, name: str, *, triggers_on: bool) -> tk.Kit:
    disable = QUALITY if triggers_on else (*QUALITY, "triggers")
    return tk.open(f"sqlite:///{folder / name}", settings=load_settings(env={}, cwd=folder), disable=disable)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def intake(n: int, rounds: int, folder: Path) -> None:
    data = records(n)
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for on in (False, True):  # interleaved, so machine noise hits both alike
            with open_kit(folder, f"intake-{r}-{on}.db", triggers_on=on) as kit:
                times[on].append(timed(lambda kit=kit: kit.add_many(data)))
                if on:
                    assert triggers.change_marks(kit).version > 0, "the plugin did not mark anything"
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"intake of {n:,} examples, median of {rounds} rounds:")
    print(f"  triggers plugin off  {off:7.3f} s  ({n / off:,.0f} examples/s)")
    print(f"  triggers plugin on   {on:7.3f} s  ({n / on:,.0f} examples/s)")
    print(f"  ratio on/off         {on / off:7.3f}")


def evaluation(n: int, rounds: int, folder: Path) -> None:
    with open_kit(folder, "evaluate.db", triggers_on=True) as kit:
        kit.add_many(records(int(n * 0.8)))
        kit.snapshot("base", task="qa")
        kit.add_many(records(n - int(n * 0.8), start=int(n * 0.8)))
        settings = triggers.TriggerSettings(new_accepted=100, growth=0.1, quality_shift=0.05, every=86400)

        def evaluate(quality: bool = True) -> None:
            obs = triggers.observe(kit, "qa", now=time.time(), ready=True, last_run_id="r", last_run_at=0.0,
                                   last_snapshot="base", quality=quality)
            assert obs.new_accepted == n - int(n * 0.8), obs
            triggers.evaluate(settings, obs)

        cold_ids = timed(lambda: evaluate(quality=False))  # reads the snapshot's ids only
        cold = timed(evaluate) + cold_ids  # ... and then its members' content for the mean quality
        warm = statistics.median(timed(evaluate) for _ in range(rounds))
        count = statistics.median(timed(lambda: kit.count(task="qa", status="accepted")) for _ in range(rounds))
    print(f"trigger evaluation, {n:,} accepted examples, snapshot of {int(n * 0.8):,}:")
    print(f"  baseline: one accepted count  {count * 1000:8.1f} ms")
    print(f"  evaluation, cold, no quality  {cold_ids * 1000:8.1f} ms  ({cold_ids / count:,.1f} x the count)")
    print(f"  evaluation, cold              {cold * 1000:8.1f} ms  ({cold / count:,.1f} x the count)")
    print(f"  evaluation, warm              {warm * 1000:8.1f} ms  ({warm / count:,.1f} x the count)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "trainkit.toml").write_text("")
        intake(args.n, args.rounds, folder)
        evaluation(args.n, args.rounds, folder)


if __name__ == "__main__":
    main()
