"""Re-optimization triggers: their settings, what they observe in the store, and when they fire.

A trigger answers "has the data changed enough since the last optimization run to be worth another one?".
Nothing here is remembered outside the store: the baseline is the snapshot of the task's latest finished run
(champion or a challenger that lost, so a loss never causes a re-run on the same data), and the present is
read from the examples table. Restarting `trainkit watch` or the pipeline therefore loses no trigger state, and
two processes evaluating the same store agree.

Evaluation is split in two so that thresholds can be tested exactly without a store: `observe` reads numbers
(counts, mean quality, times) into an `Observation`; `evaluate` compares them with `TriggerSettings`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ..store import ExampleQuery
from .config import TRIGGER_KEYS
from .config import parse_duration as parse_duration  # re-exported: read with the other trigger settings
from .config import read_triggers as read_triggers

if TYPE_CHECKING:
    from ..kit import Kit
    from ..models import Event

#: Thresholds are compared with this much slack, so that 0.6 - 0.5 counts as a shift of 0.1.
EPSILON = 1e-9


@attrs.frozen
class TriggerSettings:
    """When a task is due for re-optimization; `None` switches a trigger off. Any one firing is enough.

    `new_accepted`: at least this many accepted examples that the last run's snapshot did not hold.
    `growth`: accepted examples grew by at least this fraction of the last run's snapshot (0.2 = 20%).
    `quality_shift`: the mean quality of the accepted examples moved at least this much (up or down, on the
    0..1 scale) from the mean of the last run's snapshot.
    `every`: seconds since the last run (a schedule; fires whether or not data changed).
    `on_ready`: optimize the first time as soon as readiness is met and no run exists, or only fallback runs
    made while data was short (collecting -> optimized).
    """

    new_accepted: int | None = None
    growth: float | None = None
    quality_shift: float | None = None
    every: float | None = None
    on_ready: bool = True

    def active(self) -> list[str]:
        """Names of the triggers that are switched on."""
        return [k for k in TRIGGER_KEYS if getattr(self, k) not in (None, False)]


@attrs.frozen
class Observation:
    """What the store says about one task now, against the baseline of its latest finished run."""

    task: str
    now: float
    ready: bool  # readiness met for the task's optimizer
    accepted: int  # accepted examples of the task now
    mean_quality: float | None  # their mean quality (examples without a quality left out)
    last_run_id: str | None = None
    last_run_at: float | None = None
    last_snapshot: str | None = None
    baseline_size: int = 0  # the task's examples in the last run's snapshot
    baseline_quality: float | None = None  # their mean quality
    new_accepted: int = 0  # accepted now and not in the last run's snapshot
    optimized_before: bool = False  # a run that was not a fallback (too little data) has succeeded

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class TriggerHit:
    """One trigger that fired for a task, with the observed value, the threshold and a sentence saying why."""

    task: str
    trigger: str
    value: float | None
    threshold: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


# ---- settings ----------------------------------------------------------------------------------------------

def triggers_for(kit: Kit, task: str) -> TriggerSettings:
    """The trigger settings of `task` in this kit's settings."""
    return TriggerSettings(**kit.settings.optimize_for(task).triggers)


# ---- evaluation ------------------------------------------------------------------------------------------

def evaluate(settings: TriggerSettings, obs: Observation) -> list[TriggerHit]:
    """The triggers that fire for this observation. Nothing fires while readiness is not met (the run would
    only fall back); before a first run only `on_ready` can fire, since there is no baseline to compare.
    `on_ready` also fires when every earlier run was a fallback (made while the data was short)."""
    if not obs.ready:
        return []
    hit = _hitter(obs.task)
    hits: list[TriggerHit] = []
    if settings.on_ready and not obs.optimized_before:
        never = "no optimization run yet" if obs.last_run_at is None else "only fallback runs so far"
        hits.append(hit("on_ready", None, None, f"readiness is met ({obs.accepted} accepted examples) and the "
                                                f"task has {never}"))
    if obs.last_run_at is None:
        return hits
    since = f"since run {obs.last_run_id} (snapshot {obs.last_snapshot})"
    if settings.new_accepted is not None and obs.new_accepted >= settings.new_accepted:
        hits.append(hit("new_accepted", obs.new_accepted, settings.new_accepted,
                        f"{obs.new_accepted} new accepted examples {since}, threshold {settings.new_accepted}"))
    if settings.growth is not None:
        growth = _growth(obs)
        if growth is not None and growth + EPSILON >= settings.growth:
            grown = "from none" if math.isinf(growth) else f"by {growth:.1%}"
            hits.append(hit("growth", growth, settings.growth,
                            f"accepted examples grew {grown} ({obs.baseline_size} -> {obs.accepted}) {since}, "
                            f"threshold {settings.growth:.0%}"))
    if settings.quality_shift is not None and obs.mean_quality is not None and obs.baseline_quality is not None:
        shift = abs(obs.mean_quality - obs.baseline_quality)
        if shift + EPSILON >= settings.quality_shift:
            hits.append(hit("quality_shift", shift, settings.quality_shift,
                            f"mean quality of accepted examples moved {obs.baseline_quality:.3f} -> "
                            f"{obs.mean_quality:.3f} {since}, threshold {settings.quality_shift}"))
    if settings.every is not None:
        elapsed = obs.now - obs.last_run_at
        if elapsed + EPSILON >= settings.every:
            hits.append(hit("every", elapsed, settings.every,
                            f"{format_duration(elapsed)} since the last run, schedule every "
                            f"{format_duration(settings.every)}"))
    return hits


def _growth(obs: Observation) -> float | None:
    if obs.baseline_size == 0:
        return math.inf if obs.accepted > 0 else None
    return obs.accepted / obs.baseline_size - 1


def _hitter(task: str) -> Any:
    def hit(trigger: str, value: float | None, threshold: float | None, reason: str) -> TriggerHit:
        return TriggerHit(task=task, trigger=trigger, value=value, threshold=threshold, reason=reason)

    return hit


def format_duration(seconds: float) -> str:
    """"1d 2h", "45m", "30s": the largest two units."""
    parts: list[str] = []
    rest = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size}{unit}")
            rest %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


# ---- observing the store ---------------------------------------------------------------------------------

def observe(kit: Kit, task: str, *, now: float, ready: bool, last_run_id: str | None = None,
            last_run_at: float | None = None, last_snapshot: str | None = None,
            quality: bool = True, optimized_before: bool | None = None) -> Observation:
    """Read the task's accepted examples now and its baseline (the snapshot of its latest finished run).
    `quality=False` skips the snapshot's mean quality (it reads every member's content; only `quality_shift`
    needs it)."""
    accepted_query = ExampleQuery(task=task, status="accepted")
    groups = kit.store.group_quality(["task"], accepted_query)
    accepted = groups[0][1] if groups else 0
    mean_quality = groups[0][2] if groups else None
    obs = Observation(task=task, now=now, ready=ready, accepted=accepted, mean_quality=mean_quality,
                      last_run_id=last_run_id, last_run_at=last_run_at, last_snapshot=last_snapshot,
                      optimized_before=last_run_id is not None if optimized_before is None else optimized_before)
    if last_snapshot is None:
        return obs
    held = snapshot_ids(kit, last_snapshot, task)
    new = sum(1 for example_id in kit.store.iter_ids(accepted_query) if example_id not in held)
    return attrs.evolve(obs, baseline_size=len(held), new_accepted=new,
                        baseline_quality=snapshot_quality(kit, last_snapshot, task) if quality else None)


def _cache(kit: Kit, kind: str) -> dict[Any, Any]:
    """Per-kit cache of snapshot facts: snapshots never change, so nothing in it goes stale."""
    return kit.plugin_state("triggers").setdefault(kind, {})


def snapshot_ids(kit: Kit, snapshot: str, task: str) -> frozenset[str]:
    """The ids of the task's examples in a snapshot (empty when the snapshot is gone)."""
    cache = _cache(kit, "snapshot_ids")
    if (snapshot, task) not in cache:
        found = kit.store.snapshot_info(snapshot) is not None
        cache[(snapshot, task)] = frozenset(
            member[0] for member in (kit.store.snapshot_members(snapshot) if found else ()) if member[2] == task)
    return cache[(snapshot, task)]


def snapshot_quality(kit: Kit, snapshot: str, task: str) -> float | None:
    """The mean quality of the task's examples in a snapshot, as they were when it was taken."""
    cache = _cache(kit, "snapshot_quality")
    if (snapshot, task) not in cache:
        total, scored = 0.0, 0
        if kit.store.snapshot_info(snapshot) is not None:
            for example in kit.store.iter_snapshot_examples(snapshot):
                if example.task == task and example.quality is not None:
                    total += example.quality
                    scored += 1
        cache[(snapshot, task)] = total / scored if scored else None
    return cache[(snapshot, task)]


# ---- change marks (filled by the triggers plugin's on_data_changed) --------------------------------------

#: Event kinds that change which examples are accepted or how good they are.
DATA_EVENT_KINDS = ("added", "status_changed", "edited", "rescored")


class ChangeMarks:
    """Per-kit record of committed data changes, kept by the built-in `triggers` plugin.

    Marking is a counter increment under a lock and a condition notify: it never blocks the writer that
    commits data. A builder embedded in the same process waits on it, so it evaluates triggers soon after its
    pipeline's data changes instead of only at its polling interval; changes made by other processes are seen
    at the next poll, since evaluation always reads the store.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.version = 0

    def mark(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake waiters without a change (a builder being stopped)."""
        with self._cond:
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float, stop: Callable[[], bool]) -> int:
        """Wait until a change newer than version `seen`, `stop()` is true, or `timeout` seconds pass;
        returns the version now."""
        with self._cond:
            self._cond.wait_for(lambda: self.version > seen or stop(), timeout=timeout)
            return self.version


def change_marks(kit: Kit) -> ChangeMarks:
    """The kit's ChangeMarks (made on first use)."""
    state = kit.plugin_state("triggers")
    marks = state.get("marks")
    if marks is None:
        marks = state.setdefault("marks", ChangeMarks())
    return marks


def mark_event(kit: Kit, event: Event) -> None:
    """Record a committed event in the kit's ChangeMarks when it changes data."""
    if event.kind in DATA_EVENT_KINDS and event.example_ids:
        change_marks(kit).mark()
