"""Budgeted valuation runs: evaluate seeded random demo subsets on one fixed validation set, as evidence for
`value` when the stored optimization runs show too few examples as demos.

    design (stored plan: pool, validation set, demos per candidate, seed) -> claim slots (one per candidate)
        -> set the slot's demos on a fresh program, score it on the validation set under LMCalls
        -> store the candidate (under the valuation's own id) -> finish the slot

Why it is built this way:
- The validation set is a seeded split of the accepted examples and is never shown as a demo; the rest is the
  pool of demos. Candidate i's demos are positions [i*k, (i+1)*k) of a chain of seeded permutations of the
  pool, so every example is shown as evenly as the budget allows (N*k/P times, give or take one) instead of
  the uneven counts independent draws give: the ridge estimate of `demo_value` needs every example seen.
- Demos go to every predictor of the program, as DSPy's LabeledFewShot does: the valuation measures examples
  as labeled demonstrations, with no bootstrapping that would add LM calls and noise.
- The design is stored in a plan (generation_plans / plan_slots, the same atomic claims and leases as
  bootstrap), named by a digest of the pool, the validation set, k and the seed: workers sharing one store
  share one valuation, a re-run resumes it, and a larger budget adds slots to the same plan. The design is
  read from the plan, never recomputed, so a worker starting after the data changed still works on the same
  experiment.
- A finished slot's candidate is stored (insert-or-keep by position) before the slot is marked done; a claimed
  slot whose candidate is already stored (the worker died in between) is closed without a call. So a killed
  worker loses at most the slots it was evaluating, never repeats a finished one.
- Candidates are stored under the valuation's id, not as an optimization run: champions, `trainkit runs`,
  triggers, weak spots and alerts read runs and never see a valuation; Evidence reads both.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError
from ..generation.plan import PlanSlot, SlotResult, new_owner, owner_is_dead

if TYPE_CHECKING:
    from ..kit import Kit

PREFIX = "valuation:"
NO_CELL = (None, None, None)


@attrs.define
class ValuationRunReport:
    """What a valuation run did (or, with `dry_run`, would do): the plan, its design, how many candidates are
    planned / done (before and by this worker) / failed / left, and the LM calls made or needed."""

    task: str
    plan: str
    candidates_id: str
    budget: int
    demos: int
    pool: int
    validation: int
    expected_inclusions: float
    done_before: int = 0
    evaluated: int = 0
    recovered: int = 0
    failed: int = 0
    remaining: int = 0
    lm_calls: int = 0
    dry_run: bool = False
    failures: dict[str, int] = attrs.field(factory=dict)
    lm: dict[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _order(seed: Any, ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())


def design(accepted: list[str], *, demos: int, val_size: int, seed: int) -> dict[str, Any]:
    """The plan config: `val_ids` (seeded split) and `pool` (the rest, the demo candidates), `demos` per
    candidate and `seed`. Raises ConfigError when the split leaves too few examples for k demos."""
    ordered = _order(f"valuation-split:{seed}", sorted(accepted))
    val_ids, pool = sorted(ordered[:val_size]), sorted(ordered[val_size:])
    if val_size < 1 or len(pool) <= demos:
        raise ConfigError(f"a valuation needs a validation set and more than {demos} other accepted examples: the "
                          f"task has {len(accepted)}; lower --val-size or --demos, or accept more examples")
    return {"val_ids": val_ids, "pool": pool, "demos": demos, "seed": seed}


def plan_name(task: str, config: dict[str, Any]) -> str:
    digest = hashlib.sha256(repr((config["pool"], config["val_ids"], config["demos"], config["seed"])).encode())
    return f"{PREFIX}{task}:{digest.hexdigest()[:16]}"


def candidates_id(plan: str) -> str:
    """The id the plan's candidates are stored under (not a run id: no run has it)."""
    return "valuation-" + hashlib.sha256(plan.encode()).hexdigest()[:20]


def slot_demos(config: dict[str, Any], index: int) -> list[str]:
    """Candidate `index`'s demo ids: its k positions in the chain of seeded permutations of the pool."""
    pool, k = config["pool"], config["demos"]
    chosen: list[str] = []
    for position in range(index * k, (index + 1) * k):
        round_, offset = divmod(position, len(pool))
        shuffled = list(pool)
        random.Random(f"{config['seed']}:{round_}").shuffle(shuffled)
        chosen.append(shuffled[offset])
    return list(dict.fromkeys(chosen))


def valuations(kit: Kit, task: str) -> list[dict[str, Any]]:
    """The stored valuation plans of `task` (name, config, ...), oldest first."""
    return [p for p in kit.store.list_plans() if p["name"].startswith(PREFIX) and p["task"] == task]


def run_valuation(kit: Kit, task: str, *, budget: int, demos: int = 4, val_size: int = 20, seed: int = 0,
                  program: Any = None, metric: Any = None, lm: Any = None, dry_run: bool = False,
                  lease: float = 300.0, concurrency: int | None = None,
                  progress: Callable[[ValuationRunReport], None] | None = None) -> ValuationRunReport:
    """Evaluate `budget` candidates of the task's valuation design (see the module docstring), resuming the
    stored plan of the same design; with `dry_run`, only count what is left. Returns the report."""
    from ..store import ExampleQuery

    accepted = list(kit.store.iter_ids(ExampleQuery(task=task, status="accepted")))
    config = design(accepted, demos=demos, val_size=val_size, seed=seed)
    name = plan_name(task, config)
    stored = kit.store.plan_info(name)
    if stored is not None:
        config = stored["config"]
    report = ValuationRunReport(task=task, plan=name, candidates_id=candidates_id(name), budget=budget,
                                demos=config["demos"], pool=len(config["pool"]), validation=len(config["val_ids"]),
                                expected_inclusions=round(budget * config["demos"] / len(config["pool"]), 2),
                                dry_run=dry_run)
    have = {n for n in kit.store.candidate_positions(report.candidates_id) if n < budget} if stored else set()
    report.done_before = len(have)
    if dry_run:
        report.remaining = budget - len(have)
        report.lm_calls = report.remaining * report.validation
        return report
    _Worker(kit, task, config, report, program=program, metric=metric, lm=lm, lease=lease,
            concurrency=concurrency, progress=progress).run()
    return report


class _Worker:
    """One worker's pass over a valuation plan."""

    def __init__(self, kit: Kit, task: str, config: dict[str, Any], report: ValuationRunReport, *, program: Any,
                 metric: Any, lm: Any, lease: float, concurrency: int | None,
                 progress: Callable[[ValuationRunReport], None] | None):
        from ..generation.calls import LMCalls
        from ..optimization.resolve import program_factory, program_lm, resolve_metric

        self.kit, self.task, self.config, self.report = kit, task, config, report
        self.make, _ = program_factory(kit, task, program)
        self.metric, self.metric_ref = resolve_metric(kit, task, metric)
        settings = kit.settings.lm_for(task, "program")
        if concurrency is not None:
            settings = attrs.evolve(settings, concurrency=concurrency)
        self.calls = LMCalls(program_lm(kit, task, lm), settings)
        self.lease, self.progress = lease, progress
        self.owner = new_owner()
        self.store = kit.store
        self.val = self._examples(config["val_ids"])
        if not self.val:
            raise ConfigError(f"valuation {report.plan}: none of its {len(config['val_ids'])} validation examples "
                              "is in the store as a DSPy example any more; value with another --seed")
        self._demo_cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _examples(self, ids: list[str]) -> dict[str, Any]:
        """`{id: dspy.Example}` of the stored examples among `ids` (deleted or unconvertible ones are left out)."""
        found = [e for e in (self.kit.get(i) for i in ids) if e is not None]
        converted = self.kit.convert(found, "dspy")
        skipped = {example_id for example_id, _ in converted.skipped}
        return dict(zip([e.id for e in found if e.id not in skipped], converted.items, strict=True))

    def run(self) -> None:
        name, budget = self.report.plan, self.report.budget
        self.store.ensure_plan(name, self.task, self.config, [(*NO_CELL, i) for i in range(budget)])
        self.store.release_claims(name, owner_is_dead=owner_is_dead)  # a killed worker's slots, at once
        self.store.reopen_failed_slots(name, max_index=budget)
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True, name="trainkit-value-lease")
        heartbeat.start()
        try:
            for outcome in self.calls.run(self.evaluate, self.slots()):
                slot: PlanSlot = outcome.item
                if outcome.error is not None:
                    self.report.failed += 1
                    reason = outcome.error.reason
                    self.report.failures[reason] = self.report.failures.get(reason, 0) + 1
                    self.store.finish_slots(name, self.owner, [SlotResult(*NO_CELL, slot.index, "failed",
                                                                          reason=reason, error=outcome.error.message,
                                                                          attempt=slot.attempts)])
                else:
                    self.store.add_candidates(self.report.candidates_id, [(slot.index, outcome.value)])
                    self.store.finish_slots(name, self.owner, [SlotResult(*NO_CELL, slot.index, "done",
                                                                          attempt=slot.attempts)])
                    self.report.evaluated += 1
                self.report.lm = self.calls.stats.to_dict()
                if self.progress is not None:
                    self.progress(self.report)
        finally:
            stop.set()
            self.store.release_claims(name, self.owner)
            self.report.lm = self.calls.stats.to_dict()
            self.report.lm_calls = self.report.lm.get("calls", 0)
            counts = self.store.slot_counts(name, max_index=budget)
            self.report.remaining = counts.get("pending", 0) + counts.get("claimed", 0)

    def slots(self) -> Any:
        """Claimed slots, a few at a time; a slot whose candidate a dead worker stored is closed without a call."""
        name = self.report.plan
        while True:
            claimed = self.store.claim_slots(name, self.owner, self.calls.concurrency, self.lease,
                                             max_index=self.report.budget)
            if not claimed:
                return
            stored = self.store.candidate_positions(self.report.candidates_id)
            for slot in claimed:
                if slot.index in stored:
                    self.store.finish_slots(name, self.owner, [SlotResult(*NO_CELL, slot.index, "done",
                                                                          attempt=slot.attempts)])
                    self.report.recovered += 1
                    continue
                for example_id in slot_demos(self.config, slot.index):
                    self._demo(example_id)  # loaded here, in the main thread: workers only read the cache
                yield slot

    def evaluate(self, slot: PlanSlot) -> dict[str, Any]:
        """In an LMCalls thread: the slot's program (its demos on every predictor) scored on the validation set.
        A failing call raises, so LMCalls retries the slot (with DSPy's cache, answered calls are not paid twice)."""
        demo_ids = [i for i in slot_demos(self.config, slot.index) if self._demo(i) is not None]
        program = self.make()
        for predictor in program.predictors():
            predictor.demos = [self._demo(i) for i in demo_ids]
        subscores = []
        for example in self.val.values():
            prediction = program(**example.inputs())
            subscores.append(float(self.metric(example, prediction)))
        score = 100.0 * sum(subscores) / len(subscores) if subscores else 0.0
        return {"seed": slot.index, "score": score, "demo_ids": demo_ids, "subscores": subscores}

    def _demo(self, example_id: str) -> Any:
        with self._lock:
            if example_id not in self._demo_cache:
                self._demo_cache[example_id] = self._examples([example_id]).get(example_id)
            return self._demo_cache[example_id]

    def _heartbeat(self, stop: threading.Event) -> None:
        renewed = False
        while not stop.wait(self.lease / 3):
            try:
                self.store.renew_claims(self.report.plan, self.owner, self.lease)
                renewed = True
            except Exception:  # noqa: BLE001 - a missed renewal only risks a lease; the run goes on
                self.kit.log.warning("could not renew the leases of plan %s", self.report.plan, exc_info=True)
        database = getattr(self.store, "db", None)
        if renewed and database is not None and not database.is_closed():
            database.close()  # this thread's own connection (peewee keeps one per thread)
