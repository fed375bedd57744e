"""Generation commands: `lm check` and `bootstrap`. The work is done in `dspy_trainkit.generation`; this
module parses options, shows progress and prints the summary."""

from __future__ import annotations

import sys
from typing import Any

import click

from .exits import EXIT_INCOMPLETE, EXIT_INTERRUPTED
from .logs import note
from .output import echo_json, echo_table, json_option
from .state import CliState, pass_state


@click.group()
def lm() -> None:
    """The LMs trainkit calls ([lm.PURPOSE] in trainkit.toml, per-task overrides in [tasks.T.lm.PURPOSE])."""


@lm.command("check")
@click.option("--task", "-t", help="Use this task's overrides of the LM settings.")
@click.option("--purpose", "-p", default="generation", show_default=True,
              help="Which LM: generation, judging, or any [lm.PURPOSE] table.")
@json_option
@pass_state
def lm_check(state: CliState, task: str | None, purpose: str, as_json: bool) -> None:
    """Make one tiny call to the configured LM; a missing key, unreachable server or unknown model is one error."""
    from ..generation.lm import check_lm
    from ..redaction import redact, redact_url

    settings = state.settings()
    if task is not None and task not in settings.tasks:
        _require_task(state, task)
    task = task or settings.default_task
    lm_settings = settings.lm_for(task, purpose)
    answer = check_lm(lm_settings, purpose=purpose, task=task)
    if as_json:
        echo_json({"ok": True, "purpose": purpose, "task": task, "model": lm_settings.model,
                   "api_base": redact_url(lm_settings.api_base) if lm_settings.api_base else None,
                   "answer": redact(answer)})
    else:
        click.echo(f"ok: {redact(answer)}")


def _require_task(state: CliState, task: str) -> None:
    """`--task` names a task declared in the settings or with stored examples (else one error naming the known
    tasks); without a store there are no stored examples, so the declared tasks are all there are."""
    from ..errors import ConfigError, StoreError

    try:
        kit = state.kit()
    except StoreError:
        known = ", ".join(sorted(state.settings().tasks)) or "none yet"
        raise ConfigError(f"unknown task {task!r}: not declared in the settings ([tasks.{task}]) and no store with "
                          f"examples of it; known tasks: {known}") from None
    kit.require_task(task)


@click.command()
@click.option("--task", "-t", help="The task to bootstrap (default: default_task).")
@click.option("--domain", help="Only this domain's cells.")
@click.option("--per-cell", type=click.IntRange(min=1), help="Examples per cell (default: the task's per_cell).")
@click.option("--dry-run", is_flag=True, help="Print the plan and the LM calls it would make; call nothing.")
@click.option("--concurrency", type=click.IntRange(min=1), help="LM calls at once (default: [lm.generation] "
              "concurrency).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@json_option
@pass_state
def bootstrap(state: CliState, task: str | None, domain: str | None, per_cell: int | None, dry_run: bool,
              concurrency: int | None, quiet: bool, as_json: bool) -> None:
    """Generate examples for every domain x topic x difficulty cell of a task with its DSPy program, through
    intake. The plan is stored: a re-run (after a crash, or beside another worker) makes only what is missing.
    Exits with 4 when slots failed or remain (re-run to try them again)."""
    from ..errors import ConfigError

    task = task or state.settings().default_task
    if not task:
        raise ConfigError("bootstrap: say which task (--task T, or default_task in trainkit.toml)")
    kit = state.kit(create=True)
    bar = _Bar(quiet or as_json or dry_run)
    try:
        report = kit.bootstrap(task, domain=domain, per_cell=per_cell, dry_run=dry_run, concurrency=concurrency,
                               progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        note(f"interrupted; finished slots are stored. Re-run `trainkit bootstrap --task {task}` to make "
             "the rest.", level="warning", task=task)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        bar.close()
    if as_json:
        echo_json(report.to_dict())
    elif dry_run:
        _print_dry_run(report)
    else:
        _print_summary(report)
    if not dry_run and not report.complete:
        sys.exit(EXIT_INCOMPLETE)


class _Bar:
    """cells done/total, accepted, rejected, retries, LM calls and tokens on one live line (a terminal only)."""

    def __init__(self, quiet: bool):
        from .progress import Progress

        self.progress = Progress("bootstrap", quiet=quiet, unit="slot", unit_scale=False)  # "5/13", not "5.00/13.0"

    def update(self, report: Any) -> None:
        if self.progress.bar is not None and report.planned:
            self.progress.bar.total = report.planned - report.done_before
        lm = report.lm
        self.progress.update(report.made + report.recovered, accepted=report.accepted, rejected=report.rejected,
                             failed=sum(report.failures.values()), retries=lm.get("retries", 0),
                             calls=lm.get("calls", 0), tokens=lm.get("total_tokens", 0))

    def close(self) -> None:
        self.progress.close()


def _print_dry_run(report: Any) -> None:
    echo_table(["domain", "topic", "difficulty", "planned", "done", "to make"],
               [(c["domain"] or "-", c["topic"] or "-", c["difficulty"] or "-", c["planned"], c["done"], c["to_make"])
                for c in report.cells])
    calls = "1 LM call each" if report.program.startswith("dspy.Predict(") else "at least 1 LM call each"
    click.echo(f"plan {report.plan}: {report.planned} slots, {report.done} done; would make {report.to_make} "
               f"example(s) with {report.program} on {report.model or '(no model configured)'}: {calls}, "
               f"{report.to_make} call(s) before retries. Nothing was called or stored.")
    _print_stale(report)


def _print_stale(report: Any) -> None:
    if report.stale:
        click.echo(f"{report.stale} slot(s) of the stored plan belong to cells no longer in the task's settings "
                   "(a topic, difficulty or domain was removed): kept with their examples, not counted or filled")


def _print_summary(report: Any) -> None:
    lm = report.lm
    click.echo(f"plan {report.plan}: {report.planned} slots: {report.done} done, {report.failed} failed, "
               f"{report.pending} pending, {report.in_progress} held by other workers")
    _print_stale(report)
    click.echo(f"this run: {report.made} stored ({report.accepted} accepted, {report.candidates} candidates, "
               f"{report.rejected} rejected), {report.recovered} recovered, {report.duplicates} duplicate "
               f"result(s) generated again; done before: {report.done_before}, by other workers: {report.by_others}")
    click.echo(f"LM: {lm.get('calls', 0)} calls, {lm.get('retries', 0)} retries, {lm.get('prompt_tokens', 0)} prompt + "
               f"{lm.get('completion_tokens', 0)} completion tokens; errors by reason: {lm.get('errors') or {}}")
    d = report.diversity
    if d.get("examples"):
        click.echo(f"diversity of the {d['examples']} stored: distinct-1 {d['distinct_1']}, distinct-2 "
                   f"{d['distinct_2']}, cells {d['cells_covered']}/{d['cells_total']} covered "
                   f"({d['min_per_cell']}-{d['max_per_cell']} per cell)")
    if report.failed_slots:
        echo_table(["slot", "reason", "attempts", "error"],
                   [(f["slot"], f["reason"], f["attempts"], f["error"][:80]) for f in report.failed_slots[:20]])
    if not report.complete:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report.failures.items())) or "interrupted"
        note(f"incomplete ({reasons}); re-run `trainkit bootstrap --task {report.task}` to try the failed and "
             "pending slots again", level="warning", task=report.task)
