"""The shared machinery of the LM strategies (paraphrase, harder, easier, topic-transfer, persona): each makes
new examples by asking an LM to rewrite a seed example, with a small DSPy program per strategy.

Why one base: the strategies differ only in what they ask for (their instructions), which labels the new
example gets (a harder difficulty, another topic) and which seeds they can use. The rest is the same and is
easy to get wrong: the signature is built from the task's fields (the seed's fields come in as `original_NAME`,
the new ones go out under the task's own names, so the answer arrives in DSPy's native output format and is
parsed by its adapter), label fields such as `difficulty` are set by the strategy rather than left to the LM,
calls go through `LMCalls` (concurrency, rpm, retries honouring Retry-After), and every failure (rate limit,
timeout, an answer DSPy cannot parse) is counted under its reason instead of raised.

A strategy subclasses `RewriteStrategy`, sets `name`, `description`, `instructions`, and overrides `jobs` to say
which seed becomes which request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError, TrainkitError
from ..models import Example

if TYPE_CHECKING:
    from .synthesis import SynthesisContext

LABELS = ("domain", "topic", "difficulty")
REQUEST_DESC = "what to change in this example, and what to keep"


@attrs.frozen
class Job:
    """One request: rewrite `seed` as `request` says; the new example gets the labels in `labels` (those not
    given stay the seed's) and `note` in its provenance."""

    seed: Example
    request: str
    labels: dict[str, str | None] = attrs.field(factory=dict)
    note: dict[str, Any] = attrs.field(factory=dict)


class RewriteStrategy:
    """Base class of the LM strategies; see the module docstring."""

    name = "rewrite"
    description = "rewrite seed examples with an LM"
    needs_lm = True
    needs_seeds = True
    instructions = "Rewrite the example as the request says."
    options: tuple[str, ...] = ()

    # -- what to ask (subclasses) --------------------------------------------------------------------------
    def jobs(self, seeds: Sequence[Example], count: int, context: SynthesisContext,
             options: Mapping[str, Any]) -> Iterator[Job]:
        """The requests, at most `count`: by default every seed in turn, round after round."""
        for number in range(count):
            seed = seeds[number % len(seeds)]
            yield Job(seed, self.request(seed, number // len(seeds), context, options))

    def request(self, seed: Example, variation: int, context: SynthesisContext, options: Mapping[str, Any]) -> str:
        return self.instructions + variation_note(variation)

    # -- running -------------------------------------------------------------------------------------------
    def generate(self, seeds: Sequence[Example], count: int, context: SynthesisContext, **options: Any
                 ) -> Iterator[dict[str, Any]]:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise ConfigError(f"strategy {self.name!r}: unknown option {unknown[0]!r}; known options: {known}")
        jobs = list(self.jobs(seeds, count, context, options))
        if not jobs:
            raise TrainkitError(f"strategy {self.name!r}: none of the {len(seeds)} seed example(s) can be used "
                                f"({self.unusable_reason(context)}); select other seeds with --from / --where")
        fixed = _fixed_labels(context)
        programs: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}

        def program_for(seed: Example) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
            shape = (tuple(seed.inputs), tuple(seed.outputs))
            if shape not in programs:
                programs[shape] = self._program(shape, fixed)
            return programs[shape], shape[0], shape[1]

        for queued in jobs:  # build programs before the threads start (DSPy signatures are not made concurrently)
            program_for(queued.seed)

        def call(job: Job) -> Any:
            program, _, _ = program_for(job.seed)
            fields = {**job.seed.inputs, **job.seed.outputs}
            arguments = {f"original_{k}": _text(v) for k, v in fields.items()}
            arguments[request_field(fields)] = job.request
            return program(**arguments)

        for outcome in context.lm_calls().run(call, jobs):
            job: Job = outcome.item
            if outcome.error is not None:
                context.fail(outcome.error.reason, outcome.error.message, parent=job.seed.id)
                continue
            yield self._candidate(job, outcome.value, fixed, context, outcome.attempts)

    def unusable_reason(self, context: SynthesisContext) -> str:
        """Why no seed could be used (for the error message)."""
        return "no requests were made"

    def _program(self, shape: tuple[tuple[str, ...], tuple[str, ...]], fixed: frozenset[str]) -> Any:
        """A `dspy.Predict` over `original_*` inputs and `request` -> the fields the LM writes."""
        import dspy

        fields: dict[str, Any] = {}
        for name in (*shape[0], *shape[1]):
            fields[f"original_{name}"] = (str, dspy.InputField(desc=f"the original example's {name}"))
        fields[request_field((*shape[0], *shape[1]))] = (str, dspy.InputField(desc=REQUEST_DESC))
        for name in (*shape[0], *shape[1]):
            if name not in fixed:
                fields[name] = (str, dspy.OutputField(desc=f"the new example's {name}"))
        signature = dspy.make_signature(fields, self.instructions, signature_name=_class_name(self.name))
        return dspy.Predict(signature)

    def _candidate(self, job: Job, prediction: Any, fixed: frozenset[str], context: SynthesisContext,
                   attempts: int) -> dict[str, Any]:
        seed = job.seed
        labels = {label: job.labels.get(label, getattr(seed, label)) for label in LABELS}
        inputs: dict[str, Any] = {}
        outputs: dict[str, Any] = {}
        for part, values, target in (("inputs", seed.inputs, inputs), ("outputs", seed.outputs, outputs)):
            for name, original in values.items():
                if part == "inputs" and name in fixed and labels.get(name) is not None:
                    target[name] = labels[name]
                elif name in fixed and part == "inputs":
                    target[name] = original
                else:
                    target[name] = _value(prediction.get(name), original)
        changes = {label: [getattr(seed, label), labels[label]] for label in LABELS
                   if labels[label] != getattr(seed, label)}
        provenance: dict[str, Any] = {"parent": seed.id, "model": context.model, "attempts": attempts}
        if changes:
            provenance["changed"] = changes
        provenance.update(job.note)
        return {"inputs": inputs, "outputs": outputs, **labels, "provenance": provenance}


def request_field(names: Any) -> str:
    """The name of the request input: `request`, or `rewrite_request` when the task has a field `request`."""
    return "rewrite_request" if "request" in names else "request"


def _fixed_labels(context: SynthesisContext) -> frozenset[str]:
    """Input fields the strategy sets itself: the label names (domain, topic, difficulty) among the task's
    inputs (all three when the task declares no fields)."""
    fields = context.fields()
    return frozenset(LABELS) if fields is None else frozenset(LABELS) & frozenset(fields[0])


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _value(written: Any, original: Any) -> Any:
    """The LM's text for a field, as the original's type when that was not text (JSON numbers, lists)."""
    if written is None:
        return None
    text = str(written).strip()
    if isinstance(original, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def variation_note(number: int) -> str:
    return f" This is variation {number + 1}: make it differ from earlier variations." if number else ""


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-")) + "Rewrite"


def string_list(value: Any, option: str, strategy: str) -> list[str]:
    """An option that must be a list of non-empty strings (a single string is a list of one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise ConfigError(f"strategy {strategy!r}: option {option} = {value!r}: use a list of names, "
                          "e.g. [\"a\", \"b\"]")
    return [v.strip() for v in items]
