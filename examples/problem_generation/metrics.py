"""The metric `trainkit optimize` uses for the example's `problems` task.

A generated problem has no single right answer to compare with, so the metric checks what makes a generated
problem usable: a real problem statement, an answer, and a worked solution that reaches that answer. During
bootstrapping (`trace` is set) DSPy wants a yes/no: only a problem passing every check becomes a demo.

    trainkit optimize --task problems --program pipeline:ProblemGenerator --metric metrics:problem_quality
"""

from __future__ import annotations

from typing import Any


def _text(prediction: Any, name: str) -> str:
    return " ".join(str(getattr(prediction, name, "") or "").split())


def problem_quality(example: Any, prediction: Any, trace: Any = None) -> float | bool:
    """Share of checks passed (0..1): statement of 20+ characters, a non-empty answer, a solution that ends
    with (contains, in its last sentence) the answer."""
    problem, solution, answer = (_text(prediction, name) for name in ("problem", "solution", "answer"))
    last = solution.rstrip(".").rsplit(". ", 1)[-1] if solution else ""
    checks = [len(problem) >= 20, bool(answer), bool(answer) and answer.lower() in last.lower()]
    score = sum(checks) / len(checks)
    return score == 1.0 if trace is not None else score
