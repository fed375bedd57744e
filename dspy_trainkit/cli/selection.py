"""The options that select examples (`--task`, `--status`, labels, `--min-quality`, `--where`, `--id`), shared
by every command that reads or changes a set of examples, and turning them into an ExampleQuery's fields."""

from __future__ import annotations

from typing import Any

import click

from ..models import SOURCES, STATUSES

SELECTION_KEYS = ("task", "status", "source", "domain", "topic", "difficulty", "min_quality", "where", "ids")


def selection_options(func: Any) -> Any:
    """Decorate a command with the selection options; read them back with `query_fields(kwargs)`."""
    options = [
        click.option("--task", "-t", help="Only this task."),
        click.option("--status", type=click.Choice(STATUSES), help="Only this status."),
        click.option("--source", type=click.Choice(SOURCES), help="Only this source."),
        click.option("--domain", help="Only this domain."),
        click.option("--topic", help="Only this topic."),
        click.option("--difficulty", help="Only this difficulty."),
        click.option("--min-quality", type=click.FloatRange(0, 1), help="Only examples with quality >= this."),
        click.option("--where", multiple=True, metavar="COND",
                     help="A condition FIELD OP VALUE, e.g. 'quality<0.5' or 'topic=geometry' (repeatable, ANDed)."),
        click.option("--id", "ids", multiple=True, metavar="ID", help="Only this example (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def query_fields(kwargs: dict[str, Any], *, pop: bool = True) -> dict[str, Any]:
    """The ExampleQuery fields the selection options gave (removed from `kwargs` unless pop=False)."""
    from ..store.where import parse_all

    values = {k: (kwargs.pop(k, None) if pop else kwargs.get(k)) for k in SELECTION_KEYS}
    fields = {k: v for k, v in values.items() if v not in (None, (), [])}
    if "where" in fields:
        fields["where"] = parse_all(fields["where"])
    if "ids" in fields:
        fields["ids"] = tuple(fields["ids"])
    return fields


def resolve_ids(kit: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """Full ids for `--id` values given as a unique start or end of an id (as `show` accepts them); an id
    that matches nothing or several examples is an error naming it."""
    if "ids" in fields:
        fields = {**fields, "ids": tuple(kit.get(part).id for part in fields["ids"])}
    return fields
