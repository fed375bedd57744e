"""What the dev-set cap (`[optimize] max_dev`) saves on a large task: LM calls and time of one optimize run.

The example problem task with N accepted examples (default 8,786, the store of the acceptance test) in a fresh
SQLite project, the program answering through the loopback OpenAI-compatible server (every answer passes the
metric). A champion is made first on another split (seed 1), so both measured runs score it again on their dev
set, as a run does after the data grew: three evaluations (unoptimized, compiled, champion) plus the compile.
Measured in one run: `max_dev = 0` (no cap, the baseline: every dev example the 20% split gives) and the default
cap, each with its expected LM calls from the dry run beside the requests the server really got.

    python benchmarks/optimize_cost.py [--n 8786]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import dspy_trainkit as tk
from dspy_trainkit.testing import OpenAIServer, dspy_reply, make_lm

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "problem_generation"
QUALITY = ("lengths", "consistency", "pii", "neardup", "coherence", "relevance", "accuracy", "llm_judge")
CELLS = [("math", t, d) for t in ("fractions", "percentages", "linear equations") for d in ("easy", "medium", "hard")] \
    + [("physics", t, d) for t in ("kinematics", "energy") for d in ("easy", "medium")]


def answer(_body: dict) -> object:
    return dspy_reply({"problem": "A box holds 6 rows of 7 pencils. How many pencils are in the box?",
                       "solution": "There are 6 rows of 7 pencils, so multiply 6 by 7. The box holds 42",
                       "answer": "42"})


def records(n: int) -> list[dict]:
    out = []
    for i in range(n):
        domain, topic, difficulty = CELLS[i % len(CELLS)]
        a, b = i + 2, 3 * i + 1
        out.append({"task": "problems", "domain": domain, "topic": topic, "difficulty": difficulty,
                    "inputs": {"domain": domain, "topic": topic, "difficulty": difficulty},
                    "outputs": {"problem": f"Practice {i}: a shop sells {a} boxes with {b} items each. How many "
                                           "items are there in total?",
                                "solution": f"Multiply the boxes by the items per box: {a} x {b}. The total is "
                                            f"{a * b}", "answer": str(a * b)}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8786)
    args = parser.parse_args()
    import dspy

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    with tempfile.TemporaryDirectory() as folder, OpenAIServer(answer) as server:
        project = Path(folder)
        for name in ("pipeline.py", "metrics.py", "trainkit.toml"):
            shutil.copy(EXAMPLE / name, project / name)
        data = project / "data.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in records(args.n)), encoding="utf-8")
        lm = make_lm(server)
        options = {"program": "pipeline:ProblemGenerator", "metric": "metrics:problem_quality", "lm": lm}
        with tk.open(config=project / "trainkit.toml", disable=QUALITY) as kit:
            kit.import_files([data])
            kit.optimize("problems", seed=1, **options)  # the champion, on another split
            rows = []
            for label, max_dev in (("no cap (max_dev = 0)", 0), ("default cap", None)):
                plan = kit.optimize("problems", max_dev=max_dev, dry_run=True, **options)
                before, started = server.counts["requests"], time.perf_counter()
                run = kit.optimize("problems", max_dev=max_dev, promote=False, **options)
                seconds = time.perf_counter() - started
                rows.append((label, len(run.dev_ids), plan.estimate.describe(), server.counts["requests"] - before,
                             seconds))
    for label, dev, said, calls, seconds in rows:
        print(f"{label}: {dev} dev examples, {calls} LM calls in {seconds:.1f} s; the dry run said {said}")
    (_, _, _, base_calls, base_s), (_, _, _, calls, s) = rows
    print(f"the default cap makes {base_calls / calls:.1f}x fewer LM calls and runs {base_s / s:.1f}x faster")


if __name__ == "__main__":
    main()
