"""A tiny DSPy program and metric for the incremental-building tests (imported by path in CLI tests).

`QA` answers through its predictor (a DummyLM in tests), except that a demo whose answer is "poison" makes it
answer wrongly: adding poisoned accepted examples therefore makes a challenger that is worse than the champion
on any dev set, while the champion (saved without poisoned demos) keeps its score.
"""

from __future__ import annotations

import dspy


class QA(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.answer = dspy.Predict("question -> answer")

    def forward(self, question: str) -> dspy.Prediction:
        prediction = self.answer(question=question)
        if any(getattr(demo, "answer", None) == "poison" for demo in self.answer.demos):
            return dspy.Prediction(answer="wrong")
        return prediction


def exact(example, prediction, trace=None) -> float:
    return float(example.answer == prediction.answer)


def record(i: int, *, poisoned: bool = False, **labels) -> dict:
    """Example i of task "qa" (fixed-width numbers: DummyLM matches keys as substrings)."""
    if poisoned:
        return {"task": "qa", "inputs": {"question": f"poisoned {i:03d}"}, "outputs": {"answer": "poison"},
                **labels}
    return {"task": "qa", "inputs": {"question": f"question {i:03d}"}, "outputs": {"answer": f"answer {i:03d}"},
            **labels}


def dummy_lm(n: int = 300):
    """A DummyLM that answers every question of `record` correctly."""
    from dspy.utils import DummyLM

    answers = {f"question {i:03d}": {"answer": f"answer {i:03d}"} for i in range(n)}
    answers.update({f"poisoned {i:03d}": {"answer": "poison"} for i in range(n)})
    return DummyLM(answers)
