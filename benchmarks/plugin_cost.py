"""What each data-path plugin adds to intake, per record, against the same intake without it, in one run.

`kit.add_many` of `--rows` realistic practice problems (problem_texts.py, ~55 words each, a few near-copies)
into a fresh SQLite store, with these plugin sets:
- baseline: every plugin that acts on each record switched off (validators, scorers, neardup, triggers), so
  intake is normalize, hash and exact dedup, status, store and the audit event;
- baseline + one plugin, for each of them (`basic_checks`, `lengths`, `consistency`, `pii`, `neardup`,
  `coherence`, `relevance`, `accuracy`, `triggers`); `llm_judge` calls an LM per example and is left out;
- the defaults: every built-in plugin as installed (llm_judge included: without `[lm.judging]` it scores
  nothing).
Configurations run in turn, round after round (`--rounds`, default 3), each into a fresh file; the table shows
the median microseconds per record of each, the cost of each plugin (its median minus the baseline's median)
and the ratio to the baseline. Plugins read their default settings, as on a fresh project: `relevance` and
`accuracy` do little until configured, and the figures say so.

    python benchmarks/plugin_cost.py [--rows 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from problem_texts import TASK, generate

PER_RECORD = ("basic_checks", "lengths", "consistency", "pii", "neardup", "coherence", "relevance", "accuracy",
              "triggers")
ALWAYS_OFF = ("llm_judge",)
SETTINGS_TOML = f'''default_task = "{TASK}"
[tasks.{TASK}]
signature = "domain, topic, difficulty -> problem, answer"
'''


def run(folder: Path, name: str, records: list[dict[str, Any]], disable: tuple[str, ...]) -> float:
    """Seconds `kit.add_many(records)` takes into a fresh store with `disable` switched off."""
    import dspy_trainkit as tk
    from dspy_trainkit.settings import load_settings

    config = folder / "trainkit.toml"
    config.write_text(SETTINGS_TOML, encoding="utf-8")
    db = folder / f"{name}.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with tk.open(f"sqlite:///{db}", settings=load_settings(config, env={}), disable=disable) as kit:
        gc.collect()
        start = time.perf_counter()
        report = kit.add_many(records, actor="benchmark")
        elapsed = time.perf_counter() - start
    if report.read != len(records):
        raise SystemExit(f"{name}: intake read {report.read} of {len(records)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    records, _ = generate(args.rows, planted=max(1, args.rows // 50), seed=7)
    configs: dict[str, tuple[str, ...]] = {"baseline": PER_RECORD + ALWAYS_OFF}
    configs.update({f"+ {p}": tuple(q for q in PER_RECORD if q != p) + ALWAYS_OFF for p in PER_RECORD})
    configs["defaults (all built-in plugins)"] = ()
    times: dict[str, list[float]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), "warmup", records[:200], ())  # imports and first-use setup out of the figures
        for round_no in range(args.rounds):
            for name, disable in configs.items():
                times[name].append(run(Path(tmp), f"r{round_no}", records, disable))
            print(f"round {round_no + 1} of {args.rounds} done", file=sys.stderr)
    per_record = {name: statistics.median(t) / args.rows * 1e6 for name, t in times.items()}
    base = per_record["baseline"]
    print(f"{args.rows} records, median of {args.rounds} alternating rounds, SQLite, Python {sys.version.split()[0]}")
    print(f"{'configuration':34} {'us/record':>10} {'plugin cost':>12} {'x baseline':>11}")
    for name, value in per_record.items():
        cost = "" if name == "baseline" else f"{value - base:+.1f}"
        print(f"{name:34} {value:10.1f} {cost:>12} {value / base:11.2f}")


if __name__ == "__main__":
    main()
