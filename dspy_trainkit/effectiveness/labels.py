"""Label suspicion: run the champion program (or a named run's) on the stored examples and see where it
disagrees with their labels.

An example whose stored output the program contradicts, while the program agrees with most other examples, may
be mislabeled: that is the evidence the check gives (the agreement rate over the checked examples, and the
program's prediction for each). It costs one program call per checked example, through the LM call machinery
(concurrency, rate limit, retries from `[lm.program]`); `budget` caps how many examples are checked, chosen in a
seeded order so a re-run checks the same ones. The program's own error rate bounds how much a disagreement means:
with a program right 80% of the time, a fifth of clean examples disagree too, which is why the result is a
signal for review, not a verdict.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import NotFoundError, TrainkitError

if TYPE_CHECKING:
    from ..kit import Kit


@attrs.frozen
class LabelCheck:
    """`results` maps example id -> {"score": metric score, "prediction": fields}; `agreement` is their mean."""

    task: str
    run: str
    checked: int
    failed_calls: int
    agreement: float | None
    results: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def check_labels(kit: Kit, task: str, *, run: str | None = None, budget: int = 200, seed: int = 0,
                 lm: Any = None) -> LabelCheck:
    import dspy

    from ..generation.calls import LMCalls
    from ..optimization.champions import champion, get_run, load_saved
    from ..optimization.resolve import program_factory, program_lm, resolve_metric
    from ..store import ExampleQuery

    chosen = get_run(kit, run) if run is not None else champion(kit, task)
    if chosen is None:
        raise NotFoundError(f"task {task!r} has no champion to check labels with; optimize first, or name a run "
                            "with --run")
    if chosen.task != task:
        raise TrainkitError(f"run {chosen.id} is of task {chosen.task!r}, not {task!r}")
    make, _ = program_factory(kit, task, chosen.program)
    metric, _ = resolve_metric(kit, task, chosen.metric)
    program = load_saved(make, chosen)
    ids = sorted(kit.store.iter_ids(ExampleQuery(task=task, status="accepted")),
                 key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())[:max(budget, 0)]
    examples = [kit.get(i) for i in ids]
    converted = kit.convert(examples, "dspy")
    skipped = {example_id for example_id, _ in converted.skipped}
    pairs = list(zip([e.id for e in examples if e.id not in skipped], converted.items, strict=True))
    calls = LMCalls(program_lm(kit, task, lm), kit.settings.lm_for(task, "program"))

    def judge(pair: tuple[str, Any]) -> tuple[str, float, dict[str, Any]]:
        example_id, example = pair
        with dspy.context(lm=calls.lm):
            prediction = program(**example.inputs())
        score = metric(example, prediction)
        fields = {k: v for k, v in prediction.items()} if hasattr(prediction, "items") else {}
        return example_id, float(score), {k: v if isinstance(v, str | int | float | bool) else str(v)
                                          for k, v in fields.items()}

    results: dict[str, dict[str, Any]] = {}
    failed = 0
    for outcome in calls.run(judge, pairs):
        if outcome.error is not None:
            failed += 1
            continue
        example_id, score, prediction = outcome.value
        results[example_id] = {"score": score, "prediction": prediction}
    if pairs and not results:
        raise TrainkitError(f"label check of task {task!r}: all {failed} program call(s) failed (is the LM "
                            "reachable? `trainkit lm check`); the stored values are left as they were")
    agreement = sum(r["score"] for r in results.values()) / len(results) if results else None
    return LabelCheck(task=task, run=chosen.id, checked=len(results), failed_calls=failed, agreement=agreement,
                      results=results)
