"""Built-in synthesis strategy 'topic-transfer': the same skill and difficulty, on another topic of the task.

Why: a task's topics rarely get equal data. Transferring a well-made example to a thin topic keeps its level and
its shape (what makes it a good demonstration) while filling the gap. Target topics come from the task's (or
the seed's domain's) `topics` in settings, never from the LM: each request names one topic other than the
seed's, chosen with the run's seed so that re-runs ask the same. The new example gets that topic label (and
input field, when the task has one); difficulty and domain stay.

    trainkit synthesize --task problems --strategy topic-transfer --from "topic=fractions" --count 20

Option: `topics` (a list): only transfer to these topics (each must be one of the task's).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dspy_trainkit import ConfigError, hookimpl
from dspy_trainkit.pluginkit import Job, RewriteStrategy, string_list, variation_note

INSTRUCTIONS = (
    "Transfer a training example to another topic. Write a new example about the target topic given in the "
    "request that exercises the same kind of skill at the same difficulty, in the same format. Work it out "
    "again: the solution and the answer must be correct for the new example.")


class TopicTransfer(RewriteStrategy):
    name = "topic-transfer"
    description = "the same skill and difficulty on another of the task's topics (fills thin topics)"
    instructions = INSTRUCTIONS
    options = ("topics",)

    def jobs(self, seeds: Sequence[Any], count: int, context: Any, options: Mapping[str, Any]) -> Iterator[Job]:
        wanted = string_list(options["topics"], "topics", self.name) if "topics" in options else None
        if wanted is not None:
            known = {t for d in {c[0] for c in context.cells} | {None} for t in context.topics(d)}
            unknown = [t for t in wanted if t not in known]
            if unknown:
                raise ConfigError(f"strategy {self.name!r}: option topics names {unknown[0]!r}, which is not a "
                                  f"topic of task {context.task!r} ({', '.join(sorted(known)) or 'none set'})")
        usable = []
        for seed in seeds:
            others = [t for t in context.topics(seed.domain) if t != seed.topic and (wanted is None or t in wanted)]
            if others:
                usable.append((seed, others))
        if len(usable) < len(seeds):
            context.note(f"{len(seeds) - len(usable)} seed(s) skipped: their domain has no other topic to move to")
        for number in range(count if usable else 0):
            seed, others = usable[number % len(usable)]
            round_ = number // len(usable)
            offset = context.random("topic", seed.id).randrange(len(others))
            target = others[(offset + round_) % len(others)]
            request = (f"Target topic: {target!r} (the original is about {seed.topic!r}). Keep the domain "
                       f"{seed.domain!r} and the difficulty {seed.difficulty!r}." + variation_note(round_))
            yield Job(seed, request, labels={"topic": target})

    def unusable_reason(self, context: Any) -> str:
        return "no seed's domain has another topic in the task's settings (set topics under [tasks.TASK])"


@hookimpl
def synthesize(register):
    register(TopicTransfer())
