"""Reading runs and the champion: run records as `Run`s, the champion of a task, and its program.

A run still marked running whose process is gone is settled as interrupted when read. The champion's stored
score is the one its own run measured; when a later run re-scores it on another dev set or with another LM or
metric, that measurement is kept on the champion's record too (`rescored`), so listings show the champion's
latest score and the next run on the same dev set can compare with it without evaluating it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError, NotFoundError, TrainkitError
from ..workers import owner_is_dead
from .records import Run
from .resolve import program_factory

if TYPE_CHECKING:
    from ..kit import Kit

log = logging.getLogger("dspy_trainkit.optimization")


def get_run(kit: Kit, run_id: str, *, details: bool = True) -> Run:
    """The run with this id (or a unique end of it, as `trainkit runs` shows them)."""
    record = kit.store.get_run(run_id)
    if record is None:
        matches = [r for r in kit.store.list_runs() if r["id"].endswith(run_id) or r["id"].startswith(run_id)]
        if len(matches) != 1:
            raise NotFoundError(f"no single run matches {run_id!r} (see `trainkit runs`)")
        record = matches[0]
    if not details:
        return _settled(kit, Run.from_record(record))
    results, candidates = kit.store.run_details(record["id"])
    return _settled(kit, Run.from_record(record, results, candidates))


def list_runs(kit: Kit, task: str | None = None) -> list[Run]:
    """Every run (of `task`), oldest first, without per-example results (see get_run for those)."""
    return [_settled(kit, Run.from_record(r)) for r in kit.store.list_runs(task)]


def _settled(kit: Kit, run: Run) -> Run:
    """A run still marked "running" whose process on this host is gone (killed with kill -9, or the machine
    lost power) is recorded as interrupted, so it neither shows as running forever nor blocks re-optimization."""
    if run.status != "running" or not run.owner or not owner_is_dead(run.owner):
        return run
    run = attrs.evolve(run, status="interrupted", message=f"{run.message} its process {run.owner} ended without "
                       "finishing (killed?); optimize again".strip())
    kit.store.save_run(run.record())
    return run


def scored_alike(champion_run: Run, dev_digest: str | None, metric: str | None, lm: str | None) -> float | None:
    """The champion's score to compare with a run scored on dev set `dev_digest` with `metric` and `lm`, when it
    has one measured alike: the same dev set (by content), the same metric (by import path; a metric passed as
    an object without one never counts as the same) and the same LM; its own score, else its latest re-scoring
    by another run. None: the champion must be evaluated again."""
    if metric is None or ":" not in metric or lm is None:
        return None
    measured = [(champion_run.settings.get("dev_digest"), champion_run.metric, champion_run.lm, champion_run.score)]
    if champion_run.rescored:
        again = champion_run.rescored
        measured.append((again.get("dev_digest"), again.get("metric"), again.get("lm"), again.get("score")))
    for digest, by_metric, by_lm, score in measured:
        if score is not None and (digest, by_metric, by_lm) == (dev_digest, metric, lm):
            return float(score)
    return None


def record_rescore(kit: Kit, champion_run: Run, score: float | None, by: Run) -> None:
    """Keep on the champion's record the score run `by` measured for it (`Run.rescored`), so `trainkit runs`
    shows the champion's latest score and a later run on the same dev set, metric and LM need not evaluate it
    again. Its own score, results and candidates stay as they were."""
    if score is None:
        return
    rescored = {"score": score, "run": by.id, "dev_digest": by.settings.get("dev_digest"), "metric": by.metric,
                "lm": by.lm, "at": time.time()}
    current = kit.store.get_run(champion_run.id)
    if current is None:
        return
    kit.store.save_run({**current, "rescored": rescored})


def champion(kit: Kit, task: str) -> Run | None:
    """The champion run of `task`, or None."""
    run_id = kit.store.champion_id(task)
    return get_run(kit, run_id, details=False) if run_id else None


def load_saved(make_program: Callable[[], Any], run: Run) -> Any:
    """A fresh program from the factory with the run's saved JSON loaded into it."""
    if not run.program_path or not Path(run.program_path).is_file():
        raise NotFoundError(f"run {run.id}: its saved program {run.program_path} is missing; optimize again")
    program = make_program()
    try:
        program.load(run.program_path)
    except Exception as exc:
        raise ConfigError(f"run {run.id}: cannot load {run.program_path} into this program "
                          f"({type(exc).__name__}: {exc}); was the program changed since?") from None
    return program


def load_program(kit: Kit, task: str, factory: Any = None) -> Any:
    """The program a pipeline should run for `task`: the champion loaded from its saved JSON, or the
    unoptimized program from the task's factory when there is no champion yet. A champion whose saved file is
    gone or no longer fits the program is logged as a warning and the unoptimized program returned, so a
    running pipeline keeps working."""
    current = champion(kit, task)
    spec = factory if factory is not None else (current.program if current and current.program else None)
    make, _ = program_factory(kit, task, spec)
    if current is None:
        return make()
    try:
        return load_saved(make, current)
    except TrainkitError as exc:
        log.warning("task %s: using the unoptimized program: %s", task, exc)
        return make()
