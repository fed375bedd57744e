"""Optimization commands: `ready` (is there enough data, and what to add), `optimize` (one run on a snapshot)
and `runs` (history with scores, snapshot ids and the champion). The work is done in
`dspy_trainkit.optimization`; this module parses options and prints.

`trainkit ready` exits 0 when every task it reports on is ready and 3 when one is not (1 stays "error" and 2
"usage error", as for every command), so scripts can run `trainkit ready --task T && trainkit optimize ...`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import click

from ..optimization.optimizers import OPTIMIZERS
from .exits import EXIT_INTERRUPTED, EXIT_NOT_READY
from .logs import note
from .output import echo_json, echo_table, json_option, when
from .progress import Progress
from .state import CliState, pass_state

OPTIMIZER_NAMES = tuple(OPTIMIZERS)


@contextlib.contextmanager
def dspy_prints_to_log() -> Iterator[TextIO]:
    """Keep stdout for the command's result (--json): DSPy's optimizers print() their progress ("Bootstrapped 4
    full traces..."), so stdout is captured while a run works and what was printed goes to the debug log.
    Yields the real stdout, for output that must reach it meanwhile (`contextlib.redirect_stdout(real)`)."""
    real = sys.stdout
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            yield real
    finally:
        if captured.getvalue().strip():
            logging.getLogger("dspy_trainkit").debug("DSPy printed: %s", captured.getvalue().strip())


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _latest(run: Any) -> str:
    """A run's score as `trainkit runs` lists it: the latest, with the run's own when a later run re-scored it."""
    if not run.rescored:
        return _score(run.score)
    return f"{_score(run.latest_score)} (re-scored by {str(run.rescored.get('run'))[-8:]}; was {_score(run.score)})"


@click.command()
@click.option("--task", help="Only this task (default: every configured task and every task with examples).")
@click.option("--optimizer", type=click.Choice(OPTIMIZER_NAMES), help="Judge against this optimizer's needs "
              "(default: [optimize] optimizer).")
@json_option
@pass_state
def ready(state: CliState, task: str | None, optimizer: str | None, as_json: bool) -> None:
    """Is there enough accepted data to optimize each task? Counts per domain/topic/difficulty cell against the
    optimizer's minimums, the dev set the split will give, quality, balance gaps, a verdict and next steps.
    Exits 0 when ready, 3 when not."""
    kit = state.kit()
    found = kit.readiness(task=task, optimizer=optimizer)
    from ..optimization.incremental import state_of  # O2: each task's "collecting" / "optimized" state

    states = {r.task: state_of(kit, r.task, r.ready) for r in found if r.domain is None}
    if as_json:
        echo_json([{**r.to_dict(), **({"state": states[r.task]} if r.domain is None else {})} for r in found])
    elif not found:
        click.echo("no tasks yet: configure one in trainkit.toml or add examples")
    for r in found if not as_json else []:
        if r.domain is None:
            click.echo(f"task {r.task}: {r.verdict.upper()} for {r.optimizer} — {r.accepted} accepted of "
                       f"{r.needed} needed, {r.dev} dev (at least {r.min_dev})"
                       + (f", {r.candidates} waiting for review" if r.candidates else "")
                       + f"; state: {states[r.task]}")
            q = r.quality
            if q.get("scored"):
                click.echo(f"  quality: median {q['median']}, p25 {q['p25']}, p75 {q['p75']}, min {q['min']} "
                           f"({q['scored']} scored, {q['unscored']} unscored)")
            for problem in r.problems:
                click.echo(f"  - {problem}")
            for gap in r.gaps:
                cell = "/".join(str(gap[k]) for k in ("domain", "topic", "difficulty") if gap[k] is not None)
                click.echo(f"  gap: {cell or '(no labels)'} {gap['state']} ({gap['count']} of target "
                           f"{gap['target']}, cap {gap['cap']})")
            for step in r.next_steps:
                click.echo(f"  next: {step}")
        else:
            click.echo(f"  domain {r.domain}: {r.verdict} — {r.accepted} accepted, {r.dev} dev"
                       + "".join(f"; {p}" for p in r.problems))
    if any(not r.ready for r in found if r.domain is None):
        sys.exit(EXIT_NOT_READY)


@click.command()
@click.option("--task", help="The task to optimize (default: default_task).")
@click.option("--program", metavar="PKG.MODULE:FACTORY", help="What makes the DSPy program (default: "
              "[optimize] program, else the task's program).")
@click.option("--metric", metavar="PKG.MODULE:FUNCTION", help="metric(example, prediction, trace=None) "
              "(default: [optimize] metric).")
@click.option("--optimizer", type=click.Choice(OPTIMIZER_NAMES), help="Default: [optimize] optimizer.")
@click.option("--snapshot", metavar="NAME", help="Read this snapshot (default: a new snapshot of the task's "
              "accepted examples).")
@click.option("--dev-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share held out for evaluation (default: [optimize] dev_fraction).")
@click.option("--seed", type=click.IntRange(min=0), help="Split seed (default: [optimize] seed).")
@click.option("--max-dev", type=click.IntRange(min=0), help="Evaluate on at most this many dev examples, a "
              "stratified share (default: [optimize] max_dev; 0: no cap).")
@click.option("--no-promote", is_flag=True, help="Record the run but never make it the champion.")
@click.option("--dry-run", is_flag=True, help="Show the split and the expected number of LM calls; call no LM, "
              "take no snapshot, record nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines, and none of DSPy's progress bars or "
              "log lines.")
@json_option
@pass_state
def optimize(state: CliState, task: str | None, program: str | None, metric: str | None, optimizer: str | None,
             snapshot: str | None, dev_fraction: float | None, seed: int | None, max_dev: int | None,
             no_promote: bool, dry_run: bool, quiet: bool, as_json: bool) -> None:
    """Optimize a task's DSPy program on a snapshot: split train/dev, score the current program, compile,
    score the result on the same dev set, save it as JSON and keep it as champion if it wins by the margin.
    The expected number of LM calls is said before the first one; --dry-run says only that."""
    from ..errors import ConfigError

    kit = state.kit()
    task = task or kit.settings.default_task
    if not task:
        raise ConfigError("give --task (or set default_task in trainkit.toml)")
    say = Progress.stage_printer(quiet=quiet)
    if quiet:
        from .logs import no_progress_bars

        no_progress_bars()

    def progress(stage: str) -> None:
        say(f"optimize {task}: {stage}…")

    try:
        with dspy_prints_to_log():
            run = kit.optimize(task, program, metric, optimizer, snapshot, dev_fraction=dev_fraction, seed=seed,
                               max_dev=max_dev, promote=not no_promote, dry_run=dry_run, progress=progress,
                               actor="cli")
    except KeyboardInterrupt:
        note(f"interrupted while optimizing task {task}; the run is recorded as interrupted (`trainkit "
             "runs`), and running the same command again starts over (on the same snapshot when the data "
             "did not change)", level="warning", task=task)
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        echo_json(run.to_dict())
        return
    if dry_run:
        for line in run.describe():
            click.echo(line)
        click.echo("  dry run: no LM was called, no snapshot taken, nothing recorded")
        return
    if run.fallback_reason:
        note(f"fallback: {run.optimizer} not run ({run.fallback_reason}); used {run.used}", level="warning")
    click.echo(run.message)
    available = run.settings.get("dev_available", len(run.dev_ids))
    capped = f" (of {available}; max_dev {run.settings.get('max_dev')})" if available > len(run.dev_ids) else ""
    click.echo(f"  snapshot {run.snapshot}: {len(run.train_ids)} train, {len(run.val_ids)} validation, "
               f"{len(run.dev_ids)} dev{capped}; LM {run.lm}")
    click.echo(f"  program saved to {run.program_path}; {len(run.demo_ids)} stored examples became demos")


@click.command()
@click.option("--task", help="Only this task's runs.")
@click.option("--run", "run_id", metavar="ID", help="Show one run (a unique end of its id) with its per-example "
              "dev results and candidates.")
@click.option("--plot", "plot_path", metavar="FILE", type=click.Path(dir_okay=False), help="Also draw the score "
              "trend to FILE: .html (self-contained) or .png (needs the plot extra).")
@json_option
@pass_state
def runs(state: CliState, task: str | None, run_id: str | None, as_json: bool, plot_path: str | None = None) -> None:
    """Optimization history, oldest first: snapshot, optimizer, status, dev scores; * marks each task's champion."""
    kit = state.kit()
    found = kit.runs(task)
    if task is not None and not found:
        kit.require_task(task)  # a misspelt task is an error, not "no runs yet"
    if plot_path is not None:  # O2's score-trend plot (dspy_trainkit.optimization.plot)
        from ..optimization.plot import plot_kit_runs

        written = plot_kit_runs(kit, plot_path, task, found)
        if not as_json:
            note(f"score trend written to {written}")
    if run_id is not None:
        _show_run(kit, run_id, as_json)
        return
    champions = {t: kit.store.champion_id(t) for t in {r.task for r in found}}
    if as_json:
        echo_json([{**r.to_dict(details=False), "champion": champions.get(r.task) == r.id} for r in found])
        return
    if not found:
        click.echo("no optimization runs yet; see `trainkit ready` and `trainkit optimize`")
        return
    echo_table(["", "run", "when", "task", "snapshot", "optimizer", "status", "baseline", "score"],
               [("*" if champions.get(r.task) == r.id else "", r.id[-8:], when(r.created_at), r.task, r.snapshot,
                 r.used if r.used == r.optimizer else f"{r.used} (for {r.optimizer})", r.status,
                 _score(r.baseline_score), _latest(r)) for r in found])


def _show_run(kit: Any, run_id: str, as_json: bool) -> None:
    run = kit.run(run_id)
    is_champion = kit.store.champion_id(run.task) == run.id
    if as_json:
        echo_json({**run.to_dict(), "champion": is_champion})
        return
    click.echo(run.message or f"run {run.id}: {run.status}")
    for label, value in (("id", run.id), ("status", run.status + (" (champion)" if is_champion else "")),
                         ("snapshot", f"{run.snapshot} ({(run.snapshot_digest or '')[:12]})"),
                         ("optimizer", run.used if run.used == run.optimizer else f"{run.used} for {run.optimizer}"),
                         ("LM", run.lm), ("re-scored", _rescored(run)), ("program", run.program_path),
                         ("error", run.error)):
        if value:
            click.echo(f"  {label}: {value}")
    rows: dict[str, dict[str, Any]] = {}
    for result in run.results:
        rows.setdefault(result.example_id, {})[result.phase] = result.score
    if rows:
        echo_table(["dev example", "baseline", "optimized", "champion"],
                   [(example_id, *(_score(None if p not in v else 100 * v[p]) for p in
                                   ("baseline", "optimized", "champion"))) for example_id, v in rows.items()])
    for candidate in run.candidates:
        click.echo(f"  candidate seed {candidate.seed}: {candidate.score:.1f}, demos "
                   f"{', '.join((d or '?')[-8:] for d in candidate.demo_ids) or 'none'}")


def _rescored(run: Any) -> str | None:
    again = run.rescored
    if not again:
        return None
    return (f"{_score(again.get('score'))} by run {str(again.get('run'))[-8:]} on its dev set (metric "
            f"{again.get('metric')}, LM {again.get('lm')}); {_score(run.score)} on its own")
