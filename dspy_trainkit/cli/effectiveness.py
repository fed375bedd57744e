"""Effectiveness commands: `value` (which examples help the task's program, from the stored runs) and `recommend`
(what to do next, and applying it). The work is done in `dspy_trainkit.effectiveness`; this module parses options
and prints."""

from __future__ import annotations

from typing import Any

import click

from ..errors import TrainkitError
from .logs import note
from .output import echo_json, echo_table, json_option
from .state import CliState, pass_state


@click.command()
@click.option("--task", required=True, help="The task whose examples to value.")
@click.option("--run", "run_id", metavar="ID", help="Use this optimization run's candidates only.")
@click.option("--stored", is_flag=True, help="Show the values the last valuation stored, without recomputing.")
@click.option("--labels", is_flag=True, help="Also run the champion (or --run's program) on up to --label-budget "
              "accepted examples and flag labels it contradicts (one LM call each).")
@click.option("--label-budget", type=click.IntRange(min=1), default=200, show_default=True,
              help="How many examples --labels checks at most.")
@click.option("--budget", type=click.IntRange(min=1), default=None,
              help="First run a valuation: evaluate this many programs with seeded random demo subsets on one "
              "fixed validation set (--val-size LM calls each), resuming the stored plan of the same design.")
@click.option("--demos", type=click.IntRange(min=1), default=4, show_default=True,
              help="With --budget: demos per evaluated program.")
@click.option("--val-size", type=click.IntRange(min=1), default=20, show_default=True,
              help="With --budget: validation examples each program is scored on (never shown as demos).")
@click.option("--seed", type=int, default=0, show_default=True, help="With --budget: the design's seed.")
@click.option("--program", metavar="PKG.MODULE:FACTORY", help="With --budget: the program (default: the task's).")
@click.option("--metric", metavar="PKG.MODULE:FUNCTION", help="With --budget: the metric (default: [optimize]'s).")
@click.option("--dry-run", is_flag=True, help="With --budget or --labels: say how many LM calls it would make, "
              "and stop.")
@click.option("--weak", is_flag=True, help="Instead: where the program is weak, failure rates per cell of the "
              "latest successful run's dev set (or --run's).")
@click.option("--top", is_flag=True, help="Highest values first (default: lowest first, what hurts most).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many examples to list (--json lists all).")
@json_option
@pass_state
def value(state: CliState, task: str, run_id: str | None, stored: bool, labels: bool, label_budget: int,
          budget: int | None, demos: int, val_size: int, seed: int, program: str | None, metric: str | None,
          dry_run: bool, weak: bool, top: bool, limit: int, as_json: bool) -> None:
    """Which examples help TASK's program: each accepted example's value as a demonstration, estimated from the
    random-search candidates of the stored optimization runs and valuation runs (--budget) (metric points per
    inclusion, with its standard error and the number of candidates that showed it). Values are stored;
    --stored reads them back."""
    if dry_run and not (labels or budget is not None):
        raise click.UsageError("--dry-run goes with --labels or --budget (a valuation itself makes no LM call)")
    if stored and (labels or run_id is not None or budget is not None):
        raise click.UsageError("--stored shows what is stored; it takes no --labels, --budget or --run")
    if weak and (labels or budget is not None):
        raise click.UsageError("--weak reads dev results; it takes no --labels or --budget")
    kit = state.kit()
    if run_id is not None:
        run_id = kit.run(run_id).id  # a unique end of the id is enough
    if weak:
        _weak(kit, task, run_id, limit, as_json)
        return
    if stored:
        values = kit.values(task, order="-value" if top else "value")
        if as_json:  # the same shape as a fresh valuation's "values", so one reader handles both
            echo_json({"task": task, "stored": True, "values": [v.to_dict() for v in values]})
            return
        _table(values, limit)
        return
    if dry_run:
        _dry_run(kit, task, labels, label_budget, budget, demos, val_size, seed, as_json, run_id)
        return
    ran = None
    if budget is not None:
        ran = kit.valuation_run(task, budget=budget, demos=demos, val_size=val_size, seed=seed, program=program,
                                metric=metric)
        if not as_json:
            note(f"valuation {ran.plan}: {ran.evaluated} program(s) evaluated now, {ran.done_before} before, "
                 f"{ran.failed} failed, {ran.remaining} left; {ran.lm_calls} LM call(s)")
    check = None
    if labels:
        check = kit.check_labels(task, run=run_id, budget=label_budget)
        if not as_json:
            agreement = "-" if check.agreement is None else f"{check.agreement:.0%}"
            note(f"label check with run {check.run[-8:]}: {check.checked} example(s) checked, agreement "
                 f"{agreement}, {check.failed_calls} call(s) failed", run_id=check.run)
    report = kit.value(task, run=run_id, actor="cli", labels=check)
    values = list(reversed(report.values)) if top else report.values
    if as_json:
        echo_json({**report.to_dict(), "values": [v.to_dict() for v in values],
                   **({"valuation_run": ran.to_dict()} if ran is not None else {})})
        return
    valuations = f" and {report.valuations} valuation(s)" if report.valuations else ""
    click.echo(f"{task}: {len(report.values)} example(s) valued from {report.candidates} candidate(s) of "
               f"{report.runs} run(s){valuations}; {len(report.uncovered)} accepted example(s) not covered by the "
               "evidence")
    if not report.values:
        click.echo(f"not enough evidence yet: run `trainkit optimize --task {task} --optimizer random-search` (each "
                   f"candidate it evaluates is evidence), or `trainkit value --task {task} --budget N`, and value "
                   "again")
        return
    _table(values, limit)


def _dry_run(kit: Any, task: str, labels: bool, label_budget: int, budget: int | None, demos: int, val_size: int,
             seed: int, as_json: bool, run_id: str | None = None) -> None:
    """What --budget and --labels would cost in LM calls (program calls; none is made)."""
    if labels and run_id is None and kit.champion(task) is None:
        raise click.UsageError(f"task {task!r} has no champion to check labels with; optimize first, or name a "
                               "run with --run")
    label_calls = min(label_budget, kit.count(task=task, status="accepted")) if labels else 0
    planned = kit.valuation_run(task, budget=budget, demos=demos, val_size=val_size, seed=seed, dry_run=True) \
        if budget is not None else None
    value_calls = planned.lm_calls if planned is not None else 0
    if as_json:
        echo_json({"lm_calls": label_calls + value_calls, "label_calls": label_calls,
                   "valuation": planned.to_dict() if planned is not None else None})
        return
    if planned is not None:
        click.echo(f"--budget would evaluate {planned.remaining} program(s) ({planned.done_before} done before) on "
                   f"{planned.validation} validation example(s): {value_calls} program call(s); "
                   f"{planned.pool} example(s) as demos, {planned.demos} per program, each shown about "
                   f"{planned.expected_inclusions} time(s)")
    if labels:
        click.echo(f"--labels would make {label_calls} program call(s) (one per checked example)")


def _weak(kit: Any, task: str, run_id: str | None, limit: int, as_json: bool) -> None:
    spots = kit.weak_spots(task, run=run_id)
    if as_json:
        echo_json(spots.to_dict())
        return
    if spots.run is None:
        click.echo(f"{task}: no successful optimization run yet, so no dev results to learn from")
        return
    failed = len(spots.failures)
    click.echo(f"{task}: run {spots.run[-8:]}: {failed} of {sum(c['dev'] for c in spots.cells)} dev example(s) "
               "not fully right; failure rate per cell, worst first:")
    echo_table(["domain", "topic", "difficulty", "dev", "failure rate"],
               [(c["domain"], c["topic"], c["difficulty"], c["dev"], f"{c['failure_rate']:.0%}")
                for c in spots.cells[:limit]])


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


@click.group(invoke_without_command=True)
@click.option("--task", help="Only this task's alerts.")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved alerts.")
@json_option
@click.pass_context
def alerts(ctx: click.Context, task: str | None, include_resolved: bool, as_json: bool) -> None:
    """Alerts on the data and runs: rejection spikes, stalled collection, quality shifts, lost readiness, failed
    runs, ... Without a subcommand, lists the open and acknowledged ones (newest first)."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.ensure_object(CliState)
    found = state.kit().alerts(task=task, include_resolved=include_resolved)
    if as_json:
        echo_json([a.to_dict() for a in found])
        return
    if not found:
        click.echo("no open alerts" + (f" for {task}" if task else ""))
        return
    _alert_table(found)


def _alert_table(found: list[Any]) -> None:
    from .output import when

    echo_table(["alert", "severity", "status", "task", "title", "seen", "last"],
               [(a.id[-8:], a.severity, a.status, a.task, a.title, a.count, when(a.last_seen)) for a in found])


@alerts.command("check")
@click.option("--task", "tasks", multiple=True, help="Check this task (repeatable; default: every task).")
@json_option
@pass_state
def alerts_check(state: CliState, tasks: tuple[str, ...], as_json: bool) -> None:
    """Run the alert rules now: raise (and deliver) new alerts, update those still holding, resolve the rest.
    Exit status 4 when a new alert was raised, so cron can notice."""
    import sys

    from .exits import EXIT_ALERTED

    report = state.kit().check_alerts(list(tasks) or None)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(f"{len(report.raised)} new, {len(report.holding)} still holding, {len(report.resolved)} resolved")
        if report.raised:
            _alert_table(report.raised)
    if report.raised:
        sys.exit(EXIT_ALERTED)


@alerts.command("ack")
@click.argument("alert_id", metavar="ID")
@click.option("--actor", default="cli", show_default=True, help="Who acknowledges it.")
@json_option
@pass_state
def alerts_ack(state: CliState, alert_id: str, actor: str, as_json: bool) -> None:
    """Acknowledge alert ID (a unique end of its id): it stays listed while its condition holds, but is not
    delivered again."""
    alert = state.kit().acknowledge_alert(alert_id, actor=actor)
    if as_json:
        echo_json(alert.to_dict())
        return
    click.echo(f"acknowledged {alert.id}: {alert.title}")


@click.command()
@click.option("--task", required=True, help="The task to compare.")
@click.option("--from", "a", required=True, metavar="A", help="A snapshot name or an optimization run id.")
@click.option("--to", "b", required=True, metavar="B", help="A snapshot name or an optimization run id.")
@json_option
@pass_state
def impact(state: CliState, task: str, a: str, b: str, as_json: bool) -> None:
    """The impact of a change from A to B (snapshots or runs): what changed in the data per cell, the two
    programs' scores on one common dev set (A scored again on B's dev set when they differ), the dev examples
    that flipped, and which added or removed examples carry the most value."""
    report = state.kit().impact(task, a, b)
    if as_json:
        echo_json(report.to_dict())
        _fail_on(report.scores_error)
        return
    data = report.data
    click.echo(f"{task}: {report.a['name']} -> {report.b['name']}: {len(data['added'])} added, "
               f"{len(data['removed'])} removed, {len(data['changed'])} edited, {data['unchanged']} unchanged")
    if data["cells"]:
        echo_table(["domain", "topic", "difficulty", "added", "removed", "edited"],
                   [(c["domain"], c["topic"], c["difficulty"], c["added"], c["removed"], c["changed"])
                    for c in data["cells"]])
    if report.scores_error is not None:
        click.echo("scores: not compared (see the error below)")
    elif report.scores is None:
        click.echo("scores: no successful run on both sides; optimize on each snapshot to compare programs")
    else:
        s = report.scores
        click.echo(f"scores on {s['dev_examples']} common dev example(s) ({s['how']}): {s['a']:.1f} -> "
                   f"{s['b']:.1f} ({s['change']:+.1f}); {len(report.flips['fixed'])} fixed, "
                   f"{len(report.flips['broken'])} broken")
    if report.valued_changes:
        click.echo("changed examples with the largest values:")
        echo_table(["example", "change", "value", "stderr"],
                   [(v["example_id"][-8:], v["change"], f"{v['value']:+.2f}",
                     "-" if v["stderr"] is None else f"{v['stderr']:.2f}") for v in report.valued_changes[:10]])
    _fail_on(report.scores_error)


def _fail_on(error: str | None) -> None:
    """After the data change is printed: the programs' comparison failed, so the command fails with its reason."""
    if error is not None:
        raise TrainkitError(f"the programs were not compared: {error}")
