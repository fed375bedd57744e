"""A stand-in LM for the quick start, so that the whole loop runs on a machine without a model or a network.

It is trainkit's loopback OpenAI-compatible test server (dspy_trainkit.testing) on 127.0.0.1, answering the
example's problem program (domain, topic, difficulty -> problem, solution, answer) with a problem drawn from the
`template` plugin's library for that topic and level. It prints its base URL, then serves until it is stopped
(SIGTERM or Ctrl-C) or for `--lifetime` seconds. For real work, point `[lm.program]` at a real model instead
(see docs/generation.md); nothing else changes.

    python examples/quickstart/standin_lm.py            # prints http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import random
import signal
import sys
import threading
from typing import Any

from dspy_trainkit_template.library import BUILTIN, LEVELS

from dspy_trainkit.testing import OpenAIServer, dspy_reply, input_fields

_asked: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


def answer(body: dict[str, Any]) -> Any:
    """A problem for the cell named in the request. The first request for a cell always gets the same problem
    (so re-runs and evaluations repeat); asking again for the same cell (bootstrap's `per_cell` > 1, or a
    retry at another temperature) gets the next one, as a sampling LM would answer differently."""
    fields = input_fields(body)
    topic, difficulty = fields.get("topic", ""), fields.get("difficulty", "")
    level = LEVELS.index(difficulty) if difficulty in LEVELS else 0
    template = next((t for t in BUILTIN if t.topic == topic), BUILTIN[0])
    key = repr(sorted(fields.items()))
    with _lock:
        nth = _asked[key]
        _asked[key] += 1
    seed = int(hashlib.sha256(f"{key}#{nth}".encode()).hexdigest()[:8], 16)
    made = template.make(random.Random(seed), level)
    return dspy_reply({"problem": made.problem, "solution": made.solution, "answer": made.answer})


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
