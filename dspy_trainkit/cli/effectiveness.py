"""Effectiveness commands: `value` (which examples help the task's program, from the stored runs). The work is
done in `dspy_trainkit.effectiveness`; this module parses options and prints."""

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
