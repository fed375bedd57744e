"""Built-in synthesis strategy 'persona': the same example told for another person or setting.

Why: pipelines see many kinds of users, and a dataset written in one voice (a textbook's) teaches that voice.
Rewriting an example for a persona (a nurse, a farmer, a game designer...) changes its context, names and
objects while keeping the skill, topic and difficulty: context variation that tests whether the program
generalises beyond one setting. The answer is worked out again when the story changes the numbers.

    trainkit synthesize --task problems --strategy persona --count 40 --option 'personas=["a chef", "a pilot"]'

Option: `personas` (a list): who to write for (default: `PERSONAS`). Each request names one, chosen with the
run's seed; the persona is kept in the example's provenance.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import Job, RewriteStrategy, string_list, variation_note

INSTRUCTIONS = (
    "Rewrite a training example for the persona or setting given in the request: change its context, names and "
    "objects so that it fits that person's world, but keep the skill it exercises, its topic and its "
    "difficulty. Work it out again: the solution and the answer must be correct for the new example. Keep the "
    "same format for each field.")
PERSONAS = ("a nurse planning medication doses", "a farmer managing fields and harvests",
            "a chef scaling recipes", "a game designer balancing a game", "a shop owner handling stock",
            "a cyclist training for a race", "a carpenter building furniture", "a student planning a trip")


class Persona(RewriteStrategy):
    name = "persona"
    description = "the same skill, topic and difficulty retold for another person or setting (context variety)"
    instructions = INSTRUCTIONS
    options = ("personas",)

    def jobs(self, seeds: Sequence[Any], count: int, context: Any, options: Mapping[str, Any]) -> Iterator[Job]:
        personas = string_list(options["personas"], "personas", self.name) if "personas" in options \
            else list(PERSONAS)
        order = personas[:]
        context.random("personas").shuffle(order)
        for number in range(count):
            seed = seeds[number % len(seeds)]
            persona = order[number % len(order)]
            request = (f"Persona or setting: {persona}. Keep the topic {seed.topic!r} and the difficulty "
                       f"{seed.difficulty!r}." + variation_note(number // len(seeds)))
            yield Job(seed, request, note={"persona": persona})


@hookimpl
def synthesize(register):
    register(Persona())
