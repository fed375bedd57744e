"""A simulated few-shot learner: an OpenAI-compatible responder whose accuracy rises with correct
demonstrations and falls with mislabeled ones, deterministic per prompt.

Valuation and recommendations need an LM whose response to data is known, so that a test can plant mislabeled
examples and check they are found. This responder answers a DSPy program's request by computing the right
answer (`truth(inputs)`), then deciding from the prompt alone whether to give it: with probability
`base + gain * correct_demos - harm * wrong_demos` (clipped to [floor, ceiling]), using a hash of the request as
its random number, so the same prompt always gets the same answer. A demonstration is wrong when its shown
outputs differ from `truth(its inputs)`.

    from dspy_trainkit.testing import OpenAIServer, make_lm
    from dspy_trainkit.testing.learner import FewShotLearner

    learner = FewShotLearner(lambda inputs: {"answer": str(eval_sum(inputs["question"]))})
    with OpenAIServer(learner) as server:
        lm = make_lm(server)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from .openai_server import demonstrations, dspy_reply, input_fields


class FewShotLearner:
    """The responder (call it with a request body); `seen` counts requests by number of wrong demos shown."""

    def __init__(self, truth: Callable[[dict[str, str]], dict[str, str]], *, base: float = 0.5, gain: float = 0.05,
                 harm: float = 0.25, floor: float = 0.02, ceiling: float = 0.98,
                 wrong: Callable[[dict[str, str]], dict[str, str]] | None = None):
        self.truth = truth
        self.base, self.gain, self.harm, self.floor, self.ceiling = base, gain, harm, floor, ceiling
        self.wrong = wrong or (lambda right: {k: f"not {v}" for k, v in right.items()})
        self.seen: dict[int, int] = {}

    def accuracy(self, correct: int, wrong: int) -> float:
        """The chance of a right answer after `correct` right and `wrong` mislabeled demonstrations."""
        return min(self.ceiling, max(self.floor, self.base + self.gain * correct - self.harm * wrong))

    def __call__(self, body: Mapping[str, Any]) -> Any:
        inputs = input_fields(body)
        right = self.truth(inputs)
        shown = demonstrations(body)
        wrong = sum(1 for demo_inputs, demo_outputs in shown
                    if any(demo_outputs.get(k) != v for k, v in self.truth(demo_inputs).items()))
        self.seen[wrong] = self.seen.get(wrong, 0) + 1
        draw = int(hashlib.sha256(repr((sorted(inputs.items()), shown, body.get("temperature"))).encode())
                   .hexdigest()[:12], 16) / float(16 ** 12)
        return dspy_reply(right if draw < self.accuracy(len(shown) - wrong, wrong) else self.wrong(right))
