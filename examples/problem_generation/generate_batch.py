"""Generate practice problems for every (domain, topic, difficulty) cell of the `problems` task, and collect
them with trainkit as the pipeline runs.

    python generate_batch.py --model openai/gpt-4o-mini                    # OPENAI_API_KEY from the environment
    python generate_batch.py --model ollama_chat/llama3.2 --api-base http://localhost:11434
    python generate_batch.py --loopback                                      # no model: a scripted local server

The grid comes from the task settings in trainkit.toml (domains, their topics and difficulties). The pipeline
code does not change for collection: a DSPy callback added with `kit.add_dspy_callback(...)` (beside any other
callbacks, MLflow's autolog for instance) hands
every successful `ProblemGenerator` call to trainkit, which validates, scores, deduplicates and stores it in
the background. A second run with the same outputs adds no duplicates.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")  # never fetch model metadata at run time

import dspy  # noqa: E402
from pipeline import ProblemGenerator  # noqa: E402

import dspy_trainkit as tk  # noqa: E402

HERE = Path(__file__).resolve().parent
TASK = "problems"
log = logging.getLogger("generate_batch")

Cell = tuple[str, str, str]


def grid(settings: tk.TaskSettings, topics: Sequence[str] | None = None) -> list[Cell]:
    """(domain, topic, difficulty) for every domain of the task, with the domain's own topics and difficulties
    where it sets them; `topics` keeps only those topics."""
    if not settings.domains:
        raise tk.ConfigError(f"task {settings.name!r} lists no domains: add [tasks.{settings.name}.domains.NAME] "
                             "tables to trainkit.toml")
    cells = []
    for domain, override in settings.domains.items():
        for topic in override.topics or settings.topics:
            if topics and topic not in topics:
                continue
            for difficulty in override.difficulties or settings.difficulties:
                cells.append((domain, topic, difficulty))
    return cells


def generate(generator: dspy.Module, cells: Iterable[Cell], *, per_cell: int = 1, lm: Any = None) -> dict[str, Any]:
    """Run `generator` `per_cell` times for every cell. Failures (an LM error, an answer DSPy cannot parse) are
    counted and skipped: the callback records only successful calls. Returns the counts."""
    calls = succeeded = 0
    failures: collections.Counter[str] = collections.Counter()
    for domain, topic, difficulty in cells:
        for attempt in range(per_cell):
            calls += 1
            # further attempts sample again (an LM at temperature 0 would repeat itself; trainkit drops repeats)
            context = dspy.context(lm=lm.copy(rollout_id=attempt, temperature=1.0)) if attempt and lm else None
            try:
                if context is None:
                    generator(domain=domain, topic=topic, difficulty=difficulty)
                else:
                    with context:
                        generator(domain=domain, topic=topic, difficulty=difficulty)
                succeeded += 1
            except Exception as exc:  # one bad answer must not stop the batch
                failures[type(exc).__name__] += 1
                log.warning("%s / %s / %s: %s: %s", domain, topic, difficulty, type(exc).__name__,
                            str(exc).splitlines()[0] if str(exc) else "")
    return {"calls": calls, "succeeded": succeeded, "failed": sum(failures.values()), "failures": dict(failures)}


def run(config: str | Path, lm: Any, *, per_cell: int = 1, topics: Sequence[str] | None = None,
        reasoning: bool = False) -> dict[str, Any]:
    """Open the project of `config`, generate and collect the grid with `lm`, wait until everything collected
    is stored, and return a summary (generation counts, the collector's stats, the store's counts)."""
    with tk.open(config=config) as kit:
        cells = grid(kit.settings.task(TASK), topics)
        dspy.configure(lm=lm)
        callback = kit.add_dspy_callback(task=TASK, module=ProblemGenerator)
        try:
            summary = generate(ProblemGenerator(reasoning=reasoning), cells, per_cell=per_cell, lm=lm)
        finally:  # take out ours only: other libraries' callbacks stay
            dspy.configure(callbacks=[c for c in dspy.settings.callbacks if c is not callback])
        kit.flush()
        summary["cells"] = len(cells)
        summary["collection"] = kit.collection.stats.to_dict()
        summary["store"] = kit.stats(task=TASK)
        summary["store_url"] = kit.settings.store_url
    return summary


# ---- a scripted local model, for trying the example without one ---------------------------------------------

def demo_responder(body: dict[str, Any]) -> Any:
    """Answers like a model would, deterministically per cell: a small arithmetic problem."""
    from dspy_trainkit.testing import dspy_reply, input_fields

    fields = input_fields(body)
    seed = sum(map(ord, "".join(fields.values()))) + len(body.get("messages", []))
    scale = {"easy": 1, "medium": 7, "hard": 31}.get(fields.get("difficulty", ""), 3)
    a, b = 2 + seed % 17 * scale, 3 + seed % 11 * scale
    return dspy_reply({
        "problem": f"({fields.get('domain')}, {fields.get('topic')}) A box holds {a} red and {b} blue marbles. "
                   "How many marbles are in the box?",
        "solution": f"Add the two colours: {a} + {b} = {a + b}.",
        "answer": str(a + b),
    })


# ---- command line -------------------------------------------------------------------------------------------

def make_lm(args: argparse.Namespace) -> Any:
    api_key = os.environ.get(args.api_key_env)
    if api_key is None and args.api_base is None and args.model.startswith("openai/"):
        raise tk.ConfigError(f"${args.api_key_env} is not set: export your API key, or name another variable "
                             "with --api-key-env")
    return dspy.LM(args.model, api_base=args.api_base, api_key=api_key or "unused", cache=args.cache,
                   num_retries=args.retries, temperature=args.temperature, max_tokens=args.max_tokens)


def print_summary(summary: dict[str, Any]) -> None:
    c, s = summary["collection"], summary["store"]
    print(f"cells: {summary['cells']}; calls: {summary['calls']} ({summary['succeeded']} succeeded, "
          f"{summary['failed']} failed{': ' + json.dumps(summary['failures']) if summary['failures'] else ''})")
    print(f"collected this run: {c['submitted']} submitted, {c['written']} stored "
          f"(accepted {c['accepted']}, candidates {c['candidates']}, rejected {c['rejected']}), "
          f"{c['duplicates']} duplicates, {c['invalid']} invalid, {c['spilled']} spilled, "
          f"{c['sampled_out'] + c['disabled']} not sampled")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(s["by_status"].items())) or "empty"
    print(f"store {summary['store_url']}: {s['total']} {TASK} examples ({statuses})")
    for cell in s["by_cell"]:
        print(f"  {cell['domain']} / {cell['topic']} / {cell['difficulty']}: {cell['count']}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(HERE / "trainkit.toml"), help="trainkit.toml (default: beside this)")
    parser.add_argument("--model", default="openai/gpt-4o-mini",
                        help="a dspy.LM model string: openai/..., anthropic/..., ollama_chat/..., hosted_vllm/...")
    parser.add_argument("--api-base", default=None, help="the server's base URL (Ollama, vLLM, llama.cpp, a proxy)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable with the API key")
    parser.add_argument("--per-cell", type=int, default=1, help="problems per (domain, topic, difficulty)")
    parser.add_argument("--topics", default=None, help="only these topics, comma-separated")
    parser.add_argument("--reasoning", action="store_true", help="use ChainOfThought")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--retries", type=int, default=3, help="retries of transient LM errors (429, 5xx)")
    parser.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True, help="DSPy's LM cache")
    parser.add_argument("--loopback", action="store_true",
                        help="no model: answer from a scripted local server (dspy_trainkit.testing)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.per_cell < 1:
        parser.error("--per-cell must be at least 1")
    args.topics = [t.strip() for t in args.topics.split(",") if t.strip()] if args.topics else None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    server = None
    try:
        if args.loopback:
            from dspy_trainkit.testing import OpenAIServer

            server = OpenAIServer(demo_responder).start()
            args.model, args.api_base, args.cache = f"openai/{server.model}", server.url, False
        summary = run(args.config, make_lm(args), per_cell=args.per_cell, topics=args.topics,
                      reasoning=args.reasoning)
    except tk.TrainkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0 if summary["succeeded"] or not summary["calls"] else 1


if __name__ == "__main__":
    sys.exit(main())
