"""Synthesis throughput: what the template strategy adds on top of intake, and LM strategies at concurrency.

In one run, each into a fresh SQLite store with the built-in plugins (validators, near-duplicates, scorers):

(a) baseline: `kit.add_many` of the examples the template strategy makes (made beforehand, so this is intake
    alone);
(b) `kit.synthesize(task, "template", count)`: the same examples, drawn, checked by computation and sent
    through intake; the ratio b/a is the strategy's own cost;
(c) `paraphrase` of `--lm-count` seeds against the loopback OpenAI-compatible server answering after
    `--latency` seconds, at concurrency 1 (baseline) and at `--concurrency`; the ratio is the speed-up.

Printed: wall times, examples per second, ratios. DSPy's cache is off.

    python benchmarks/synthesis.py [--count 1300] [--lm-count 48] [--concurrency 16] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import dspy_trainkit as tk
from dspy_trainkit.testing import OpenAIServer, dspy_reply, input_fields

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "problem_generation" / "trainkit.toml"
KEY = "TRAINKIT_BENCH_KEY"


def project(root: Path, name: str, extra: str = "") -> Path:
    folder = root / name
    folder.mkdir()
    text = EXAMPLE.read_text(encoding="utf-8") + "\n" + extra
    (folder / "trainkit.toml").write_text(text, encoding="utf-8")
    return folder / "trainkit.toml"


def template_runs(root: Path, count: int) -> tuple[float, float]:
    with tk.open(config=project(root, "made")) as kit:  # the records the strategy makes, made once, stored
        kit.synthesize("problems", "template", count, seed=1)
        records = [{k: v for k, v in ex.to_dict().items() if k in ("task", "inputs", "outputs", "domain", "topic",
                                                                     "difficulty", "source", "metadata")}
                   for ex in kit.examples(task="problems")]
    with tk.open(config=project(root, "intake")) as kit:
        started = time.perf_counter()
        report = kit.add_many(records)
        intake = time.perf_counter() - started
        assert report.stored == len(records)
    with tk.open(config=project(root, "template")) as kit:
        started = time.perf_counter()
        result = kit.synthesize("problems", "template", count, seed=1)
        synthesis = time.perf_counter() - started
        assert result.made == count
    return intake, synthesis


def responder():
    numbers = itertools.count(1)
    lock = threading.Lock()

    def respond(body):
        fields = input_fields(body)
        with lock:
            n = next(numbers)
        return dspy_reply({"problem": f"Reworded {n}: {fields.get('original_problem', '')[:60]} (form {n * 13})",
                           "solution": f"Worked again for form {n * 13}: {fields.get('original_solution', '')}",
                           "answer": fields.get("original_answer", "0")})

    return respond


def lm_run(root: Path, name: str, server: OpenAIServer, concurrency: int, count: int) -> tuple[float, int]:
    extra = (f'[lm.generation]\nmodel = "openai/test-model"\napi_base = "{server.url}"\napi_key_env = "{KEY}"\n'
             f"cache = false\ntimeout = 30\nretries = 0\nconcurrency = {concurrency}\n")
    with tk.open(config=project(root, name, extra)) as kit:
        kit.synthesize("problems", "template", count, seed=2)  # the seeds
        started = time.perf_counter()
        report = kit.synthesize("problems", "paraphrase", count, seed=1, check_lm=False)
        elapsed = time.perf_counter() - started
    return elapsed, report.made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1300)
    parser.add_argument("--lm-count", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    os.environ.setdefault(KEY, "bench")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")
    root = Path(tempfile.mkdtemp(prefix="tk-bench-synthesis-"))
    try:
        intake, synthesis = template_runs(root, args.count)
        print(f"(a) intake alone, {args.count} template examples:   {intake:6.2f} s  "
              f"{args.count / intake:8.0f} ex/s")
        print(f"(b) synthesize template, {args.count} examples:     {synthesis:6.2f} s  "
              f"{args.count / synthesis:8.0f} ex/s   b/a = {synthesis / intake:.2f}")
        with OpenAIServer(responder(), latency=args.latency) as server:
            one, made_one = lm_run(root, "lm1", server, 1, args.lm_count)
            many, made_many = lm_run(root, "lmN", server, args.concurrency, args.lm_count)
        print(f"(c) paraphrase {made_one} at concurrency 1, {args.latency:g} s latency: {one:6.2f} s")
        print(f"    paraphrase {made_many} at concurrency {args.concurrency}:              {many:6.2f} s   "
              f"speed-up = {one / many:.1f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
