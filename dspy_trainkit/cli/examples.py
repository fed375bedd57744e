"""Commands on examples: add, list, show, stats."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from .exits import EXIT_REJECTED
from .output import echo_json, echo_json_stream, echo_table, json_option, preview, printable, when
from .selection import query_fields, resolve_ids, selection_options
from .state import CliState, pass_state

label_options = [
    click.option("--domain", help="Domain label, e.g. algebra."),
    click.option("--topic", help="Topic label within the domain."),
    click.option("--difficulty", help="Difficulty label, e.g. easy / medium / hard."),
]


def with_labels(func: Any) -> Any:
    for option in reversed(label_options):
        func = option(func)
    return func


def _pairs(values: tuple[str, ...], option: str) -> dict[str, Any]:
    """`name=value` pairs, values kept as the text typed (use --from-json for numbers, lists and mappings)."""
    fields: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not name=value", param_hint=option)
        if name in fields:
            raise click.BadParameter(f"{name!r} is given twice", param_hint=option)
        fields[name] = raw
    return fields


@click.command()
@click.option("--task", "-t", help="Task the example trains (default: default_task from settings).")
@click.option("--input", "-i", "inputs", multiple=True, metavar="NAME=VALUE", help="An input field (repeatable).")
@click.option("--output", "-o", "outputs", multiple=True, metavar="NAME=VALUE",
              help="An output (label) field (repeatable).")
@with_labels
@click.option("--from-json", "from_json", metavar="JSON|-",
              help="The whole example as a JSON object ('-' reads stdin); options above fill missing fields.")
@click.option("--reason", default="", help="Why it is added (kept in the audit trail).")
@json_option
@pass_state
def add(state: CliState, task: str | None, inputs: tuple[str, ...], outputs: tuple[str, ...], domain: str | None,
        topic: str | None, difficulty: str | None, from_json: str | None, reason: str, as_json: bool) -> None:
    """Add one example through validation, dedup and scoring.

    \b
    Example:
      trainkit add -t qa -i question="What is 2+2?" -o answer=4 --topic arithmetic
    """
    from ..errors import TrainkitError
    from ..intake import to_example

    record: dict[str, Any] = {}
    if from_json:
        text = sys.stdin.read() if from_json == "-" else from_json
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--from-json") from None
        if not isinstance(record, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--from-json")
    given = {"task": task, "domain": domain, "topic": topic, "difficulty": difficulty}
    record = {**{k: v for k, v in given.items() if v is not None}, **record}
    if inputs:
        record["inputs"] = {**record.get("inputs", {}), **_pairs(inputs, "--input")}
    if outputs:
        record["outputs"] = {**record.get("outputs", {}), **_pairs(outputs, "--output")}
    record.setdefault("source", "manual")
    if "inputs" not in record:
        raise click.UsageError("give at least one --input NAME=VALUE (or --from-json)")
    kit = state.kit()
    try:
        candidate = to_example(record, {}, kit.settings.default_task)
    except TrainkitError as exc:
        raise click.ClickException(f"example not added: {exc}") from None
    example = kit.add(candidate, actor="cli", reason=reason)
    added = example.id == candidate.id
    if as_json:
        echo_json({"added": added, "example": example.to_dict()})
        if added and example.status == "rejected":
            sys.exit(EXIT_REJECTED)
        return
    verb = "added" if added else "already stored as"
    click.echo(f"{verb} {example.id} ({example.task}, {example.status})")
    for finding in example.findings:
        click.echo(f"  {finding.severity}: {finding.message} [{finding.code}]")
    if added and example.status == "rejected":
        sys.exit(EXIT_REJECTED)


@click.command("list")
@selection_options
@click.option("--limit", "-n", type=click.IntRange(min=0), default=20, show_default=True,
              help="How many to show (0 = all).")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many first.")
@click.option("--order", type=click.Choice(["created", "-created", "-quality"]), default="created",
              show_default=True, help="Sort order.")
@json_option
@pass_state
def list_examples(state: CliState, limit: int, offset: int, order: str, as_json: bool, **options: Any) -> None:
    """List examples, filtered and paged."""
    kit = state.kit()
    examples = kit.examples(**resolve_ids(kit, query_fields(options)), limit=limit or None, offset=offset,
                            order=order)
    if as_json:
        echo_json_stream(ex.to_dict() for ex in examples)
        return
    rows = ((ex.id, ex.task, ex.status, ex.source, "/".join(x or "-" for x in (ex.domain, ex.topic,
            ex.difficulty)), "-" if ex.quality is None else f"{ex.quality:.2f}",
            preview(next(iter(ex.inputs.values()), ""))) for ex in examples)
    if echo_table(["id", "task", "status", "source", "domain/topic/difficulty", "quality", "input"], rows) == 0:
        click.echo("(no examples match)")


@click.command()
@click.argument("example_id")
@json_option
@pass_state
def show(state: CliState, example_id: str, as_json: bool) -> None:
    """Show one example by id, or by a unique start or end of it (4+ characters)."""
    example = state.kit().get(example_id)
    if as_json:
        echo_json(example.to_dict())
        return

    def echo(line: str) -> None:  # example text may hold terminal escape sequences: show them, never send them
        click.echo(printable(line))

    echo(f"id:          {example.id}")
    echo(f"task:        {example.task}")
    echo(f"status:      {example.status}    source: {example.source}")
    echo(f"labels:      domain={example.domain or '-'} topic={example.topic or '-'} "
               f"difficulty={example.difficulty or '-'}")
    quality = "-" if example.quality is None else f"{example.quality:.3f}"
    echo(f"quality:     {quality}  " + "  ".join(f"{d}={v:.3f}" for d, v in sorted(example.scores.items())))
    echo(f"created:     {when(example.created_at)}    updated: {when(example.updated_at)}")
    echo(f"hash:        {example.content_hash}")
    for part in ("inputs", "outputs"):
        echo(f"{part}:")
        for name, value in getattr(example, part).items():
            echo(f"  {name}: {value}")
    if example.findings:
        echo("findings:")
        for f in example.findings:
            echo(f"  {f.severity} {f.code} ({f.plugin}): {f.message}")
    for part in ("provenance", "metadata"):
        if getattr(example, part):
            echo(f"{part}: {orjson.dumps(getattr(example, part)).decode()}")


@click.command()
@click.option("--task", "-t", help="Only this task.")
@click.option("--collection", is_flag=True,
              help="What intake did per task and source: received, stored by status, duplicates, invalid, "
                   "rejections by reason (collected, imported, generated data alike).")
@click.option("--source", type=click.Choice(["collected", "bootstrap", "imported", "synthetic", "manual"]),
              help="Only this source.")
@json_option
@pass_state
def stats(state: CliState, task: str | None, collection: bool, source: str | None, as_json: bool) -> None:
    """Counts by task, status, source and domain/topic/difficulty."""
    if collection:
        _collection_stats(state, task, source, as_json)
        return
    result = state.kit().stats(task=task, source=source)
    if as_json:
        echo_json(result)
        return
    click.echo(f"examples: {result['total']}" + (f" (task {task})" if task else ""))
    for column in ("task", "status", "source", "domain", "topic", "difficulty"):
        counts = result[f"by_{column}"]
        if counts:
            click.echo(f"by {column}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if result["by_cell"] and any(c["domain"] or c["topic"] or c["difficulty"] for c in result["by_cell"]):
        click.echo("")
        echo_table(["domain", "topic", "difficulty", "count"],
                   ((c["domain"] or "-", c["topic"] or "-", c["difficulty"] or "-", c["count"])
                    for c in result["by_cell"]))
    share = [row for row in result.get("synthetic_share", []) if row["synthetic"]]
    if share:  # only when some accepted data is synthetic: the mix against max_synthetic_ratio
        click.echo("")
        click.echo("accepted synthetic/real:")
        echo_table(["task", "domain", "synthetic", "real", "ratio", "cap"],
                   ((r["task"], r["domain"] or "(all)", r["synthetic"], r["real"], f"{r['ratio']:.2f}",
                     "-" if r["cap"] is None else f"{r['cap']:g}") for r in result["synthetic_share"]))


def _collection_stats(state: CliState, task: str | None, source: str | None, as_json: bool) -> None:
    from ..reports.intake import intake_summary

    rows = intake_summary(state.kit(), task=task, source=source or None)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("nothing received yet")
        return
    columns = ["task", "source", "received", "stored", "accepted", "candidates", "rejected", "archived",
               "duplicates", "invalid"]
    echo_table(columns, ([r[c] for c in columns] for r in rows))
    for r in rows:
        if r["rejected_by_reason"]:
            click.echo(f"rejected {r['task']}/{r['source']} by reason: "
                       + ", ".join(f"{code} {n}" for code, n in r["rejected_by_reason"].items()))
