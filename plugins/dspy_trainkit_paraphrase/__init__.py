"""Built-in synthesis strategy 'paraphrase': the same example in new words, written by an LM.

Why: an optimizer that sees one phrasing of each problem learns the phrasing. Paraphrases add surface variety
while keeping what is asked and the answer, so they are cheap, low-risk extra data. Ones that come out too close
to their seed (or to each other) are rejected by the near-duplicate check; ones whose answer drifted are caught
by the validators (`consistency`).

    trainkit synthesize --task problems --strategy paraphrase --from "topic=fractions" --count 20

Each seed becomes one request to a `dspy.Predict` program whose instructions are `INSTRUCTIONS`; when `count`
exceeds the seeds, they are used again with a variation number, so the LM (and its cache) is asked something
new. No options.
"""

from __future__ import annotations

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import RewriteStrategy

INSTRUCTIONS = (
    "Paraphrase a training example. Write the same example in different words: keep its meaning, every fact "
    "and number, what it asks and its answer exactly; change the wording and sentence structure so it does not "
    "read like a copy. Keep the same format for each field.")


class Paraphrase(RewriteStrategy):
    name = "paraphrase"
    description = "same content and answer in new wording (surface variety at low risk)"
    instructions = INSTRUCTIONS


@hookimpl
def synthesize(register):
    register(Paraphrase())
