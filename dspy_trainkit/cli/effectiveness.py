"""Effectiveness commands: `value` (which examples help the task's program, from the stored runs) and `recommend`
(what to do next, and applying it). The work is done in `dspy_trainkit.effectiveness`; this module parses options
and prints."""

from __future__ import annotations

from typing import Any

import click

from .output import echo_json, echo_table, json_option
from .state import CliState, pass_state


@click.command()
@click.option("--task", required=True, help="The task whose examples to value.")
@click.option("--run", "run_id", metavar="ID", help="Use this optimization run's candidates only.")
@click.option("--stored", is_flag=True, help="Show the values the last valuation stored, without recomputing.")
@click.option("--top", is_flag=True, help="Highest values first (default: lowest first, what hurts most).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many examples to list (--json lists all).")
@json_option
@pass_state
def value(state: CliState, task: str, run_id: str | None, stored: bool, top: bool, limit: int,
          as_json: bool) -> None:
    """Which examples help TASK's program: each accepted example's value as a demonstration, estimated from the
    random-search candidates of the stored optimization runs (metric points per inclusion, with its standard
    error and the number of candidates that showed it). Values are stored; --stored reads them back."""
    kit = state.kit()
    if run_id is not None:
        run_id = kit.run(run_id).id  # a unique end of the id is enough
    if stored:
        values = kit.values(task, order="-value" if top else "value")
        if as_json:
            echo_json([v.to_dict() for v in values])
            return
        _table(values, limit)
        return
    report = kit.value(task, run=run_id, actor="cli")
    values = list(reversed(report.values)) if top else report.values
    if as_json:
        echo_json({**report.to_dict(), "values": [v.to_dict() for v in values]})
        return
    click.echo(f"{task}: {len(report.values)} example(s) valued from {report.candidates} candidate(s) of "
               f"{report.runs} run(s); {len(report.uncovered)} accepted example(s) not covered by the evidence")
    if not report.values:
        click.echo(f"not enough evidence yet: run `trainkit optimize --task {task} --optimizer random-search` (each "
                   "candidate it evaluates is evidence) and value again")
        return
    _table(values, limit)


def _table(values: list[Any], limit: int) -> None:
    shown = values[:limit]
    echo_table(["example", "value", "stderr", "candidates", "stale"],
               [(v.example_id[-8:], f"{v.value:+.2f}", "-" if v.stderr is None else f"{v.stderr:.2f}",
                 v.observations, "yes" if v.stale else "") for v in shown])
    if len(values) > limit:
        click.echo(f"... {len(values) - limit} more (--limit, or --json for all)")


@click.command()
@click.option("--task", required=True, help="The task to advise on.")
@click.option("--apply", "apply_id", metavar="ID", help="Apply this recommendation (its id, or a unique start of "
              "it) through curation; the audit trail names it.")
@click.option("--actor", default="cli", show_default=True, help="Who applies it, for the audit trail.")
@json_option
@pass_state
def recommend(state: CliState, task: str, apply_id: str | None, actor: str, as_json: bool) -> None:
    """What to do next with TASK's data: ranked recommendations (review examples that hurt as demos, add
    examples to thin cells, value again, ...), each with its reason and either an id to --apply or a command to
    run."""
    kit = state.kit()
    if apply_id is not None:
        chosen, changed = kit.apply_recommendation(task, apply_id, actor=actor)
        if as_json:
            echo_json({"applied": chosen.to_dict(), "changed": changed})
            return
        click.echo(f"applied {chosen.id}: {chosen.title}: {changed} example(s) now {chosen.status}")
        return
    found = kit.recommend(task)
    if as_json:
        echo_json([r.to_dict() for r in found])
        return
    if not found:
        click.echo(f"{task}: nothing to recommend")
        return
    for r in found:
        click.echo(f"{r.id}  [{r.priority:.2f}] {r.title}")
        click.echo(f"    why: {r.reason}")
        if r.applicable:
            click.echo(f"    apply: trainkit recommend --task {task} --apply {r.id}")
        elif r.command:
            click.echo(f"    run: {r.command}")
