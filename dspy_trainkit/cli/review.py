"""`trainkit review`: go through examples one at a time and accept, reject, edit or skip each.

It reads one key (a line) per decision from standard input, so it works on a terminal and when driven by a
script. Edits open $EDITOR on the example's editable fields as YAML; the edited example is validated and scored
again, and every decision and edit lands in the audit trail with actor, reason, before and after.
"""

from __future__ import annotations

from typing import Any

import click

from .logs import note
from .output import preview, printable
from .selection import query_fields, resolve_ids, selection_options
from .state import CliState, pass_state

KEYS = "[a]ccept  [r]eject  [e]dit  [s]kip  [q]uit"


def show(example: Any, position: int, total: int, why: str | None = None) -> None:
    click.echo("")
    click.secho(f"({position}/{total}) {example.id}  task={example.task}  status={example.status}  "
                f"source={example.source}", bold=True)
    labels = "  ".join(f"{k}={getattr(example, k)}" for k in ("domain", "topic", "difficulty") if getattr(example, k))
    if labels:
        click.echo(printable(f"  {labels}"))
    if why:
        click.echo(printable(f"  why now: {why}"))
    quality = "-" if example.quality is None else f"{example.quality:.2f}"
    dims = "  ".join(f"{d}={v:.2f}" for d, v in sorted(example.scores.items()))
    click.echo(f"  quality {quality}  {dims}")
    for finding in example.findings:
        click.echo(printable(f"  {finding.severity}: {finding.message} [{finding.code}, {finding.plugin}]"))
    for part in ("inputs", "outputs"):
        click.echo(f"  {part}:")
        for name, value in getattr(example, part).items():
            click.echo(f"    {name}: {preview(value, 400)}")


def edit_in_editor(example: Any) -> dict[str, Any] | None:
    """The changed editable fields after $EDITOR, or None if nothing changed or the edit was abandoned."""
    import yaml

    from ..curation import EDITABLE

    current = {k: getattr(example, k) for k in EDITABLE}
    text = yaml.safe_dump(current, allow_unicode=True, sort_keys=False, width=1000)
    while True:
        edited = click.edit(text, extension=".yaml", require_save=True)
        if edited is None:
            return None
        try:
            data = yaml.safe_load(edited)
            if not isinstance(data, dict) or set(data) - set(EDITABLE):
                raise ValueError(f"keep the keys {', '.join(EDITABLE)} and nothing else")
            return {k: v for k, v in data.items() if v != current.get(k)} or None
        except (yaml.YAMLError, ValueError) as exc:
            note(f"  not saved: {' '.join(str(exc).split())}", level="warning")
            if not click.confirm("  edit again?", default=True):
                return None
            text = edited


@click.command()
@selection_options
@click.option("--actor", default="reviewer", show_default=True, help="Your name in the audit trail.")
@click.option("--order", type=click.Choice(["stored", "doubt", "need"]), default="stored", show_default=True,
              help="doubt: the labels the program most doubts first; need: examples of the cells that need "
              "examples most first (both need --task).")
@pass_state
def review(state: CliState, actor: str, order: str, **options: Any) -> None:
    """Review examples one by one (default: the candidates waiting for review).

    \b
    Keys: a accept, r reject (asks for a reason), e edit (opens $EDITOR on YAML), s skip, q quit.
    """
    fields = query_fields(options)
    if "ids" not in fields:
        fields.setdefault("status", "candidate")
    if order != "stored" and not fields.get("task"):
        raise click.UsageError(f"--order {order} ranks by a task's evidence: add --task T")
    kit = state.kit()
    ids = list(kit.store.iter_ids(_query(resolve_ids(kit, fields))))
    if not ids:
        click.echo("nothing to review")
        return
    why: dict[str, str] = {}
    if order != "stored":
        queue = kit.review_queue(fields["task"], order=order, ids=ids)
        ids, why = [e.example_id for e in queue], {e.example_id: e.reason for e in queue}
    decided = {"accepted": 0, "rejected": 0, "edited": 0, "skipped": 0}
    for position, example_id in enumerate(ids, start=1):
        example = kit.get(example_id)
        show(example, position, len(ids), why.get(example_id))
        while True:
            key = click.prompt(KEYS, default="s", show_default=False).strip().lower()[:1]
            if key == "a":
                kit.set_status("accepted", ids=(example.id,), actor=actor, reason="review")
                decided["accepted"] += 1
            elif key == "r":
                reason = click.prompt("  reason").strip()
                kit.set_status("rejected", ids=(example.id,), actor=actor, reason=reason or "review")
                decided["rejected"] += 1
            elif key == "e":
                changes = edit_in_editor(example)
                if changes:
                    example = kit.edit(example.id, actor=actor, reason="review edit", **changes)
                    decided["edited"] += 1
                    show(example, position, len(ids), why.get(example_id))
                else:
                    click.echo("  unchanged")
                continue
            elif key == "s":
                decided["skipped"] += 1
            elif key == "q":
                _summary(decided)
                return
            else:
                click.echo(f"  unknown key {key!r}; {KEYS}")
                continue
            break
    _summary(decided)


def _query(fields: dict[str, Any]) -> Any:
    from ..store import ExampleQuery

    return ExampleQuery(**fields)


def _summary(decided: dict[str, int]) -> None:
    click.echo("reviewed: " + ", ".join(f"{k} {v}" for k, v in decided.items()))
