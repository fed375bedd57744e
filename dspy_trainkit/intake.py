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
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from . import assessment, tokens
from .errors import TrainkitError, ValidationError
from .gc_pause import gc_paused_on_main_thread
from .json_values import json_problem, text_problem
from .models import Event, Example
from .plugin_manager import call_each

if TYPE_CHECKING:
    from .kit import Kit

log = logging.getLogger(__name__)


@attrs.frozen
class Problem:
    """A record that could not become an example: where it was, why, and the record itself."""

    position: str
    message: str
    record: Any = None


#: How many problems and stored ids a report keeps in memory (a million-row import must not hold a million
#: ids); all problems are counted and passed to `on_reject`, all ids are in the store and its event log.
MAX_KEPT_PROBLEMS = 1000
MAX_KEPT_IDS = 10_000


@attrs.define
class IntakeReport:
    """Counts and problems of one intake run. `read` = stored + duplicates + invalid (+ would-store in a dry
    run); `rejected` counts examples stored with status rejected; `invalid` records that never became examples.
    `held` counts the `candidates` the synthetic-share cap kept from being accepted; `rejected_by_code` counts
    the error findings of the rejected examples by code, and the invalid records as "invalid"."""

    read: int = 0
    stored: int = 0
    accepted: int = 0
    candidates: int = 0
    rejected: int = 0
    duplicates: int = 0
    invalid: int = 0
    held: int = 0
    rejected_by_code: dict[str, int] = attrs.field(factory=dict)
    problems: list[Problem] = attrs.field(factory=list)
    ids: list[str] = attrs.field(factory=list)
    dry_run: bool = False

    def add_problem(self, problem: Problem) -> None:
        self.invalid += 1
        self.count_code("invalid")
        if len(self.problems) < MAX_KEPT_PROBLEMS:
            self.problems.append(problem)

    def count_code(self, code: str) -> None:
        self.rejected_by_code[code] = self.rejected_by_code.get(code, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["problems"] = [{"position": p.position, "message": p.message} for p in self.problems]
        return data


Positioned = tuple[str, Any]
RejectCallback = Callable[[str, Any, list[str]], None]
_STATUS_COUNTERS = {"accepted": "accepted", "candidate": "candidates", "rejected": "rejected"}
UNKNOWN = "(unknown)"  # the task of a record that names none, in per-task counts
#: Intake counts per (task, source): [read, invalid, duplicates]; `read` counts records, invalid ones included.
KeyCounts = dict[tuple[str, str], list[int]]
_READ, _INVALID, _DUPLICATES = range(3)


def _instrument(seconds: float, decided: list[Example], inserted: set[str], counts: KeyCounts) -> None:
    """This process's intake metrics (`operations.instruments`) for one stored batch."""
    from .operations import instruments

    stored = Counter((ex.task, ex.source, ex.status) for ex in decided if ex.id in inserted)
    outcomes = [(task, source, status, n) for (task, source, status), n in stored.items()]
    for (task, source), values in counts.items():
        outcomes += [(task, source, "invalid", values[_INVALID]), (task, source, "duplicate", values[_DUPLICATES])]
    late = Counter((ex.task, ex.source) for ex in decided if ex.id not in inserted)  # stored meanwhile elsewhere
    outcomes += [(task, source, "duplicate", n) for (task, source), n in late.items()]
    rejections = [(ex.task, f.code) for ex in decided if ex.id in inserted and ex.status == "rejected"
                  for f in ex.findings if f.severity == "error"]
    instruments.intake_batch(seconds, outcomes, rejections)


def _count(counts: KeyCounts, key: tuple[str, str], column: int, n: int = 1) -> None:
    counts.setdefault(key, [0, 0, 0])[column] += n


def _rows(counts: KeyCounts) -> list[list[Any]]:
    """`[task, source, read, invalid, duplicates]` rows, as events record them."""
    return [[*key, *values] for key, values in sorted(counts.items())]


def _totals(counts: KeyCounts) -> dict[str, int]:
    return {name: sum(values[column] for values in counts.values())
            for name, column in (("read", _READ), ("invalid", _INVALID), ("duplicates", _DUPLICATES))}


class Intake:
    """Runs candidates through the pipeline for one open kit."""

    def __init__(self, kit: Kit):
        self.kit = kit

    def run(self, items: Iterable[Positioned], *, defaults: Mapping[str, Any] | None = None,
            actor: str = "trainkit", reason: str = "", progress: Callable[[IntakeReport], None] | None = None,
            dry_run: bool = False, on_reject: RejectCallback | None = None,
            workers: int | str | None = None) -> IntakeReport:
        """Take `(position, record)` pairs; a record is an Example, a mapping of Example fields, an exception
        from a reader, or anything a `collect` plugin recognises. `defaults` fill fields a mapping lacks.
        `dry_run` does everything but store and notify. `on_reject(position, record, reasons)` is called for
        every record that was not stored, or was stored as rejected. `workers` (default `intake.workers`):
        worker processes that normalise and `prepare` batches ahead of this one (0: none; see intake_parallel)."""
        report = IntakeReport(dry_run=dry_run)
        batch_run = _BatchRun(self.kit, defaults or {}, actor, reason, dry_run, on_reject, report)
        size = self.kit.settings.batch_size
        iterator = iter(items)
        workers = self.kit.settings.intake_workers if workers is None else workers
        if workers:  # 0, the default, is serial (and leaves intake_parallel unimported)
            from .intake_parallel import run_parallel, worker_count

            workers = worker_count(workers)  # "auto" on few cores is 0
        if workers:
            run_parallel(batch_run, iterator, size, workers, progress)
        else:
            while True:
                with gc_paused_on_main_thread():  # reading a batch makes as many objects as judging it
                    batch = list(itertools.islice(iterator, size))
                    if not batch:
                        break
                    batch_run.run(batch)
                    del batch  # freed while paused, so the collector's next run does not walk it
                if progress is not None:
                    progress(report)
        batch_run.finish()
        return report


class _BatchRun:
    """The pipeline steps for the batches of one `Intake.run` call."""

    def __init__(self, kit: Kit, defaults: Mapping[str, Any], actor: str, reason: str, dry_run: bool,
                 on_reject: RejectCallback | None, report: IntakeReport):
        self.kit, self.defaults, self.actor, self.reason = kit, defaults, actor, reason
        self.dry_run, self.on_reject, self.report = dry_run, on_reject, report
        self.seen: set[tuple[str, str]] = set()  # a dry run stores nothing, so it remembers what it would have
        self.skipped: dict[str, set[str]] = {"sources": set(), "tasks": set()}
        self.skipped_by: KeyCounts = {}  # the counts of the batches that stored nothing
        #: The next batch's examples per record and `prepare` values, made by a worker (intake_parallel), or None.
        self.made: list[Any] | None = None
        self.prepared: assessment.Prepared | None = None

    def run(self, batch: list[Positioned]) -> None:
        """One batch through the pipeline: normalise, judge, store, count, notify; on the main thread with the
        cyclic garbage collector paused (gc_pause: a batch makes tens of thousands of objects and no cycles)."""
        with gc_paused_on_main_thread():
            try:
                self._run(batch)
            finally:
                tokens.new_batch()  # (again: its texts are freed while the collector is paused)

    def _run(self, batch: list[Positioned]) -> None:
        started = time.perf_counter()
        self.report.read += len(batch)
        tokens.new_batch()  # the shared tokenisation caches one batch's texts at a time
        origins: dict[str, Positioned] = {}
        counts: KeyCounts = {}
        examples = list(self._normalise(batch, origins, counts))
        sources = sorted({ex.source for ex in examples})
        tasks = sorted({ex.task for ex in examples})
        decided = self._judge(examples, counts) if examples else []
        event, inserted = self._store(decided, counts, sources, tasks)
        self._tally(decided, inserted, origins)
        if not self.dry_run:
            _instrument(time.perf_counter() - started, decided, inserted, counts)
        if event is not None and event.example_ids:
            self.kit.notify(event)
        elif not self.dry_run:  # the batch changed nothing: its counts still belong in the record
            self.skipped["sources"].update(sources)
            self.skipped["tasks"].update(tasks)
            for key, values in counts.items():
                for column, n in enumerate(values):
                    _count(self.skipped_by, key, column, n)

    def _judge(self, examples: list[Example], counts: KeyCounts) -> list[Example]:
        """Drop duplicates (counted per task and source), then validate, score and decide the status of the rest.
        Duplicates go first so that no validator compares an example with a copy of the batch that is never
        stored (a near-duplicate finding named one), and a re-run's stored batches cost no judging."""
        kept, duplicates = self._dedup(examples)
        self.report.duplicates += duplicates
        dropped = Counter((ex.task, ex.source) for ex in examples) - Counter((ex.task, ex.source) for ex in kept)
        for key, n in dropped.items():
            _count(counts, key, _DUPLICATES, n)
        if not kept:
            return []
        prepared = assessment.prepare(self.kit, kept, self.prepared)  # a worker may have made them
        findings = assessment.validate(self.kit, kept, prepared)
        scored = assessment.score(self.kit, kept, findings, prepared)
        rules = assessment.BatchRules(self.kit)
        decided = [assessment.decide(self.kit, ex, list(ex.findings) + findings.get(ex.id, []), scores, rules=rules)
                   for ex, scores in zip(kept, scored, strict=True)]
        return assessment.cap_synthetic(self.kit, decided)

    def _store(self, decided: list[Example], counts: KeyCounts, sources: list[str], tasks: list[str]
               ) -> tuple[Event | None, set[str]]:
        """Insert the batch in one transaction with its `added` event (carrying the batch's counts); returns
        the event (None in a dry run or for an empty batch) and the ids actually inserted (a dry run: all)."""
        if not decided:
            return None, set()
        if self.dry_run:
            return None, {ex.id for ex in decided}
        event = Event(kind="added", example_ids=[ex.id for ex in decided], actor=self.actor, reason=self.reason,
                      details={"sources": sources, "tasks": tasks,
                               "rejected": [ex.id for ex in decided if ex.status == "rejected"],
                               **_totals(counts), "by": _rows(counts)})
        result = self.kit.store.insert_examples(decided, event)
        self.report.duplicates += len(result.duplicates)
        return attrs.evolve(event, example_ids=result.inserted), set(result.inserted)

    def _tally(self, decided: list[Example], inserted: set[str], origins: dict[str, Positioned]) -> None:
        """Count each inserted example in the report by status, and hand the rejected ones to `on_reject`."""
        report = self.report
        for ex in decided:
            if ex.id not in inserted:
                continue
            report.stored += 1
            if len(report.ids) < MAX_KEPT_IDS:
                report.ids.append(ex.id)
            counter = _STATUS_COUNTERS[ex.status]
            setattr(report, counter, getattr(report, counter) + 1)
            if ex.status == "candidate" and any(f.code == assessment.SYNTHETIC_CAP_CODE for f in ex.findings):
                report.held += 1
            if ex.status != "rejected":
                continue
            errors = [f for f in ex.findings if f.severity == "error"]
            for finding in errors:
                report.count_code(finding.code)
            if self.on_reject is not None:
                position, record = origins[ex.id]
                self.on_reject(position, record, [f"{f.field or 'example'}: {f.message} [{f.code}]" for f in errors])

    def finish(self) -> None:
        """One "skipped" event for all the batches of the run that stored nothing (not one per batch: a re-run
        of a million-record import would otherwise add a thousand events)."""
        if self.skipped_by:
            self.kit.store.append_event(Event(
                kind="skipped", actor=self.actor, reason=self.reason,
                details={"sources": sorted(self.skipped["sources"]), "tasks": sorted(self.skipped["tasks"]),
                         **_totals(self.skipped_by), "by": _rows(self.skipped_by)}))

    def _normalise(self, batch: list[Positioned], origins: dict[str, Positioned],
                   counts: KeyCounts) -> Iterator[Example]:
        """The batch's examples; each record is counted as read (and invalid) under one (task, source): that of
        the first example it made, else the one its fields name, since one batch can hold several."""
        made = self.made or [None] * len(batch)
        for (position, record), premade in zip(batch, made, strict=True):
            if isinstance(record, BaseException):  # a reader's or mapper's complaint, maybe with the raw record
                self._problem(position, str(record), getattr(record, "record", None))
                complaint_key = self._key_of(getattr(record, "record", None))
                _count(counts, complaint_key, _READ)
                _count(counts, complaint_key, _INVALID)
                continue
            key: tuple[str, str] | None = None
            try:
                for example in self._examples(record) if premade is None else _replay(premade):
                    origins[example.id] = (position, record)
                    if key is None:
                        key = (example.task, example.source)
                        _count(counts, key, _READ)
                    yield example
            except TrainkitError as exc:
                self._problem(position, str(exc), record)
                if key is None:
                    key = self._key_of(record)
                    _count(counts, key, _READ)
                _count(counts, key, _INVALID)

    def _key_of(self, record: Any) -> tuple[str, str]:
        """(task, source) a record that never became an example was meant for, as far as it says."""
        values = _fields(record if isinstance(record, Mapping) else {}, self.defaults, self.kit.settings.default_task)
        return str(values.get("task") or UNKNOWN), str(values.get("source") or _DEFAULT_SOURCE)

    def _candidates(self, record: Any) -> Iterable[Any]:
        if type(record) is dict:  # what every reader yields: the record is its own candidate
            return (record,)
        return candidates(self.kit, record)

    def _examples(self, record: Any) -> Iterator[Example]:
        for candidate in self._candidates(record):
            yield to_example(candidate, self.defaults, self.kit.settings.default_task)

    def _problem(self, position: str, message: str, record: Any) -> None:
        self.report.add_problem(Problem(position, message, record))
        if self.on_reject is not None:
            self.on_reject(position, record, [message])

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
        kept = [ex for key, ex in unique.items() if key not in stored and key not in self.seen]
        if self.dry_run:
            self.seen.update((ex.task, ex.content_hash) for ex in kept)
        return kept, len(examples) - len(kept)


def _replay(made: tuple[list[Example], str | None]) -> Iterator[Example]:
    """The examples a worker made of a record, then its complaint, as `_examples` would have yielded them."""
    examples, problem = made
    yield from examples
    if problem is not None:
        raise TrainkitError(problem)


def candidates(kit: Kit, record: Any) -> list[Any]:
    """The record itself, or what `collect` plugins make of a record that is not example data."""
    if isinstance(record, Example | Mapping):
        return [record]
    made: list[Any] = []
    for _plugin, result in call_each(kit.pm, "collect", record=record, context=kit):
        made.extend(result if isinstance(result, list) else [result])
    if not made:
        raise TrainkitError(f"expected a mapping of example fields, got {type(record).__name__} "
                            "(and no collect plugin recognises it)")
    return made


def to_example(record: Any, defaults: Mapping[str, Any], default_task: str | None = None) -> Example:
    """Normalise one record (an Example or a mapping of its fields) into an Example, or raise TrainkitError."""
    if type(record) is not dict:  # (an exact type check first: this runs for every record of an import)
        if isinstance(record, Example):
            check_values(record)
            return record
        if not isinstance(record, Mapping):
            raise TrainkitError(f"expected a mapping of example fields, got {type(record).__name__}")
    values = _fields(record, defaults, default_task)
    if "task" not in values:
        raise TrainkitError("task: missing (give --task, a 'task' field, or default_task in settings)")
    example = Example.from_record(values)
    check_values(example)
    try:
        example.content_hash  # noqa: B018 - computing it now reports values that are not JSON, per record
    except ValidationError:  # say which field, for text UTF-8 cannot encode (the hash says only "not valid UTF-8")
        found = text_problem(example.inputs, "inputs") or text_problem(example.outputs, "outputs")
        if found is None:
            raise
        raise ValidationError(found) from None
    return example


def check_values(example: Example) -> None:
    """Raise ValidationError for a value the store would change or refuse (NaN, a 64-bit overflow, a key
    that is not text; see json_values): this record is rejected saying where, and the rest of its batch goes on."""
    for part, value in (("inputs", example.inputs), ("outputs", example.outputs), ("metadata", example.metadata),
                        ("provenance", example.provenance)):  # a record may bring its own provenance
        if value and not _plain(value):  # (an empty or text-only part needs no walk; most are)
            problem = json_problem(value, part)
            if problem is not None:
                raise ValidationError(problem)
    # text that UTF-8 cannot encode (a lone surrogate): inputs and outputs are refused by the content hash;
    # labels, metadata and provenance reached the store, which failed the whole batch with a traceback
    stored_as_text: tuple[tuple[str, Any], ...] = (
        ("domain", example.domain), ("topic", example.topic), ("difficulty", example.difficulty),
        ("metadata", example.metadata), ("provenance", example.provenance))
    for part, text in stored_as_text:
        if text and not _writable(text):
            raise ValidationError(text_problem(text, part) or f"{part}: cannot be stored as JSON")


def _writable(value: Any) -> bool:
    """Whether the store's JSON writer takes `value` (an ASCII label without a call)."""
    if type(value) is str and value.isascii():
        return True
    try:
        orjson.dumps(value)
    except TypeError:  # orjson's JSONEncodeError is one
        return False
    return True


def _plain(value: Any) -> bool:
    """A dict of text keys to text values: JSON as it is (the fast path of `json_problem`, without its call)."""
    if type(value) is not dict:
        return False
    for key, item in value.items():
        if type(key) is not str or type(item) is not str:
            return False
    return True


_DEFAULT_SOURCE: str = str(attrs.fields(Example).source.default)


def _fields(record: Mapping[str, Any], defaults: Mapping[str, Any], default_task: str | None) -> dict[str, Any]:
    """A record's fields as its Example gets them: over `defaults`, with `default_task` when it names no task."""
    values = {**defaults, **record}
    if "task" not in values and default_task:
        values["task"] = default_task
    return values
