"""The `trainkit synthesize` command: run a synthesis strategy and print what it made, kept and could not make.

Exit status: 0 when everything asked for was made and nothing was rejected; 3 when some candidates were rejected
(or could not become examples), as `trainkit import` does; 4 when the strategy could not make some of them (LM
failures, malformed answers, failed template checks); 130 when interrupted (the batches stored are kept; running
the same command again stores nothing twice).
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from .exits import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_REJECTED
from .logs import note
from .output import count_of, echo_json, echo_table, json_option
from .selection import query_fields, resolve_ids, selection_options
from .state import CliState, pass_state


def parse_from(text: str | None) -> tuple[str, ...]:
    """`--from "topic=fractions difficulty=easy"`: conditions as `--where` takes them, separated by spaces (quote
    a value with spaces: "topic='linear equations'"); a lone `and` between them is allowed."""
    if not text:
        return ()
    try:
        parts = shlex.split(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: {exc}", param_hint="--from") from None
    return tuple(p for p in parts if p.lower() != "and")


@click.command()
@click.option("--strategy", "-s", metavar="NAME", help="The strategy: template, paraphrase, harder, easier, "
              "topic-transfer, persona, or one a plugin adds (see --list).")
@click.option("--from", "from_", metavar="SELECTION",
              help="Seed examples (and target cells) as conditions, e.g. \"topic=fractions difficulty=easy\" "
                   "(default: the task's accepted examples).")
@click.option("--count", "-n", type=click.IntRange(min=1), help="How many examples to make.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: the same seed makes the same candidates.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A strategy option, e.g. 'personas=[\"a chef\"]' or steps=2 (repeatable; values read as TOML).")
@click.option("--dry-run", is_flag=True, help="Make and check the candidates, store nothing.")
@click.option("--list", "list_", is_flag=True, help="List the strategies and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@json_option
@selection_options
@pass_state
def synthesize(state: CliState, strategy: str | None, from_: str | None, count: int | None, seed: int,
               options: tuple[str, ...], dry_run: bool, list_: bool, quiet: bool, as_json: bool, **selection: Any
               ) -> None:
    """Make synthetic examples with a strategy, through validation, dedup and scoring.

    \b
    Examples:
      trainkit synthesize --task problems --strategy template --count 130 --seed 1
      trainkit synthesize -t problems -s harder --from "difficulty=easy" -n 20
    """
    from ..generation.synthesis import describe, parse_options
    from ..generation.synthesis import synthesize as run

    if list_:
        _list(describe(state.plugin_manager()), as_json)
        return
    if not strategy:
        raise click.UsageError("give --strategy NAME (see `trainkit synthesize --list`)")
    if count is None:
        raise click.UsageError("give --count N, how many examples to make")
    fields = query_fields({**selection, "where": (*selection.get("where", ()), *parse_from(from_))})
    kit = state.kit()
    task = fields.pop("task", None) or kit.settings.default_task
    if not task:
        raise click.UsageError("give --task (or set default_task in trainkit.toml)")
    fields = resolve_ids(kit, fields)
    from ..store import ExampleQuery
    from .progress import Progress

    progress = Progress(f"synthesize {strategy}", quiet=quiet or as_json, unit="ex")
    try:
        report = run(kit, task, strategy, count, query=ExampleQuery(**fields), seed=seed, dry_run=dry_run,
                     options=parse_options(options), actor="cli", progress=lambda r: progress.update(
                         r.made, accepted=r.accepted, rejected=r.rejected, failures=r.failures))
    except KeyboardInterrupt:
        progress.close()
        note("interrupted: the batches stored so far are kept; run the same command again to go on "
             "(nothing is stored twice)", level="warning")
        sys.exit(EXIT_INTERRUPTED)
    progress.close()
    data = report.to_dict()
    if as_json:
        echo_json(data)
    else:
        _print(data)
    if report.failures:
        sys.exit(EXIT_INCOMPLETE)
    if report.rejected or report.invalid:
        sys.exit(EXIT_REJECTED)


def _list(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        echo_json(rows)
        return
    echo_table(["name", "plugin", "lm", "seeds", "description"],
               ((r["name"], r["plugin"], "yes" if r["needs_lm"] else "no", "yes" if r["needs_seeds"] else "no",
                 r["description"]) for r in rows))


def _print(r: dict[str, Any]) -> None:
    verb = "would store" if r["dry_run"] else "stored"
    model = f", model {r['model']}" if r["model"] else ""
    seeds = f", from {count_of(r['seeds'], 'seed example')}" if r["seeds"] else ""
    click.echo(f"synthesize {r['strategy']} for task {r['task']} (seed {r['seed']}{model}{seeds}): "
               f"made {r['made']} of {r['count']}")
    held = f" ({r['held']} held by max_synthetic_ratio)" if r["held"] else ""
    click.echo(f"{verb}: accepted {r['accepted']}, candidate {r['candidate']}{held}, rejected {r['rejected']}; "
               f"duplicates {r['duplicates']}, invalid {r['invalid']}")
    if r["rejected_by_reason"]:
        click.echo("rejected by reason: " + ", ".join(f"{k} {v}" for k, v in r["rejected_by_reason"].items()))
    if r["failures"]:
        click.echo(f"could not make {r['failures']}: "
                   + ", ".join(f"{k} {v}" for k, v in r["failures_by_reason"].items()))
        for sample in r["failure_samples"][:5]:
            parent = f" (seed example {sample['parent']})" if sample.get("parent") else ""
            note(f"  {sample['reason']}{parent}: {sample['message']}", level="warning", reason=sample["reason"])
    d = r["diversity"]
    if d.get("examples"):
        cells = (f", cells {d['cells_covered']}/{d['cells_total']} covered ({d['min_per_cell']}-"
                 f"{d['max_per_cell']} per cell)") if d.get("cells_total") else ""
        click.echo(f"diversity: distinct-1 {d['distinct_1']}, distinct-2 {d['distinct_2']}{cells}")
    if r["lm"]:
        lm = r["lm"]
        click.echo(f"LM: {lm.get('calls', 0)} calls, {lm.get('retries', 0)} retries, {lm.get('failed', 0)} failed "
                   f"items, {lm.get('total_tokens', 0)} tokens")
    for message in r["notes"]:
        note(f"note: {message}")


for _param in synthesize.params:  # the shared selection options, worded for what they mean here
    if _param.name == "task":
        _param.help = "The task to make examples of (default: default_task)."
    elif _param.name in ("status", "source", "min_quality", "ids"):
        _param.help = (_param.help or "").replace("Only", "Seeds: only")
