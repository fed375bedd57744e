"""Which examples help? A worked example of `trainkit value` on data with planted mislabels, fully offline.

It makes a project in PROJECT_DIR (default ./value-demo) with a `sums` task ("question -> answer") of 60
examples, 10 of them mislabeled (the stored answer is off by 7), serves a simulated few-shot learner on
127.0.0.1 (dspy_trainkit.testing.FewShotLearner: right more often after right demonstrations, much less often
after wrong ones), runs one random-search optimization against it, and values the examples. It prints how the
planted examples rank (the AUC: the chance a planted example is valued below a clean one; 0.5 is chance).
Then run `trainkit value --task sums --stored` in PROJECT_DIR to see the stored values.

    python examples/effectiveness/run.py [PROJECT_DIR]
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import re
import sys
from pathlib import Path

import dspy_trainkit as tk
from dspy_trainkit.testing import FewShotLearner, OpenAIServer, make_lm

TOML = """[tasks.sums]
signature = "question -> answer"

[tasks.sums.optimize]
optimizer = "random-search"
min_examples = { random-search = 20 }
num_candidates = 40
max_bootstrapped_demos = 1
max_labeled_demos = 6
val_fraction = 0.25
dev_fraction = 0.1
seed = 3
"""
PROGRAM = '''import dspy


def program():
    return dspy.Predict("question -> answer")


def exact(example, prediction, trace=None):
    return float(str(getattr(prediction, "answer", "")).strip() == str(example.answer).strip())
'''
PLANTED = set(range(0, 60, 6))


def truth(inputs: dict[str, str]) -> dict[str, str]:
    """The right answer to a question "Item N: what is A + B?"."""
    a, b = map(int, re.findall(r"\d+", inputs["question"])[-2:])
    return {"answer": str(a + b)}


def records(count: int, planted: set[int]) -> list[dict]:
    """`count` sums questions; those numbered in `planted` are stored with a wrong answer (off by 7)."""
    rng = random.Random(7)
    made = []
    for n in range(count):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        made.append({"task": "sums", "inputs": {"question": f"Item {n}: what is {a} + {b}?"},
                     "outputs": {"answer": str(a + b + (7 if n in planted else 0))}, "metadata": {"n": n}})
    return made


def main() -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")  # DSPy's evaluation progress bars
    logging.getLogger("dspy").setLevel(logging.WARNING)
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "value-demo").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainkit.toml").write_text(TOML, encoding="utf-8")
    (folder / "sums_program.py").write_text(PROGRAM, encoding="utf-8")
    sys.path.insert(0, str(folder))
    quality = ["lengths", "consistency", "pii", "neardup", "coherence", "relevance", "accuracy", "llm_judge"]
    with OpenAIServer(FewShotLearner(truth, base=0.55, gain=0.04, harm=0.3)) as server, \
            tk.open(config=folder / "trainkit.toml", disable=quality) as kit:
        kit.add_many(records(60, PLANTED))
        with contextlib.redirect_stdout(io.StringIO()):  # DSPy's optimizers print their progress
            run = kit.optimize("sums", program="sums_program:program", metric="sums_program:exact",
                               lm=make_lm(server))
        print(f"run {run.id[-8:]}: {run.status}, {len(run.candidates)} candidates, dev score {run.score}")
        report = kit.value("sums")
        numbers = {kit.get(v.example_id).metadata["n"]: v.value for v in report.values}
        bad = [v for n, v in numbers.items() if n in PLANTED]
        good = [v for n, v in numbers.items() if n not in PLANTED]
        auc = sum(1.0 if b < g else 0.5 if b == g else 0.0 for b in bad for g in good) / (len(bad) * len(good))
        lowest = sorted(numbers, key=numbers.get)[:len(bad)]
        print(f"valued {len(report.values)} examples; planted mislabels among them: {len(bad)}")
        print(f"AUC (planted valued below clean): {auc:.3f}")
        print(f"planted among the {len(bad)} lowest: {len(set(lowest) & PLANTED)}")


if __name__ == "__main__":
    main()
