"""Incremental building: re-optimize a task's program when its data has changed enough, keep the champion
when the challenger loses, and tell whether a task is still collecting data or already optimized.

`IncrementalBuilder` is what `trainkit watch` runs and what a pipeline embeds (`kit.builder(...).start(60)`).
Each step evaluates the triggers of every watched task (see `triggers`), and for each task that is due runs
`kit.optimize` on a fresh snapshot; the run engine decides promotion, so a worse challenger never replaces the
champion. A failure is logged, recorded in the audit trail and retried only after `retry_after` seconds; it is
never raised into the embedding pipeline. The background thread only reads the pipeline's store through its
own connection and runs DSPy under its own `dspy.context`, so the pipeline's LM settings stay untouched.

Everything a step decides comes from the store (run records, snapshots, examples), so a builder can be stopped
and started again, or run from cron with `trainkit watch --once`, without losing or repeating work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import TrainkitError
from ..models import Event
from . import triggers as rules
from .triggers import Observation, TriggerHit

if TYPE_CHECKING:
    from ..kit import Kit

log = logging.getLogger("dspy_trainkit.incremental")

#: A task's state: still gathering data, or running its optimized champion.
STATES = ("collecting", "optimized")
#: A run still marked "running" younger than this is taken to be in progress elsewhere (not started twice).
BUSY_FOR = 6 * 3600.0


@attrs.frozen
class TaskState:
    """Where a task stands: `state` is "optimized" when readiness is met and a champion exists, else
    "collecting"; `kit.program(task)` returns the champion or, while collecting, the unoptimized program."""

    task: str
    state: str
    ready: bool
    champion: str | None = None  # the champion run's id
    champion_score: float | None = None
    next_steps: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.state

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["next_steps"] = list(self.next_steps)
        return data


@attrs.frozen
class TaskCheck:
    """One evaluation of one task's triggers: its state, the triggers that fired, and (when nothing can run)
    why not."""

    task: str
    state: TaskState
    hits: tuple[TriggerHit, ...] = ()
    observation: Observation | None = None
    blocked: str | None = None  # why the task is not run although triggers may have fired

    @property
    def due(self) -> bool:
        return bool(self.hits) and self.blocked is None

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "state": self.state.state, "ready": self.state.ready, "due": self.due,
                "champion": self.state.champion, "champion_score": self.state.champion_score,
                "hits": [h.to_dict() for h in self.hits], "blocked": self.blocked,
                "next_steps": list(self.state.next_steps),
                "observation": self.observation.to_dict() if self.observation else None}


@attrs.frozen
class StepResult:
    """What a step did for one due task: the run it made (or the error), and the champion afterwards."""

    task: str
    hits: tuple[TriggerHit, ...]
    status: str  # "succeeded" | "failed"
    run_id: str | None = None
    promoted: bool = False
    score: float | None = None
    baseline_score: float | None = None
    champion: str | None = None
    message: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["hits"] = [h.to_dict() for h in self.hits]
        return data


def readiness_of(kit: Kit, task: str, optimizer: str | None = None) -> tuple[bool, tuple[str, ...]]:
    """(ready, next steps) of the task as a whole, from `kit.readiness`."""
    entries = kit.readiness(task=task, optimizer=optimizer)
    whole = [e for e in entries if e.domain is None]
    if not whole:
        return False, (f"add accepted examples of task {task!r}",)
    steps: list[str] = []
    for entry in entries:
        steps.extend(s for s in entry.next_steps if s not in steps)
    return all(e.ready for e in whole), tuple(steps)


def state_of(kit: Kit, task: str, ready: bool) -> str:
    """"optimized" when readiness is met and the task has a champion, else "collecting"."""
    return "optimized" if ready and kit.store.champion_id(task) else "collecting"


def task_state(kit: Kit, task: str, optimizer: str | None = None) -> TaskState:
    """Whether `task` is still collecting data or optimized (readiness met and a champion exists)."""
    ready, steps = readiness_of(kit, task, optimizer)
    current = kit.champion(task)
    return TaskState(task=task, state=state_of(kit, task, ready), ready=ready,
                     champion=current.id if current else None,
                     champion_score=current.score if current else None, next_steps=steps)


class IncrementalBuilder:
    """Re-optimizes tasks when their triggers fire; see the module docstring.

    `task`: one task, or None for every task in settings or with runs. `program`, `metric`, `optimizer` and
    any further keyword (`lm`, `seed`, ...) go to `kit.optimize` (defaults: the task's `[optimize]` settings).
    `triggers` replaces the trigger settings of every watched task (default: `[optimize.triggers]` with the
    task's overrides); `clock` gives the time (tests inject one); `retry_after` is how long a failed task waits
    before another attempt.
    """

    def __init__(self, kit: Kit, task: str | None = None, program: Any = None, metric: Any = None,
                 optimizer: str | None = None, *, triggers: rules.TriggerSettings | None = None,
                 clock: Callable[[], float] = time.time, retry_after: float = 900.0, actor: str = "builder",
                 **optimize_options: Any):
        self.kit, self.task, self.program, self.metric, self.optimizer = kit, task, program, metric, optimizer
        self.clock, self.retry_after, self.actor = clock, retry_after, actor
        self.triggers = triggers
        self.optimize_options = optimize_options
        self.failures: dict[str, tuple[float, str]] = {}  # task -> (when, message) of its last failure
        self.history: list[StepResult] = []  # every run attempt of this builder, oldest first
        self.last_checks: list[TaskCheck] = []  # what the latest step saw
        self.interrupted: str | None = None  # the task whose run Ctrl-C interrupted (recorded as interrupted)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._marks = rules.change_marks(kit)

    # -- evaluation ------------------------------------------------------------------------------------------
    def tasks(self) -> list[str]:
        """The watched tasks: the one given, or every task in settings or with runs."""
        if self.task is not None:
            return [self.task]
        return sorted(set(self.kit.settings.tasks) | {run.task for run in self.kit.runs()})

    def check(self, task: str | None = None) -> list[TaskCheck]:
        """Evaluate the triggers of every watched task (or of `task`) now, without running anything."""
        now = self.clock()
        return [self._check(name, now) for name in ([task] if task else self.tasks())]

    def due(self) -> list[TriggerHit]:
        """The triggers that fired for tasks that would run now (which trigger, and why)."""
        return [hit for check in self.check() if check.due for hit in check.hits]

    def _check(self, task: str, now: float) -> TaskCheck:
        state = task_state(self.kit, task, self.optimizer)
        runs = self.kit.runs(task)
        finished = [r for r in runs if r.status == "succeeded"]
        last = max(finished, key=lambda r: (r.finished_at or r.created_at, r.id)) if finished else None
        settings = self.triggers if self.triggers is not None else rules.triggers_for(self.kit, task)
        observation = rules.observe(
            self.kit, task, now=now, ready=state.ready, last_run_id=last.id if last else None,
            last_run_at=(last.finished_at or last.created_at) if last else None,
            last_snapshot=last.snapshot if last else None, quality=settings.quality_shift is not None,
            optimized_before=any(not r.fallback_reason for r in finished))
        hits = tuple(rules.evaluate(settings, observation))
        return TaskCheck(task=task, state=state, hits=hits, observation=observation,
                         blocked=self._blocked(task, runs, now, observation.last_run_at) if hits else None)

    def _blocked(self, task: str, runs: Sequence[Any], now: float, succeeded_at: float | None) -> str | None:
        """Why a due task must not run now: a run in progress, or a failure within `retry_after` that no
        successful run has followed."""
        latest = max(runs, key=lambda r: (r.created_at, r.id)) if runs else None
        if latest is not None and latest.status == "running" and now - latest.created_at < BUSY_FOR:
            return f"run {latest.id} is in progress (started {rules.format_duration(now - latest.created_at)} ago)"
        failures = [self.failures[task]] if task in self.failures else []
        if self.retry_after > 0:  # failures recorded by any builder (another process, an earlier cron run)
            failures.extend((e.time, e.reason) for e in self.kit.store.iter_events(since=now - self.retry_after)
                            if e.kind == "reoptimization_failed" and e.details.get("task") == task)
        if latest is not None and latest.status == "failed":
            failures.append((latest.finished_at or latest.created_at, latest.error or latest.message))
        for when, message in sorted(failures, reverse=True)[:1]:
            if succeeded_at is not None and when <= succeeded_at:
                break  # a run succeeded after that failure: whatever failed works again
            wait = self.retry_after - (now - when)
            if wait > 0:
                return (f"the last attempt failed {rules.format_duration(now - when)} ago ({message}); "
                        f"retrying in {rules.format_duration(wait)}")
        return None

    # -- running ---------------------------------------------------------------------------------------------
    def step(self, *, progress: Callable[[str, str], None] | None = None) -> list[StepResult]:
        """Evaluate triggers and re-optimize every due task; returns what was done (empty: nothing was due).
        What was evaluated stays in `last_checks`; `progress(task, stage)` hears the run's stages.

        A failing run is logged, recorded and returned as a failed StepResult, never raised; Ctrl-C
        (KeyboardInterrupt) is let through, and the run engine records the run as interrupted."""
        results = []
        self.last_checks = self.check()
        for check in self.last_checks:
            if not check.due:
                if check.hits:
                    log.info("task %s is due but waits: %s", check.task, check.blocked, extra={"task": check.task})
                continue
            results.append(self._run(check, progress))
        return results

    def _run(self, check: TaskCheck, progress: Callable[[str, str], None] | None) -> StepResult:
        task, hits = check.task, check.hits
        why = "; ".join(h.reason for h in hits)
        log.info("re-optimizing task %s: %s", task, why, extra={"task": task})
        options = dict(self.optimize_options)
        if progress is not None:
            options.setdefault("progress", lambda stage: progress(task, stage))
        options.setdefault("actor", self.actor)
        try:
            run = self.kit.optimize(task, program=self.program, metric=self.metric, optimizer=self.optimizer,
                                    **options)
        except KeyboardInterrupt:
            self.interrupted = task
            raise
        except Exception as exc:  # never into the pipeline: log, record, retry after retry_after
            message = str(exc) if isinstance(exc, TrainkitError) else f"{type(exc).__name__}: {exc}"
            log.error("re-optimizing task %s failed: %s", task, message, extra={"task": task})
            self.failures[task] = (self.clock(), message)
            self._record(Event(kind="reoptimization_failed", actor=self.actor, reason=message, time=self.clock(),
                               details={"task": task, "triggers": [h.to_dict() for h in hits]}))
            result = StepResult(task=task, hits=hits, status="failed", message=message, error=message,
                                champion=check.state.champion)
            self.history.append(result)
            return result
        self.failures.pop(task, None)
        current = self.kit.champion(task)
        self._record(Event(kind="reoptimized", actor=self.actor, reason=why,
                           details={"task": task, "run": run.id, "promoted": run.promoted,
                                    "triggers": [h.to_dict() for h in hits]}))
        result = StepResult(task=task, hits=hits, status="succeeded", run_id=run.id, promoted=run.promoted,
                            score=run.score, baseline_score=run.baseline_score,
                            champion=current.id if current else None, message=run.message)
        self.history.append(result)
        return result

    def _record(self, event: Event) -> None:
        try:
            self.kit.store.append_event(event)
        except Exception as exc:  # the store is down: the log line is all we can do
            log.error("could not record %s in the audit trail: %s", event.kind, exc, extra={"event_id": event.id})

    # -- looping ---------------------------------------------------------------------------------------------
    def run_forever(self, interval: float = 60.0, *, settle: float = 5.0,
                    on_step: Callable[[list[StepResult]], None] | None = None,
                    progress: Callable[[str, str], None] | None = None) -> None:
        """Step every `interval` seconds until `stop()`; data committed through this kit wakes it earlier
        (at most one step per `settle` seconds). `on_step(results)` hears each step. Errors are logged and the
        loop goes on; KeyboardInterrupt ends it."""
        seen = self._marks.version
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                results = self.step(progress=progress)
                if on_step is not None:
                    on_step(results)
            except KeyboardInterrupt:
                raise
            except Exception:
                log.exception("incremental builder step failed; trying again in %s s", interval)
            seen = self._marks.wait(seen, interval, self._stop.is_set)
            rest = settle - (time.monotonic() - started)
            if rest > 0:
                self._stop.wait(rest)

    def start(self, interval: float = 60.0, *, settle: float = 5.0) -> IncrementalBuilder:
        """Run `run_forever` in a background (daemon) thread; returns self. Stop it with `stop()`."""
        if self._thread is not None and self._thread.is_alive():
            raise TrainkitError("this builder is running already")
        self._stop.clear()
        self._thread = threading.Thread(target=self._background, args=(interval, settle),
                                        name="trainkit-builder", daemon=True)
        self._thread.start()
        self.kit.on_close.append(self.stop)  # closing the kit stops the builder first
        return self

    def _background(self, interval: float, settle: float) -> None:
        try:
            self.run_forever(interval, settle=settle)
        except BaseException:  # noqa: BLE001 - a background thread must not die with a traceback on stderr
            log.exception("incremental builder stopped by an error")

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the loop to stop and wait for it (a run in progress finishes first). Returns True when it
        stopped within `timeout`."""
        self._stop.set()
        self._marks.wake()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        if stopped:
            self._thread = None
            if self.stop in self.kit.on_close:
                self.kit.on_close.remove(self.stop)
        return stopped

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> IncrementalBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
