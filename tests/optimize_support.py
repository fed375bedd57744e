"""Support for the readiness and optimization tests: the example problem task in a temporary project, data for
it, loopback-server answers of known quality, and an isolated DSPy cache."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers import QUALITY_PLUGINS

import dspy_trainkit as tk
from dspy_trainkit.testing import dspy_reply, input_fields

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "problem_generation"
TASK = "problems"
PROGRAM = "pipeline:ProblemGenerator"
METRIC = "metrics:problem_quality"


def make_project(folder: Path, store_url: str | None = None, extra: str = "") -> Path:
    """The example's pipeline, metric and trainkit.toml in `folder` (store URL replaced, `extra` TOML appended);
    returns the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("pipeline.py", "metrics.py"):
        shutil.copy(EXAMPLE_DIR / name, folder / name)
    text = (EXAMPLE_DIR / "trainkit.toml").read_text(encoding="utf-8")
    if store_url is not None:
        text = text.replace('url = "sqlite:///trainkit.db"', f'url = "{store_url}"')
    (folder / "trainkit.toml").write_text(text + "\n" + extra, encoding="utf-8")
    return folder / "trainkit.toml"


def open_project(config: Path) -> tk.Kit:
    """The project's kit with only basic_checks judging, so every well-formed record is accepted."""
    return tk.open(config=config, disable=QUALITY_PLUGINS)


def problem(domain: str, topic: str, difficulty: str, n: int) -> dict[str, Any]:
    """A made-up problem for a cell, distinct per n, whose solution reaches its answer."""
    a, b = n + 2, 3 * n + 1
    return {"task": TASK, "domain": domain, "topic": topic, "difficulty": difficulty,
            "inputs": {"domain": domain, "topic": topic, "difficulty": difficulty},
            "outputs": {"problem": f"Practice {n} on {topic}: a shop sells {a} boxes with {b} items each. How "
                                   "many items are there in total?",
                        "solution": f"Multiply the boxes by the items per box: {a} x {b}. The total is {a * b}",
                        "answer": str(a * b)}}


def cell_records(cells: dict[tuple[str, str, str], int], start: int = 0) -> list[dict[str, Any]]:
    records, n = [], start
    for (domain, topic, difficulty), count in cells.items():
        for _ in range(count):
            n += 1
            records.append(problem(domain, topic, difficulty, n))
    return records


def import_generated(kit: tk.Kit, folder: Path, records: list[dict[str, Any]], name: str = "generated.jsonl") -> int:
    """Write `records` as a JSONL file (as a generator would) and import it through intake; returns accepted."""
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    kit.import_files([path])
    return kit.count(task=TASK, status="accepted")


def good_answer(body: dict[str, Any]) -> Any:
    """A usable problem for the requested cell: the solution's last sentence reaches the answer (metric 1.0)."""
    fields = input_fields(body)
    topic = fields.get("topic", "numbers")
    return dspy_reply({"problem": f"A class studies {topic}. A box holds 6 rows of 7 pencils. How many pencils "
                                  "are in the box?",
                       "solution": "There are 6 rows of 7 pencils, so multiply 6 by 7. The box holds 42",
                       "answer": "42"})


def bad_answer(body: dict[str, Any]) -> Any:
    """A problem whose solution does not reach its answer (metric 2/3, and never a bootstrapped demo)."""
    return dspy_reply({"problem": "A box holds 6 rows of 7 pencils. How many pencils are in the box?",
                       "solution": "Multiply 6 by 7. The box holds 42", "answer": "41"})


@contextlib.contextmanager
def dspy_cache(folder: Path | None = None) -> Iterator[None]:
    """DSPy's LM cache switched off (folder None) or on disk in `folder`, restored afterwards."""
    import dspy

    had = "cache" in vars(dspy)
    old = vars(dspy).get("cache")
    if folder is None:
        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    else:
        dspy.configure_cache(enable_disk_cache=True, enable_memory_cache=False, disk_cache_dir=str(folder))
    try:
        yield
    finally:
        if had:
            dspy.cache = old
        else:
            with contextlib.suppress(AttributeError):
                del dspy.cache
