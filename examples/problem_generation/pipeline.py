"""The DSPy program of the example: practice problems per (domain, topic, difficulty).

`ProblemGenerator` is an ordinary DSPy module; nothing in it knows about trainkit. `generate_batch.py` runs it
over a grid of cells and collects its outputs with a DSPy callback.
"""

from __future__ import annotations

import dspy


class GenerateProblem(dspy.Signature):
    """Write one self-contained practice problem for a student, with a worked solution and the final answer.

    The problem must be about the given topic of the given domain and suit the difficulty level. The solution
    works the problem step by step and ends with exactly the value given as the answer.
    """

    domain: str = dspy.InputField(desc="the subject area, e.g. 'math' or 'physics'")
    topic: str = dspy.InputField(desc="the topic within the domain, e.g. 'fractions' or 'kinematics'")
    difficulty: str = dspy.InputField(desc="'easy', 'medium' or 'hard', for a secondary-school student")
    problem: str = dspy.OutputField(desc="the problem statement, answerable without outside material")
    solution: str = dspy.OutputField(desc="a worked solution, step by step, that reaches the answer")
    answer: str = dspy.OutputField(desc="the final answer alone: a number (with its unit) or a short expression")


class ProblemGenerator(dspy.Module):
    """Generates one practice problem with its solution and answer.

    `reasoning=True` uses ChainOfThought (the LM thinks before writing the fields); the returned prediction
    holds only `problem`, `solution` and `answer` either way, which is what the `problems` task stores.
    """

    def __init__(self, *, reasoning: bool = False) -> None:
        super().__init__()
        self.generate = (dspy.ChainOfThought if reasoning else dspy.Predict)(GenerateProblem)

    def forward(self, domain: str, topic: str, difficulty: str) -> dspy.Prediction:
        result = self.generate(domain=domain, topic=topic, difficulty=difficulty)
        return dspy.Prediction(problem=result.problem, solution=result.solution, answer=result.answer)
