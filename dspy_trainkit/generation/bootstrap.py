"""Bootstrap: fill a task's domain x topic x difficulty grid with examples made by its DSPy program.

    plan (stored slots) -> claim a few -> generate under LMCalls (threads, rpm, retries)
         -> attach the new example ids to their slots -> the one intake pipeline (source "bootstrap")
         -> finish the slots (done | failed with reason | pending again after a duplicate)

Why it is built this way:
- The plan is in the store, so a re-run, a run after a crash, or a second worker against the same PostgreSQL
  store only fills what is missing (see plan.py for claims and leases).
- Results go through `kit.intake` like every other source: validation, dedup, scoring and the status decision
  are not repeated here. A slot ends with at most one stored example, whatever its status; a rejected example
  is stored as rejected with its findings (reviewable), which finishes its slot.
- A result that is an exact duplicate of a stored example is not stored; its slot is generated again, at most
  `max_attempts` times per run, each time with a higher temperature and a new rollout id (which also bypasses
  DSPy's cache), so the LM is not asked the same question the same way again. After that the slot fails with
  reason "duplicate".
- LM failures that survive LMCalls' retries fail their slot with the reason (rate_limit, server_error,
  timeout, connection, malformed, auth, other). A re-run tries failed slots again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import TrainkitError
from ..models import Example
from .calls import LMCalls, Outcome
from .diversity import DiversityCounter
from .plan import Cell, PlanSlot, SlotResult, default_plan_name, new_owner, owner_is_dead, plan_cells, plan_slots
from .program import Generator, check_cells, load_generator

if TYPE_CHECKING:
    from ..kit import Kit

#: A slot claimed this often in one run without being finished fails with reason "lease" instead of being
#: claimed again (otherwise workers whose leases run out during their calls would take it from each other forever).
MAX_CLAIMS = 10
#: How many failed slots a report lists one by one (all are counted, and all are in the plan's rows).
MAX_LISTED_FAILURES = 100


@attrs.define
class BootstrapReport:
    """What a bootstrap did. Slot counts add up: `planned = done + failed + pending + in_progress` (in_progress:
    claimed by another worker still running), and
    `done = done_before + made + recovered + by_others`, where `made = accepted + candidates + rejected`
    (examples this run stored) and `recovered` are slots whose example a crashed run had stored already.
    `duplicates` counts generations dropped as duplicates (their slots were generated again or failed), `lost`
    results dropped because the slot's lease ran out and another worker took it over. `stale` counts the stored
    plan's slots of cells no longer in the task's settings (a topic or difficulty was removed): they are kept
    with their examples but neither filled nor counted in the other numbers. `diversity` measures the examples
    this run stored (see diversity.py: distinct-1/-2 and coverage of the run's cells)."""

    task: str
    plan: str
    model: str | None = None
    program: str | None = None
    planned: int = 0
    done_before: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    in_progress: int = 0
    made: int = 0
    recovered: int = 0
    by_others: int = 0
    accepted: int = 0
    candidates: int = 0
    rejected: int = 0
    duplicates: int = 0
    lost: int = 0
    failures: dict[str, int] = attrs.field(factory=dict)
    failed_slots: list[dict[str, Any]] = attrs.field(factory=list)
    lm: dict[str, Any] = attrs.field(factory=dict)
    dry_run: bool = False
    to_make: int = 0
    cells: list[dict[str, Any]] = attrs.field(factory=list)
    interrupted: bool = False
    stale: int = 0
    diversity: dict[str, Any] = attrs.field(factory=dict)

    @property
    def complete(self) -> bool:
        """Nothing failed and nothing is left for this worker (slots other workers hold are theirs)."""
        return self.failed == 0 and self.pending == 0

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "complete": self.complete}


class _Run:
    """One bootstrap run of one worker."""

    def __init__(self, kit: Kit, task: str, plan: str, generator: Generator, calls: LMCalls, report: BootstrapReport,
                 *, domain: str | None, per_cell: int, lease: float, max_attempts: int,
                 progress: Callable[[BootstrapReport], None] | None, cells: list[Cell]):
        self.kit, self.task, self.plan, self.generator, self.calls = kit, task, plan, generator, calls
        self.cells = cells
        self.diversity = DiversityCounter(cells=cells)
        self.report, self.domain, self.per_cell, self.lease = report, domain, per_cell, lease
        self.max_attempts, self.progress = max_attempts, progress
        self.store = kit.store
        self.owner = new_owner()
        self.retry_pending = False
        base = calls.settings.temperature
        self.base_temperature = 0.7 if base is None else base

    # -- claiming ------------------------------------------------------------------------------------------
    def slots(self) -> Any:
        """Claimed slots, a few at a time as LMCalls asks for them; slots a crashed run finished are closed
        here without a call."""
        batch = max(1, self.calls.concurrency)
        while True:
            claimed = self.store.claim_slots(self.plan, self.owner, batch, self.lease, domain=self.domain,
                                             max_index=self.per_cell, cells=self.cells)
            if not claimed:
                return
            for slot in claimed:
                if slot.attempts > MAX_CLAIMS:
                    self._finish([self._failed(slot, "lease", f"claimed {slot.attempts - 1} times without being "
                                               "finished: workers crash, or calls outlast the lease (raise it)")])
                    continue
                if slot.example_id and self.store.get(slot.example_id) is not None:
                    self._finish([SlotResult(*slot.cell, slot.index, "done", example_id=slot.example_id,
                                             attempt=slot.attempts)])
                    self.report.recovered += 1
                    continue
                yield slot

    # -- generating (in LMCalls' worker threads) -------------------------------------------------------------
    def generate(self, slot: PlanSlot) -> dict[str, Any]:
        import dspy

        inputs = self.generator.cell_inputs(*slot.cell)
        options: dict[str, Any] = {"rollout_id": f"{self.plan}/{slot.key}/{slot.attempts}"}
        if slot.attempts > 1:  # a retry after a duplicate: ask differently
            options["temperature"] = min(2.0, self.base_temperature + 0.2 * (slot.attempts - 1))
        with dspy.context(lm=dspy.settings.lm.copy(**options)):
            prediction = self.generator.program(**inputs)
        return {"inputs": inputs, "outputs": self.generator.outputs_of(prediction, inputs),
                "temperature": options.get("temperature", self.calls.settings.temperature)}

    # -- storing (main thread) -------------------------------------------------------------------------------
    def store_batch(self, outcomes: list[Outcome]) -> None:
        results: list[SlotResult] = []
        made: list[tuple[PlanSlot, Example]] = []
        for outcome in outcomes:
            slot: PlanSlot = outcome.item
            if outcome.error is not None:
                results.append(self._failed(slot, outcome.error.reason, outcome.error.message, outcome.attempts))
                continue
            value = outcome.value
            try:
                example = Example(task=self.task, inputs=value["inputs"], outputs=value["outputs"],
                                  domain=slot.domain, topic=slot.topic, difficulty=slot.difficulty,
                                  source="bootstrap", provenance=self._provenance(slot, value))
                example.content_hash  # noqa: B018 - values that are not JSON fail here, per slot
            except (TrainkitError, TypeError, ValueError) as exc:
                results.append(self._failed(slot, "invalid", str(exc)))
                continue
            made.append((slot, example))
        if made:
            held = set(self.store.attach_slot_examples(self.plan, self.owner,
                                                       [(*s.cell, s.index, ex.id, s.attempts) for s, ex in made]))
            self.report.lost += sum(1 for s, _ex in made if (*s.cell, s.index) not in held)
            made = [(s, ex) for s, ex in made if (*s.cell, s.index) in held]  # a lost lease: the slot is not ours
        if made:
            problems: dict[str, str] = {}

            def on_reject(position: str, _record: Any, reasons: list[str]) -> None:
                problems[position] = "; ".join(reasons)

            intake = self.kit.intake(((s.key, ex) for s, ex in made), actor="bootstrap",
                                     reason=f"plan {self.plan}", on_reject=on_reject)
            stored = set(intake.ids)
            self.report.accepted += intake.accepted
            self.report.candidates += intake.candidates
            self.report.rejected += intake.rejected
            self.report.made += intake.stored
            for slot, example in made:
                if example.id in stored:
                    self.diversity.add(example.inputs, example.outputs, slot.cell)
                    results.append(SlotResult(*slot.cell, slot.index, "done", example_id=example.id,
                                              attempt=slot.attempts))
                elif slot.key in problems:  # never became an example: a field the task cannot take
                    results.append(self._failed(slot, "invalid", problems[slot.key]))
                else:
                    self.report.duplicates += 1
                    if slot.attempts < self.max_attempts:
                        self.retry_pending = True
                        results.append(SlotResult(*slot.cell, slot.index, "pending", reason="duplicate",
                                                  error="the result duplicated a stored example",
                                                  attempt=slot.attempts))
                    else:
                        results.append(self._failed(slot, "duplicate", f"every one of {slot.attempts} results "
                                                    "duplicated a stored example"))
        self._finish(results)
        self.report.lm = self.calls.stats.to_dict()
        self.report.diversity = self.diversity.metrics()
        if self.progress is not None:
            self.progress(self.report)

    def _failed(self, slot: PlanSlot, reason: str, message: str, attempts: int | None = None) -> SlotResult:
        """A failed slot, counted and listed; `attempts` are the LM tries of its last generation, else how
        often the slot was generated (duplicates). The message is redacted: it is stored with the slot."""
        from ..redaction import redact

        message = redact(message)
        self.report.failures[reason] = self.report.failures.get(reason, 0) + 1
        if len(self.report.failed_slots) < MAX_LISTED_FAILURES:
            self.report.failed_slots.append({"slot": slot.key, "reason": reason, "error": message,
                                             "attempts": attempts if attempts is not None else slot.attempts})
        return SlotResult(*slot.cell, slot.index, "failed", reason=reason, error=message, attempt=slot.attempts)

    def _finish(self, results: list[SlotResult]) -> None:
        if results:
            self.store.finish_slots(self.plan, self.owner, results)

    def _provenance(self, slot: PlanSlot, value: dict[str, Any]) -> dict[str, Any]:
        return {"generator": {"model": self.calls.lm.model, "program": self.generator.name,
                              "temperature": value.get("temperature"), "strategy": "bootstrap"},
                "plan": self.plan, "slot": slot.key, "attempt": slot.attempts}

    # -- the loop --------------------------------------------------------------------------------------------
    def run(self) -> None:
        flush_size = max(8, self.calls.concurrency)
        stop_heartbeat = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(stop_heartbeat,), daemon=True,
                                     name="trainkit-bootstrap-lease")
        heartbeat.start()
        buffer: list[Outcome] = []
        try:
            while True:
                self.retry_pending = False
                last = time.monotonic()
                for outcome in self.calls.run(self.generate, self.slots()):
                    buffer.append(outcome)
                    if len(buffer) >= flush_size or time.monotonic() - last > 1.0:
                        self.store_batch(buffer)
                        buffer, last = [], time.monotonic()
                if buffer:
                    self.store_batch(buffer)
                    buffer = []
                if not self.retry_pending:
                    break
        except BaseException:
            self.report.interrupted = True
            if buffer:
                try:
                    self.store_batch(buffer)  # keep what is finished: it cost money
                finally:
                    buffer = []
            raise
        finally:
            stop_heartbeat.set()
            self.store.release_claims(self.plan, self.owner)

    def _heartbeat(self, stop: threading.Event) -> None:
        renewed = False
        while not stop.wait(self.lease / 3):
            try:
                self.store.renew_claims(self.plan, self.owner, self.lease)
                renewed = True
            except Exception:  # noqa: BLE001 - a missed renewal only risks a lease; the run goes on
                self.kit.log.warning("could not renew the leases of plan %s", self.plan, exc_info=True)
        database = getattr(self.store, "db", None)
        if renewed and database is not None and not database.is_closed():
            database.close()  # this thread's own connection (peewee keeps one per thread)


def bootstrap(kit: Kit, task: str, *, domain: str | None = None, per_cell: int | None = None,
              dry_run: bool = False, concurrency: int | None = None, plan: str | None = None,
              lease: float = 300.0, max_attempts: int = 3,
              progress: Callable[[BootstrapReport], None] | None = None, check: bool = True) -> BootstrapReport:
    """Fill `task`'s plan (see the module docstring); returns the report. Raises ConfigError/LMError before
    any work when the task or its LM cannot be used; LM failures during the run end up in the report."""
    settings = kit.settings.task(kit.require_task(task))  # a misspelt task is "unknown task", not "no signature"
    per_cell = per_cell or settings.per_cell
    name = plan or default_plan_name(task)
    cells = plan_cells(settings, domain)
    slots = plan_slots(cells, per_cell)
    lm_settings = kit.settings.lm_for(task, "generation")
    if concurrency is not None:
        lm_settings = attrs.evolve(lm_settings, concurrency=concurrency)
    generator = load_generator(settings, kit.task_fields(task), kit.settings.project_dir)
    check_cells(generator, settings, cells)
    report = BootstrapReport(task=task, plan=name, model=lm_settings.model, program=generator.name,
                             planned=len(slots), dry_run=dry_run)
    if dry_run:
        return _dry_run(kit, report, cells, per_cell, domain)
    from .lm import build_lm, check_lm

    lm = build_lm(lm_settings, purpose="generation", task=task)
    if check:
        check_lm(lm, purpose="generation", task=task, settings=lm_settings)  # one clear error now, not later
    kit.store.ensure_plan(name, task, {"per_cell": per_cell, "program": generator.name, "model": lm.model}, slots)
    kit.store.release_claims(name, owner_is_dead=owner_is_dead)
    kit.store.reopen_failed_slots(name, domain=domain, max_index=per_cell, cells=cells)
    report.done_before = kit.store.slot_counts(name, domain=domain, max_index=per_cell, cells=cells).get("done", 0)
    calls = LMCalls(lm, lm_settings)
    run = _Run(kit, task, name, generator, calls, report, domain=domain, per_cell=per_cell, lease=lease,
               max_attempts=max_attempts, progress=progress, cells=cells)
    try:
        run.run()
    finally:
        _count(kit, report, domain, per_cell, cells)
        report.diversity = run.diversity.metrics()
        report.lm = calls.stats.to_dict()
    return report


def _count(kit: Kit, report: BootstrapReport, domain: str | None, per_cell: int, cells: list[Cell]) -> None:
    counts = kit.store.slot_counts(report.plan, domain=domain, max_index=per_cell, cells=cells)
    report.stale = sum(kit.store.slot_counts(report.plan, domain=domain, max_index=per_cell).values()) \
        - sum(counts.values())
    report.done = counts.get("done", 0)
    report.failed = counts.get("failed", 0)
    report.pending = counts.get("pending", 0)
    report.in_progress = counts.get("claimed", 0)
    report.by_others = report.done - report.done_before - report.made - report.recovered


def _dry_run(kit: Kit, report: BootstrapReport, cells: list[Any], per_cell: int,
             domain: str | None) -> BootstrapReport:
    """The plan by cell and what a run would make, from the stored plan if there is one; nothing is written
    and no LM is built or called."""
    done: dict[tuple[Any, Any, Any], int] = {}
    if kit.store.plan_info(report.plan) is not None:
        for slot in kit.store.plan_slots(report.plan, state="done", domain=domain, max_index=per_cell, cells=cells):
            done[slot.cell] = done.get(slot.cell, 0) + 1
        everything = sum(kit.store.slot_counts(report.plan, domain=domain, max_index=per_cell).values())
        report.stale = everything - sum(kit.store.slot_counts(report.plan, domain=domain, max_index=per_cell,
                                                              cells=cells).values())
    for cell in cells:
        have = done.get(tuple(cell), 0)
        report.cells.append({"domain": cell[0], "topic": cell[1], "difficulty": cell[2], "planned": per_cell,
                             "done": have, "to_make": per_cell - have})
    report.done_before = report.done = sum(done.values())
    report.to_make = report.pending = report.planned - report.done
    return report
