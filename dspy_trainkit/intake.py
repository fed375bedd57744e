"""The one intake pipeline every example goes through, whatever its origin.

    candidates -> normalise -> validate -> content hash + exact dedup -> score -> decide status
               -> store (one transaction per batch, with its audit event) -> on_data_changed

Sources (collection, import, generation, manual add) only produce candidates; this module decides what happens
to them. Work is done in batches of `intake.batch_size` so that per-example overhead through several plugins
stays small and a long import can be interrupted and re-run: committed batches are found again by content hash.
A record that cannot become an Example is reported with its position and kept out; nothing else is dropped:
rejected examples are stored with status `rejected` and their findings, so they can be reviewed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .errors import PluginError, TrainkitError
from .models import Event, Example, Finding
from .plugins import call_each

if TYPE_CHECKING:
    from .kit import Kit

log = logging.getLogger(__name__)


@attrs.frozen
class Problem:
    """A record that could not become an example: where it was, why, and the record itself."""

    position: str
    message: str
    record: Any = None


@attrs.define
class IntakeReport:
    """Counts and problems of one intake run. `read` = stored + duplicates + invalid."""

    read: int = 0
    stored: int = 0
    accepted: int = 0
    candidates: int = 0
    rejected: int = 0
    duplicates: int = 0
    problems: list[Problem] = attrs.field(factory=list)
    ids: list[str] = attrs.field(factory=list)

    @property
    def invalid(self) -> int:
        return len(self.problems)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["problems"] = [{"position": p.position, "message": p.message} for p in self.problems]
        data["invalid"] = self.invalid
        return data


Positioned = tuple[str, Any]
_STATUS_COUNTERS = {"accepted": "accepted", "candidate": "candidates", "rejected": "rejected"}


class Intake:
    """Runs candidates through the pipeline for one open kit."""

    def __init__(self, kit: Kit):
        self.kit = kit

    def run(self, items: Iterable[Positioned], *, defaults: Mapping[str, Any] | None = None,
            actor: str = "trainkit", reason: str = "",
            progress: Callable[[IntakeReport], None] | None = None) -> IntakeReport:
        """Take `(position, record)` pairs; a record is an Example, a mapping of Example fields, or an
        exception from a reader. `defaults` fill fields a mapping lacks (task, source, labels)."""
        report = IntakeReport()
        size = self.kit.settings.batch_size
        iterator = iter(items)
        while batch := list(itertools.islice(iterator, size)):
            self._run_batch(batch, defaults or {}, actor, reason, report)
            if progress is not None:
                progress(report)
        return report

    def _run_batch(self, batch: list[Positioned], defaults: Mapping[str, Any], actor: str, reason: str,
                   report: IntakeReport) -> None:
        report.read += len(batch)
        examples = list(self._normalise(batch, defaults, report))
        if not examples:
            return
        findings = self._validate(examples)
        examples, duplicates = self._dedup(examples)
        report.duplicates += duplicates
        if not examples:
            return
        scored = self._score(examples, findings)
        decided = [self._decide(ex, findings.get(ex.id, []), scores)
                   for ex, scores in zip(examples, scored, strict=True)]
        event = Event(kind="added", example_ids=[ex.id for ex in decided], actor=actor, reason=reason,
                      details={"sources": sorted({ex.source for ex in decided})})
        result = self.kit.store.insert_examples(decided, event)
        report.duplicates += len(result.duplicates)
        inserted = set(result.inserted)
        for ex in decided:
            if ex.id in inserted:
                report.stored += 1
                report.ids.append(ex.id)
                counter = _STATUS_COUNTERS[ex.status]
                setattr(report, counter, getattr(report, counter) + 1)
        if result.inserted:
            self.kit.notify(attrs.evolve(event, example_ids=result.inserted))

    def _normalise(self, batch: list[Positioned], defaults: Mapping[str, Any],
                   report: IntakeReport) -> Iterator[Example]:
        for position, record in batch:
            if isinstance(record, BaseException):
                report.problems.append(Problem(position, str(record)))
                continue
            try:
                yield to_example(record, defaults, self.kit.settings.default_task)
            except TrainkitError as exc:
                report.problems.append(Problem(position, str(exc), record))

    def _validate(self, examples: list[Example]) -> dict[str, list[Finding]]:
        found: dict[str, list[Finding]] = {}
        for plugin, result in call_each(self.kit.pm, "validate", examples=examples, context=self.kit):
            for index, items in _indexed(result, examples, plugin, "validate"):
                for finding in items:
                    if not isinstance(finding, Finding):
                        raise PluginError(f"plugin {plugin!r} returned {type(finding).__name__} from hook "
                                          "'validate'; expected Finding objects", plugin=plugin, hook="validate")
                    found.setdefault(examples[index].id, []).append(attrs.evolve(finding, plugin=plugin))
        return found

    def _dedup(self, examples: list[Example]) -> tuple[list[Example], int]:
        """Drop examples whose (task, content hash) repeats within the batch or is stored already."""
        unique: dict[tuple[str, str], Example] = {}
        for ex in examples:
            unique.setdefault((ex.task, ex.content_hash), ex)
        by_task: dict[str, list[str]] = {}
        for task, digest in unique:
            by_task.setdefault(task, []).append(digest)
        stored = {(task, digest) for task, digests in by_task.items()
                  for digest in self.kit.store.existing_hashes(task, digests)}
        kept = [ex for key, ex in unique.items() if key not in stored]
        return kept, len(examples) - len(kept)

    def _score(self, examples: list[Example], findings: dict[str, list[Finding]]) -> list[dict[str, Any]]:
        """Scores per example, keyed by dimension, each remembering the plugin that made it."""
        to_score = [i for i, ex in enumerate(examples)
                    if not any(f.severity == "error" for f in findings.get(ex.id, []))]
        scores: list[dict[str, tuple[float, str]]] = [{} for _ in examples]
        if not to_score:
            return scores
        subset = [examples[i] for i in to_score]
        for plugin, result in call_each(self.kit.pm, "score", examples=subset, context=self.kit):
            for index, dims in _indexed(result, subset, plugin, "score"):
                target = scores[to_score[index]]
                for dimension, value in dict(dims).items():
                    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                        raise PluginError(f"plugin {plugin!r} gave score {value!r} for {dimension!r} in hook "
                                          "'score'; scores must be numbers in 0..1", plugin=plugin, hook="score")
                    if dimension in target and target[dimension][1] != plugin:
                        raise PluginError(f"dimension {dimension!r} is scored by both plugin "
                                          f"{target[dimension][1]!r} and plugin {plugin!r}; disable one",
                                          plugin=plugin, hook="score")
                    target[dimension] = (float(value), plugin)
        return scores

    def _decide(self, ex: Example, findings: list[Finding], scores: dict[str, tuple[float, str]]) -> Example:
        task = self.kit.settings.task(ex.task)
        quality = weighted_quality({d: v for d, (v, _) in scores.items()}, task.weights_for(ex.domain))
        findings = list(ex.findings) + findings
        if any(f.severity == "error" for f in findings):
            status = "rejected"
        elif quality is not None and quality < task.min_quality_for(ex.domain):
            status = "rejected"
            findings.append(Finding(severity="error", code="below-threshold", plugin="intake",
                                    message=f"quality {quality:.2f} is below min_quality "
                                            f"{task.min_quality_for(ex.domain):.2f}"))
        elif task.collection_mode == "manual" or any(f.severity == "warning" for f in findings):
            status = "candidate"
        else:
            status = "accepted"
        provenance = dict(ex.provenance)
        if scores:
            provenance["scorers"] = {d: p for d, (_, p) in scores.items()}
        return attrs.evolve(ex, status=status, findings=findings, quality=quality, provenance=provenance,
                            scores={**ex.scores, **{d: v for d, (v, _) in scores.items()}})


def to_example(record: Any, defaults: Mapping[str, Any], default_task: str | None = None) -> Example:
    """Normalise one record (an Example or a mapping of its fields) into an Example, or raise TrainkitError."""
    if isinstance(record, Example):
        return record
    if not isinstance(record, Mapping):
        raise TrainkitError(f"expected a mapping of example fields, got {type(record).__name__}")
    values = {**defaults, **record}
    if "task" not in values and default_task:
        values["task"] = default_task
    if "task" not in values:
        raise TrainkitError("task: missing (give --task, a 'task' field, or default_task in settings)")
    example = Example.from_dict(values)
    example.content_hash  # noqa: B018 - computing it now reports values that are not JSON, per record
    return example


def weighted_quality(scores: Mapping[str, float], weights: Mapping[str, float]) -> float | None:
    """Overall quality: the mean of the dimensions weighted by `weights` (default 1 each); None if unscored."""
    total = sum(weights.get(d, 1.0) for d in scores)
    if not scores or total == 0:
        return None
    return round(sum(v * weights.get(d, 1.0) for d, v in scores.items()) / total, 6)


def _indexed(result: Any, examples: list[Example], plugin: str, hook: str) -> Iterator[tuple[int, Any]]:
    """Check a batch hook's `{index: value}` answer and yield its items."""
    if not isinstance(result, Mapping):
        raise PluginError(f"plugin {plugin!r} returned {type(result).__name__} from hook {hook!r}; "
                          "expected a mapping from example index to results", plugin=plugin, hook=hook)
    for index, value in result.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(examples):
            raise PluginError(f"plugin {plugin!r} returned index {index!r} from hook {hook!r}, outside the "
                              f"batch of {len(examples)}", plugin=plugin, hook=hook)
        yield index, value
