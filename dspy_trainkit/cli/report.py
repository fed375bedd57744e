"""`trainkit report quality`: score distributions per dimension and quality per domain/topic/difficulty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .output import echo_json, echo_table, json_option
from .selection import query_fields, resolve_ids, selection_options
from .state import CliState, pass_state


@click.group()
def report() -> None:
    """Reports on the stored data."""


@report.command("quality")
@selection_options
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page with charts (no network needed to view it).")
@json_option
@pass_state
def quality(state: CliState, html_file: Path | None, as_json: bool, **options: Any) -> None:
    """Score distributions per dimension, and counts and mean quality per domain/topic/difficulty."""
    from ..reports.quality import summarise, to_html

    kit = state.kit()
    summary = summarise(kit.examples(**resolve_ids(kit, query_fields(options))))
    if html_file is not None:
        html_file.write_text(to_html(summary, "trainkit quality report"), encoding="utf-8")
    if as_json:
        echo_json(summary)
        return
    click.echo(f"examples: {summary['examples']} ("
               + ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items())) + ")")
    if summary["dimensions"]:
        echo_table(["dimension", "n", "mean", "p10", "p50", "p90", "histogram 0..1"],
                   ((d, s["count"], s["mean"], s["p10"], s["p50"], s["p90"], _spark(s["histogram"]))
                    for d, s in summary["dimensions"].items()))
    else:
        click.echo("no scores yet (are scoring plugins enabled? `trainkit plugins`)")
    if summary["cells"]:
        click.echo("")
        echo_table(["domain", "topic", "difficulty", "examples", "accepted", "mean quality"],
                   ((c["domain"], c["topic"], c["difficulty"], c["count"], c["accepted"],
                     "-" if c["mean_quality"] is None else f"{c['mean_quality']:.2f}") for c in summary["cells"]))
    if html_file is not None:
        click.echo(f"\nwrote {html_file}")


def _spark(histogram: list[int]) -> str:
    blocks = " ▁▂▃▄▅▆▇█"
    top = max(histogram) or 1
    return "".join(blocks[round(n / top * 8)] for n in histogram)
