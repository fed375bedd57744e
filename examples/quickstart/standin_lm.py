"""A stand-in LM for the quick start, so that the whole loop runs on a machine without a model or a network.

It is trainkit's loopback OpenAI-compatible test server (dspy_trainkit.testing) on 127.0.0.1, answering the
example's problem program (domain, topic, difficulty -> problem, solution, answer) with a problem drawn from the
`template` plugin's library for that topic and level. It prints its base URL, then serves until it is stopped
(SIGTERM or Ctrl-C) or for `--lifetime` seconds. For real work, point `[lm.program]` at a real model instead
(see docs/generation.md); nothing else changes.

How it answers, so that what the quick start shows is explained by it, not mistaken for a real model:
- the same request always gets the same answer (a re-run or an evaluation repeats); a request that differs,
  if only in temperature (bootstrap asks again at a higher temperature after a duplicate), gets another problem;
- without demonstrations in the prompt it writes the solution without stating the final answer (the example
  metric's last check fails); with demonstrations (few-shot examples from an optimizer) it follows their
  format and ends the solution with the answer: a caricature of what demos do for a real LM, which makes the
  optimization step's gain visible;
- its problems come from a small template library: bootstrapping many examples per cell from it runs out of
  distinct problems (slots end as `duplicate`), which a real model does not.

    python examples/quickstart/standin_lm.py            # prints http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import argparse
import hashlib
import random
import signal
import sys
import threading
from typing import Any

from dspy_trainkit_template.library import BUILTIN, LEVELS

from dspy_trainkit.testing import OpenAIServer, dspy_reply, input_fields


def answer(body: dict[str, Any]) -> Any:
    """A problem for the cell named in the request, chosen by the request's content (see the module doc)."""
    fields = input_fields(body)
    topic, difficulty = fields.get("topic", ""), fields.get("difficulty", "")
    level = LEVELS.index(difficulty) if difficulty in LEVELS else 0
    template = next((t for t in BUILTIN if t.topic == topic), BUILTIN[0])
    key = repr((sorted(fields.items()), body.get("temperature")))
    made = template.make(random.Random(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)), level)
    shown_demos = any(m.get("role") == "assistant" for m in body.get("messages", []) if isinstance(m, dict))
    solution = made.solution if shown_demos else made.solution.rsplit(".", 1)[0].rsplit(made.answer, 1)[0]
    if shown_demos and made.answer not in made.solution.rstrip(".").rsplit(". ", 1)[-1]:
        solution = f"{made.solution.rstrip('.')}. The answer is {made.answer}."
    return dspy_reply({"problem": made.problem, "solution": solution.strip() or "Work it out step by step.",
                       "answer": made.answer})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifetime", type=float, default=900.0, help="stop after this many seconds (default 900)")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with OpenAIServer(answer, lifetime=args.lifetime) as server:
        print(server.url, flush=True)  # noqa: T201 - a script: the URL is its output
        try:
            stop.wait(args.lifetime)
        except KeyboardInterrupt:
            pass
    sys.exit(0)


if __name__ == "__main__":
    main()
