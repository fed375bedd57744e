"""Bootstrap throughput against an LM with real latency, and what a re-run of a finished plan costs.

Against the loopback OpenAI-compatible server (`dspy_trainkit.testing.OpenAIServer`) answering every request
after `--latency` seconds (default 0.2), in one run:

(a) baseline: `kit.bootstrap` of `--count` examples (default 200) at concurrency 1, into a fresh store;
(b) the same plan at concurrency `--concurrency` (default 16), into another fresh store;
(c) (b)'s plan bootstrapped again: it must make 0 LM calls and store nothing.

Every run goes through the whole path (claims, DSPy program, LMCalls, intake with the built-in checks, SQLite)
and DSPy's cache is off. Printed: wall time, examples per second, LM requests seen by the server and by
LMCalls, and the speed-up of (b) over (a). The ideal speed-up is the concurrency; the gap is the per-example
work done outside the LM wait (DSPy formatting and parsing, intake, store writes, under the GIL).

    python benchmarks/generation.py [--count 200] [--concurrency 16] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import dspy_trainkit as tk
from dspy_trainkit.settings import load_settings
from dspy_trainkit.testing import OpenAIServer, dspy_reply, input_fields

KEY = "TRAINKIT_BENCH_KEY"
TOPICS = 10
LEVELS = ("easy", "medium")


def settings_text(api_base: str, concurrency: int, per_cell: int) -> str:
    topics = ", ".join(f'"topic{i}"' for i in range(TOPICS))
    levels = ", ".join(f'"{level}"' for level in LEVELS)
    return f"""
[store]
url = "sqlite:///trainkit.db"

[lm.generation]
model = "openai/test-model"
api_base = "{api_base}"
api_key_env = "{KEY}"
cache = false
timeout = 30
concurrency = {concurrency}

[tasks.problems]
signature = "domain, topic, difficulty -> problem, solution, answer"
topics = [{topics}]
difficulties = [{levels}]
per_cell = {per_cell}

[tasks.problems.domains.math]
"""


def responder() -> Any:
    numbers = itertools.count(1)
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> Any:
        with lock:
            n = next(numbers)
        fields = input_fields(body)
        return dspy_reply({"problem": f"Problem {n}: a {fields.get('difficulty')} question on {fields.get('topic')}",
                           "solution": f"Worked solution {n}", "answer": str(n)})

    return respond


def run(server: OpenAIServer, folder: Path, concurrency: int, per_cell: int) -> dict[str, Any]:
    (folder / "trainkit.toml").write_text(settings_text(server.url, concurrency, per_cell))
    before = server.counts["requests"]
    with tk.open(settings=load_settings(cwd=folder)) as kit:
        started = time.perf_counter()
        report = kit.bootstrap("problems", check=False)
        seconds = time.perf_counter() - started
        stored = kit.count(task="problems")
    return {"seconds": seconds, "made": report.made, "stored": stored, "complete": report.complete,
            "server_requests": server.counts["requests"] - before, "lm_calls": report.lm["calls"],
            "tokens": report.lm["total_tokens"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="examples to generate per run (multiple of 20)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server waits per request")
    args = parser.parse_args()
    cells = TOPICS * len(LEVELS)
    if args.count % cells:
        parser.error(f"--count must be a multiple of {cells} (the plan's cells)")
    per_cell = args.count // cells
    os.environ[KEY] = "benchmark-key"
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")
    print(f"bootstrap of {args.count} examples ({cells} cells x {per_cell}), server latency "
          f"{args.latency * 1000:.0f} ms per request, DSPy cache off, store SQLite")
    with OpenAIServer(responder(), latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp, "c1"), Path(tmp, "cN")
        one.mkdir()
        many.mkdir()
        rows = [("(a) concurrency 1", run(server, one, 1, per_cell)),
                (f"(b) concurrency {args.concurrency}", run(server, many, args.concurrency, per_cell)),
                ("(c) re-run of (b)'s plan", run(server, many, args.concurrency, per_cell))]
    print(f"{'run':<26} {'seconds':>8} {'examples/s':>11} {'made':>5} {'stored':>7} {'LM calls':>9} "
          f"{'server requests':>16} {'tokens':>7}")
    for name, r in rows:
        rate = r["made"] / r["seconds"] if r["made"] else 0.0
        print(f"{name:<26} {r['seconds']:>8.2f} {rate:>11.1f} {r['made']:>5} {r['stored']:>7} {r['lm_calls']:>9} "
              f"{r['server_requests']:>16} {r['tokens']:>7}")
    a, b, c = (r for _, r in rows)
    speedup = a["seconds"] / b["seconds"]
    print(f"speed-up of (b) over (a): {speedup:.1f}x (target >= 10x; ideal {args.concurrency}x)")
    print(f"re-run of a finished plan: {c['lm_calls']} LM calls, {c['server_requests']} server requests, "
          f"{c['made']} examples made")
    ok = (a["complete"] and b["complete"] and a["stored"] == b["stored"] == args.count and c["lm_calls"] == 0
          and c["server_requests"] == 0 and c["made"] == 0)
    if not ok:
        print("FAILED: a run did not complete, stored the wrong number, or the re-run called the LM", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
