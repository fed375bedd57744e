"""Built-in synthesis strategies 'harder' and 'easier': move an example along the task's difficulty scale.

Why: real data bunches at one level (pipelines make what is easy to make), while optimizers and students need
every level. `harder` turns a seed into a problem one level up the task's (or its domain's) `difficulties` list,
`easier` one level down; the new example gets that difficulty label (and input field, when the task has one)
and keeps the seed's domain and topic. Seeds already at the end of the scale, or without a difficulty on it,
are skipped; when none is usable the run stops with a message saying so.

    trainkit synthesize --task problems --strategy harder --from "difficulty=easy" --count 30

Option: `steps` (default 1): how many levels to move, e.g. `--option steps=2` turns easy into hard.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dspy_trainkit import ConfigError, hookimpl
from dspy_trainkit.pluginkit import Job, RewriteStrategy, variation_note

HARDER = (
    "Make a training example harder. Write a new example on the same topic that needs more steps, less obvious "
    "reasoning or larger numbers, at the target difficulty given in the request. Work it out again: the "
    "solution and the answer must be correct for the new example. Keep the same format for each field.")
EASIER = (
    "Make a training example easier. Write a new example on the same topic that needs fewer steps, simpler "
    "reasoning or smaller numbers, at the target difficulty given in the request. Work it out again: the "
    "solution and the answer must be correct for the new example. Keep the same format for each field.")


class Shift(RewriteStrategy):
    """Moves seeds `direction` (+1 harder, -1 easier) levels along the difficulty list."""

    direction = 1
    options = ("steps",)

    def target(self, seed: Any, context: Any, steps: int) -> str | None:
        levels = list(context.difficulties(seed.domain))
        if seed.difficulty not in levels:
            return None
        position = levels.index(seed.difficulty) + self.direction * steps
        return levels[position] if 0 <= position < len(levels) else None

    def jobs(self, seeds: Sequence[Any], count: int, context: Any, options: Mapping[str, Any]) -> Iterator[Job]:
        steps = options.get("steps", 1)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"strategy {self.name!r}: option steps = {steps!r}: use a whole number >= 1")
        scales = {seed.domain: list(context.difficulties(seed.domain)) for seed in seeds}
        longest = max((len(levels) for levels in scales.values()), default=0)
        if longest > 1 and steps > longest - 1:  # no seed anywhere on the scale can move that far
            shown = "; ".join(f"{d or 'all'}: {', '.join(v)}"
                              for d, v in sorted(scales.items(), key=lambda i: str(i[0])) if v)
            raise ConfigError(f"strategy {self.name!r}: option steps = {steps} exceeds the difficulty scale, which "
                              f"allows at most {longest - 1} step(s) (the task's levels: {shown}); use a smaller "
                              "--option steps")
        usable = [(seed, target) for seed in seeds if (target := self.target(seed, context, steps)) is not None]
        if len(usable) < len(seeds):
            context.note(f"{len(seeds) - len(usable)} seed(s) skipped: no difficulty {steps} level(s) "
                         f"{'above' if self.direction > 0 else 'below'} theirs on the task's scale")
        for number in range(count if usable else 0):
            seed, target = usable[number % len(usable)]
            levels = ", ".join(context.difficulties(seed.domain))
            request = (f"Target difficulty: {target!r} (the original is {seed.difficulty!r}; the levels, easiest "
                       f"first: {levels}). Keep the domain {seed.domain!r} and the topic {seed.topic!r}."
                       + variation_note(number // len(usable)))
            yield Job(seed, request, labels={"difficulty": target})

    def unusable_reason(self, context: Any) -> str:
        levels = {d: ", ".join(context.difficulties(d)) or "none" for d in {c[0] for c in context.cells} or {None}}
        return (f"every seed is already at the {'top' if self.direction > 0 else 'bottom'} of the difficulty "
                "scale or has no difficulty on it; the task's levels: "
                + "; ".join(f"{d or 'all'}: {v}" for d, v in sorted(levels.items(), key=lambda i: str(i[0]))))


class Harder(Shift):
    name = "harder"
    description = "the same topic one difficulty level up (fills the hard end of the scale)"
    instructions = HARDER
    direction = 1


class Easier(Shift):
    name = "easier"
    description = "the same topic one difficulty level down (fills the easy end of the scale)"
    instructions = EASIER
    direction = -1


@hookimpl
def synthesize(register):
    register(Harder())
    register(Easier())
