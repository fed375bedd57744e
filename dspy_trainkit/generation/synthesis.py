"""Synthetic data: run a strategy over seed examples (or over the task's cells) and send what it makes through
the one intake pipeline, with source "synthetic" and provenance (strategy, parent example, model, seed).

Strategies are plugins registered through the `synthesize` hook (`register(strategy)`); see `strategies()` for
what a strategy object must have. A strategy only makes candidates: validation, exact and near-duplicate checks,
scoring, the synthetic-share cap (`max_synthetic_ratio`) and the status decision are intake's, as for every
other source. What a strategy could not make (an LM call that failed, an answer DSPy could not parse, a template
whose check failed) it reports with `context.fail(reason, ...)`: failures are counted and shown, never raised.

A run is reproducible: seeds are drawn with `seed`, strategies draw their randomness from `context.random(...)`,
so the same seed gives the same candidates, and a re-run stores nothing twice (exact dedup by content hash).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import PluginError, TrainkitError, ValidationError
from ..models import Example
from ..plugin_manager import Registration, collect_registrations
from ..store import ExampleQuery
from .diversity import Cell, DiversityCounter

if TYPE_CHECKING:
    import pluggy

    from ..kit import Kit
    from ..settings import TaskSettings

STRATEGY_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
MAX_KEPT_FAILURES = 100
SEED_ID_CHUNK = 500
#: At least this many seeds are drawn (when that many match), so strategies that can use only some seeds
#: (harder: not those at the top level) still find enough; seeds beyond `count` are simply not asked for.
SEED_POOL = 1000


# ---- the registry -------------------------------------------------------------------------------------------

def strategies(pm: pluggy.PluginManager) -> dict[str, Registration]:
    """Every registered strategy by name. A strategy is an object with `name` (lower-case word, `-` and `_`
    allowed), `description` (one line: what it is for), `needs_lm` (bool) and `generate(seeds, count, context,
    **options)`; `needs_seeds` (bool, default True) says whether it works from seed examples."""

    def make(plugin: str, strategy: Any) -> Registration:
        name = getattr(strategy, "name", None)
        if not isinstance(name, str) or not STRATEGY_NAME.match(name):
            raise ValueError(f"strategy name {name!r} must be a lower-case word such as 'paraphrase'")
        description = getattr(strategy, "description", None)
        if not isinstance(description, str) or not description.strip() or "\n" in description.strip():
            raise ValueError(f"strategy {name!r} needs a one-line `description` saying what it is for")
        needs_lm = getattr(strategy, "needs_lm", None)
        if not isinstance(needs_lm, bool):
            raise ValueError(f"strategy {name!r} needs `needs_lm` = True or False")
        if not callable(getattr(strategy, "generate", None)):
            raise ValueError(f"strategy {name!r} has no generate(seeds, count, context, **options) method")
        return Registration(key=name, value=strategy, plugin=plugin, extra={
            "description": description.strip(), "needs_lm": needs_lm,
            "needs_seeds": bool(getattr(strategy, "needs_seeds", True))})

    return collect_registrations(pm, "synthesize", make)


def get_strategy(pm: pluggy.PluginManager, name: str) -> Registration:
    """The strategy registered as `name`, or an error listing the known ones."""
    known = strategies(pm)
    if name not in known:
        listed = ", ".join(sorted(known)) or "none (are the strategy plugins disabled?)"
        raise TrainkitError(f"unknown synthesis strategy {name!r}; known strategies: {listed} "
                            "(see `trainkit synthesize --list`)")
    return known[name]


def describe(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """What `trainkit synthesize --list` shows: name, plugin, needs_lm, needs_seeds, description."""
    return [{"name": r.key, "plugin": r.plugin, **r.extra} for r in
            sorted(strategies(pm).values(), key=lambda r: r.key)]


# ---- what a strategy gets -----------------------------------------------------------------------------------

@attrs.define(eq=False)
class SynthesisContext:
    """Everything a strategy's `generate` may use: the open kit, the task and its settings, the target cells, a
    seeded random source, the LM calls engine (LM strategies), and `fail` to report what could not be made."""

    kit: Kit
    task: str
    strategy: str
    seed: int
    cells: list[Cell]
    dry_run: bool = False
    lm: Any = None  # the generation dspy.LM: the caller's (tests, programs), or built once from the settings
    failures: Counter[str] = attrs.field(factory=Counter)
    failure_samples: list[dict[str, Any]] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)
    _calls: Any = None

    @property
    def settings(self) -> TaskSettings:
        return self.kit.settings.task(self.task)

    def fields(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """The task's declared (inputs, outputs), or None."""
        return self.kit.task_fields(self.task)

    def random(self, *parts: Any) -> random.Random:
        """A random source for one purpose, fixed by the run's seed, the strategy and `parts` (a cell, a seed
        example id): the same arguments give the same sequence in every run."""
        return random.Random(":".join(str(p) for p in (self.seed, self.strategy, *parts)))

    def topics(self, domain: str | None) -> tuple[str, ...]:
        """The task's topics for `domain` (the domain's override, else the task's)."""
        return self.settings.topics_for(domain)

    def difficulties(self, domain: str | None) -> tuple[str, ...]:
        """The task's difficulty levels for `domain`, easiest first."""
        return self.settings.difficulties_for(domain)

    def lm_calls(self) -> Any:
        """The LM calls engine for the task's generation LM (made once per run): `run(fn, items)` yields
        outcomes with concurrency, rpm limits and retries; `stats` counts calls, retries and tokens."""
        if self._calls is None:
            from .calls import LMCalls

            lm = self.lm if self.lm is not None else self.kit.lm(self.task, "generation")
            lm_settings = self.kit.settings.lm_for(self.task, "generation")
            self._calls = LMCalls(lm, attrs.evolve(lm_settings, model=getattr(lm, "model", None)))
        return self._calls

    @property
    def model(self) -> str | None:
        """The model string of the generation LM (what provenance records)."""
        if self.lm is not None:
            return getattr(self.lm, "model", None) or type(self.lm).__name__
        return self.kit.settings.lm_for(self.task, "generation").model

    def fail(self, reason: str, message: str = "", *, parent: str | None = None, count: int = 1) -> None:
        """Record `count` candidates that could not be made, under a short `reason` code (`lm-rate-limited`,
        `malformed-output`, `check-failed`, ...), with a message (redacted) and the seed example they came from."""
        from ..redaction import redact

        message = redact(message)
        self.failures[reason] += count
        if len(self.failure_samples) < MAX_KEPT_FAILURES:
            self.failure_samples.append({"reason": reason, "message": message, "parent": parent})

    def note(self, message: str) -> None:
        """Something the user should know about the run that is not a failure (a cell no template covers)."""
        if message not in self.notes:
            self.notes.append(message)


# ---- the report ---------------------------------------------------------------------------------------------

@attrs.define
class SynthesisReport:
    """What one synthesis run did. `made` = candidates the strategy produced = accepted + candidate + rejected +
    duplicates + invalid; `failures` counts what it was asked for but could not make. `held` counts accepted
    candidates kept as `candidate` by the task's `max_synthetic_ratio` (included in `candidate`). `seeds` is how
    many seed examples were selected, `parents` how many of them the made candidates came from."""

    task: str
    strategy: str
    count: int
    seed: int
    dry_run: bool = False
    model: str | None = None
    seeds: int = 0
    parents: int = 0
    made: int = 0
    accepted: int = 0
    candidate: int = 0
    rejected: int = 0
    duplicates: int = 0
    invalid: int = 0
    held: int = 0
    rejected_by_reason: dict[str, int] = attrs.field(factory=dict)
    failures: int = 0
    failures_by_reason: dict[str, int] = attrs.field(factory=dict)
    failure_samples: list[dict[str, Any]] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)
    lm: dict[str, Any] | None = None
    diversity: dict[str, Any] = attrs.field(factory=dict)
    ids: list[str] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)


# ---- running a strategy -------------------------------------------------------------------------------------

def synthesize(kit: Kit, task: str, strategy: str, count: int, *, query: ExampleQuery | None = None,
               seed: int = 0, dry_run: bool = False, options: Mapping[str, Any] | None = None, lm: Any = None,
               check_lm: bool = True, actor: str = "synthesize",
               progress: Callable[[SynthesisReport], None] | None = None) -> SynthesisReport:
    """Make up to `count` synthetic examples of `task` with `strategy` and send them through intake.

    `query` selects the seed examples (default: the task's accepted examples) and, by its domain/topic/
    difficulty, the target cells; `seed` fixes every random choice; `options` go to the strategy's `generate`;
    `lm` replaces the task's generation LM; `check_lm` makes one tiny call first so that a missing or unreachable
    LM is one clear error before any work; `dry_run` runs the strategy and intake's checks but stores nothing.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise TrainkitError(f"count must be a whole number >= 1, got {count!r}")
    registration = get_strategy(kit.pm, strategy)
    kit.require_task(task)  # a misspelt task is "unknown task", not "no seed examples match"
    query = attrs.evolve(query or ExampleQuery(), task=task, limit=None, offset=0)
    given_lm = lm
    if registration.extra["needs_lm"] and lm is None:
        lm = kit.lm(task, "generation")  # built once; a missing model or key variable is an LMError now
    context = SynthesisContext(kit=kit, task=task, strategy=strategy, seed=seed, cells=_cells(kit, task, query),
                               dry_run=dry_run, lm=lm)
    report = SynthesisReport(task=task, strategy=strategy, count=count, seed=seed, dry_run=dry_run)
    seeds: list[Example] = []
    if registration.extra["needs_seeds"]:
        seeds = load_seeds(kit, query, max(count, SEED_POOL), random.Random(f"{seed}:seeds"))
        if not seeds:
            raise TrainkitError(f"strategy {strategy!r} needs seed examples and none match the selection "
                                f"({_describe_query(query)}); add or accept examples first, or select others "
                                "with --from / --where / --status")
    report.seeds = len(seeds)
    if registration.extra["needs_lm"]:  # after the seeds: an empty selection costs no LM call
        report.model = context.model
        if given_lm is None and check_lm and not dry_run:
            from .lm import check_lm as check

            check(lm, purpose="generation", task=task, settings=kit.settings.lm_for(task, "generation"))
    # coverage: a strategy without seeds (template) makes examples in the selection's cells, so those are its
    # target; one with seeds is measured over the task's cells, since harder/easier/topic-transfer make
    # examples in other cells than their seeds'
    counter = DiversityCounter(cells=context.settings.cells() if registration.extra["needs_seeds"]
                               else context.cells)
    parents: set[str] = set()

    def on_progress(intake_report: Any) -> None:
        _copy_counts(report, intake_report, context)
        if progress is not None:
            progress(report)

    made = _candidates(registration, seeds, count, context, options or {}, report, counter, parents)
    intake_report = kit.intake(((f"candidate {n}", record) for n, record in enumerate(made, start=1)),
                               defaults={"task": task, "source": "synthetic"}, actor=actor,
                               reason=f"synthesize {strategy}", dry_run=dry_run,
                               progress=on_progress)
    _copy_counts(report, intake_report, context)
    report.ids = list(intake_report.ids)
    report.diversity = counter.metrics()
    report.parents = len(parents)
    if context._calls is not None:
        report.lm = context._calls.stats.to_dict()
    return report


def _copy_counts(report: SynthesisReport, intake_report: Any, context: SynthesisContext) -> None:
    report.accepted, report.candidate = intake_report.accepted, intake_report.candidates
    report.rejected, report.duplicates = intake_report.rejected, intake_report.duplicates
    report.invalid, report.held = intake_report.invalid, intake_report.held
    report.rejected_by_reason = dict(Counter(intake_report.rejected_by_code).most_common())
    report.failures = sum(context.failures.values())
    report.failures_by_reason = dict(context.failures.most_common())
    report.failure_samples = list(context.failure_samples)
    report.notes = list(context.notes)


def _candidates(registration: Registration, seeds: list[Example], count: int, context: SynthesisContext,
                options: Mapping[str, Any], report: SynthesisReport, counter: DiversityCounter,
                parents: set[str]) -> Iterator[Any]:
    """The strategy's candidates as intake records: task, source "synthetic" and provenance set, at most
    `count` of them, each counted for the diversity metrics. A strategy that raises something other than a
    TrainkitError is reported as a PluginError naming its plugin."""
    strategy = registration.value
    by_id = {ex.id: ex for ex in seeds}
    try:
        produced = strategy.generate(seeds, count, context, **options)
        for candidate in produced:
            if report.made >= count:
                break
            record = _as_record(candidate, context, registration, by_id)
            if record is None:
                continue
            report.made += 1
            parent = record["provenance"].get("parent")
            if isinstance(parent, str):
                parents.add(parent)
            counter.add(record.get("inputs") or {}, record.get("outputs") or {},
                        (record.get("domain"), record.get("topic"), record.get("difficulty")))
            yield record
    except TrainkitError:
        raise
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise TrainkitError(f"strategy {registration.key!r} does not take option(s) "
                                f"{', '.join(sorted(options))}: {exc}") from None
        raise PluginError(f"plugin {registration.plugin!r} failed in strategy {registration.key!r}: "
                          f"TypeError: {exc}", plugin=registration.plugin, hook="synthesize") from exc
    except Exception as exc:
        raise PluginError(f"plugin {registration.plugin!r} failed in strategy {registration.key!r}: "
                          f"{type(exc).__name__}: {exc}", plugin=registration.plugin, hook="synthesize") from exc


def _as_record(candidate: Any, context: SynthesisContext, registration: Registration,
               seeds: Mapping[str, Example]) -> dict[str, Any] | None:
    """A candidate (Example or mapping) as a mapping of example fields for intake, with the run's provenance."""
    if isinstance(candidate, Example):
        record = candidate.to_dict()
        for key in ("id", "status", "scores", "quality", "findings", "content_hash", "created_at", "updated_at",
                    "last_used_at"):
            record.pop(key, None)
    elif isinstance(candidate, Mapping):
        record = dict(candidate)
    else:
        context.fail("bad-candidate", f"strategy made a {type(candidate).__name__}, not an Example or a mapping")
        return None
    provenance = dict(record.get("provenance") or {})
    parent = provenance.get("parent")
    if parent is not None and parent in seeds:
        seed_example = seeds[parent]
        for label in ("domain", "topic", "difficulty"):
            record.setdefault(label, getattr(seed_example, label))
    provenance.update({"strategy": registration.key, "plugin": registration.plugin, "random_seed": context.seed})
    if registration.extra["needs_lm"]:
        provenance.setdefault("model", context.model)
    record.update(task=context.task, source="synthetic", provenance=provenance)
    return record


def _cells(kit: Kit, task: str, query: ExampleQuery) -> list[Cell]:
    """The task's cells, narrowed by the selection's domain, topic and difficulty (equality filters or `=`
    conditions)."""
    wanted: dict[str, object] = {k: v for k, v in query.equalities().items() if k in ("domain", "topic", "difficulty")}
    for field, op, value in query.where:
        if op == "=" and field in ("domain", "topic", "difficulty"):
            wanted[field] = value
    positions = {"domain": 0, "topic": 1, "difficulty": 2}
    return [cell for cell in kit.settings.task(task).cells()
            if all(cell[positions[k]] == v for k, v in wanted.items())]


def load_seeds(kit: Kit, query: ExampleQuery, count: int, rng: random.Random) -> list[Example]:
    """Up to `count` seed examples matching `query` (default status: accepted), drawn at random with `rng` when
    more match, then ordered round-robin over their cells so that a run spreads over topics and levels."""
    if query.status is None and query.ids is None and not any(f == "status" for f, _, _ in query.where):
        query = attrs.evolve(query, status="accepted")
    ids = list(kit.store.iter_ids(attrs.evolve(query, order="created")))
    if len(ids) > count:
        chosen = set(rng.sample(ids, count))
        ids = [example_id for example_id in ids if example_id in chosen]
    examples: list[Example] = []
    for start in range(0, len(ids), SEED_ID_CHUNK):
        examples.extend(kit.store.iter_examples(ExampleQuery(ids=tuple(ids[start:start + SEED_ID_CHUNK]))))
    return interleave(sorted(examples, key=lambda ex: ex.id))


def interleave(examples: Sequence[Example]) -> list[Example]:
    """Examples ordered round-robin over their (domain, topic, difficulty) cells, cells in sorted order."""
    groups: dict[tuple[str, str, str], list[Example]] = {}
    for ex in examples:
        groups.setdefault((ex.domain or "", ex.topic or "", ex.difficulty or ""), []).append(ex)
    ordered: list[Example] = []
    queues = [groups[key] for key in sorted(groups)]
    for round_ in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[round_] for q in queues if round_ < len(q))
    return ordered


def _describe_query(query: ExampleQuery) -> str:
    parts = [f"{k}={v}" for k, v in query.equalities().items()]
    parts += [f"{f}{op}{'' if v is None else v}" for f, op, v in query.where]
    if query.status is None:
        parts.append("status=accepted")
    return ", ".join(parts)


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """`KEY=VALUE` strategy options from the command line; values are read as TOML values when they parse
    (`3`, `true`, `["a", "b"]`), else kept as text."""
    import tomllib

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValidationError(f"--option {pair!r}: use KEY=VALUE, with KEY a word such as personas")
        try:
            options[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            options[key] = raw
    return options
