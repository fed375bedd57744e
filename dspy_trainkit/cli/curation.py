"""Curation commands: bulk `accept`, `reject`, `archive`, re-scoring with `score`, and the audit `log`."""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any

import click

from .output import count_of, echo_json, echo_json_stream, json_option, printable, when
from .progress import Progress
from .selection import query_fields, resolve_ids, selection_options
from .state import CliState, pass_state


def _require_selection(fields: dict[str, Any], all_: bool, verb: str) -> None:
    if not fields and not all_:
        raise click.UsageError(f"say which examples to {verb}: --id, --where, --task, ... (or --all for every one)")


def _status_command(name: str, status: str, verb: str, summary: str) -> click.Command:
    @click.command(name, help=f"{summary}\n\nEvery change is recorded in the audit trail with actor and reason "
                              f"(see `trainkit log`).")
    @selection_options
    @click.option("--all", "all_", is_flag=True, help=f"{verb.capitalize()} every example the options select, "
                                                      "even with no option (all examples).")
    @click.option("--reason", default="", help="Why (kept in the audit trail" +
                  ("; required for reject)." if status == "rejected" else ")."))
    @click.option("--actor", default="cli", show_default=True, help="Who decides (kept in the audit trail).")
    @click.option("--quiet", "-q", is_flag=True, help="No progress line.")
    @json_option
    @pass_state
    def command(state: CliState, all_: bool, reason: str, actor: str, quiet: bool, as_json: bool,
                **options: Any) -> None:
        fields = query_fields(options)
        _require_selection(fields, all_, verb)
        if status == "rejected" and not reason:
            raise click.UsageError("give --reason: the audit trail says why examples were rejected")
        bar = Progress(verb, quiet=quiet)
        try:
            kit = state.kit()
            changed = kit.set_status(status, actor=actor, reason=reason, progress=bar.update, all=all_,
                                     **resolve_ids(kit, fields))
        finally:
            bar.close()
        if as_json:
            echo_json({"status": status, "changed": changed})
        else:
            click.echo(f"{count_of(changed, 'example')} now {status}")

    return command


accept = _status_command("accept", "accepted", "accept", "Accept the selected examples for training.")
reject = _status_command("reject", "rejected", "reject", "Reject the selected examples (with --reason).")
archive = _status_command("archive", "archived", "archive", "Archive the selected examples (kept, not used).")


@click.command()
@selection_options
@click.option("--rescore", is_flag=True, help="Also examples that already have scores (default: only unscored).")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@json_option
@pass_state
def score(state: CliState, rescore: bool, reason: str, quiet: bool, as_json: bool, **options: Any) -> None:
    """Validate and score stored examples again with the plugins loaded now, in batches.

    Statuses stay as they are; findings, scores and quality are replaced, and each change is in the audit trail.
    Without --rescore only examples without a quality score are done.
    """
    fields = query_fields(options)
    if not rescore:
        fields["where"] = (*fields.get("where", ()), *_unscored())
    kit = state.kit()
    fields = resolve_ids(kit, fields)
    total = kit.count(**fields)
    bar = Progress("score", quiet=quiet)
    try:
        changed = kit.rescore(actor="cli", reason=reason or "trainkit score", progress=bar.update, **fields)
    finally:
        bar.close()
    if as_json:
        echo_json({"selected": total, "changed": changed})
    else:
        click.echo(f"scored {count_of(total, 'example')}; {changed} changed")


def _unscored() -> tuple[tuple[str, str, object], ...]:
    return (("quality", "=", None),)


@click.command()
@click.option("--id", "example_id", metavar="ID", help="Only changes of this example (a unique part of its id).")
@click.option("--since", metavar="WHEN", help="Only changes after this time: ISO date/time or e.g. 2h, 3d.")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=50, show_default=True,
              help="Show the last N (0 = all).")
@json_option
@pass_state
def log(state: CliState, example_id: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Show the audit trail: who changed what, when and why (before and after for edits)."""
    kit = state.kit()
    if example_id:
        example_id = kit.get(example_id).id
    start = _parse_since(since) if since else None
    if as_json:
        stream = kit.events(example_id=example_id, since=start)
        events = list(collections.deque(stream, maxlen=limit)) if limit else list(stream)  # the last N, streamed
        echo_json_stream(e.to_dict() for e in events)
        return
    # the text shows how many examples an event names, not which: counted by the store, not read
    counted = kit.store.iter_event_counts(example_id=example_id, since=start)
    for event, count in (collections.deque(counted, maxlen=limit) if limit else counted):
        click.echo(printable(f"{when(event.time)}  {event.kind:<15} {event.actor:<10} {count_of(count, 'example')}"
                             + (f"  reason: {event.reason}" if event.reason else "")))
        changes = event.details.get("changes", {})
        for changed_id, fields in list(changes.items())[:5 if not example_id else None]:
            if example_id and changed_id != example_id:
                continue
            for field, (before, after) in fields.items():
                click.echo(printable(f"    {changed_id} {field}: {_short(before)} -> {_short(after)}"))
        if not example_id and len(changes) > 5:
            click.echo(f"    ... and {len(changes) - 5} more (use --id or --json)")


def _short(value: Any, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _parse_since(text: str) -> float:
    units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[:-1].isdigit() and text[-1] in units:
        return dt.datetime.now(dt.UTC).timestamp() - int(text[:-1]) * units[text[-1]]
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use an ISO date/time (2026-11-24T10:00) or an age like 2h, 3d",
                                 param_hint="--since") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()
