"""A sample third-party dspy-trainkit plugin, registered as `sample` in the `dspy_trainkit` entry-point group.

It shows the shape of an external plugin and is pip-installed by the project's tests to prove that discovery,
listing, disabling and every hook kind work for a distribution that is not part of dspy-trainkit:

* ``validate``: a warning ``sample-todo`` for any example whose outputs contain the text "TODO";
* ``score``: a dimension ``sample_length`` in 0..1 from the total length of the outputs (200 characters = 1);
* ``on_data_changed``: remembers the kind of every committed change in ``SEEN_EVENTS``;
* ``register_commands``: adds ``trainkit sample-hello``;
* ``import_format``: reads ``.tsv`` files (a header row of field names, then one tab-separated record per line)
  as the import format ``tsv``.
"""

from __future__ import annotations

from pathlib import Path

import click

from dspy_trainkit import Finding, hookimpl

#: Output length (in characters) that scores 1.0 on `sample_length`.
FULL_LENGTH = 200
#: Kinds of the events this plugin was told about, in order (for tests).
SEEN_EVENTS: list[str] = []


def _output_text(example) -> str:
    return " ".join(str(value) for value in example.outputs.values())


@hookimpl
def validate(examples, context):
    found = {}
    for index, example in enumerate(examples):
        if "TODO" in _output_text(example):
            found[index] = [Finding(severity="warning", code="sample-todo", field="outputs",
                                    message="an output still contains TODO")]
    return found


@hookimpl
def score(examples, context):
    return {index: {"sample_length": min(1.0, sum(len(str(v)) for v in ex.outputs.values()) / FULL_LENGTH)}
            for index, ex in enumerate(examples)}


@hookimpl
def on_data_changed(event, context):
    SEEN_EVENTS.append(event.kind)


@hookimpl
def register_commands(cli):
    from dspy_trainkit.pluginkit import pass_state

    @cli.command("sample-hello")
    @pass_state
    def sample_hello(state):
        """Say hello and count the examples in the store (a command added by the sample plugin)."""
        click.echo("hello from sample")
        click.echo(f"examples: {state.kit().count()}")


def read_tsv(path: Path, options):
    """`(position, record)` per line of a tab-separated file; a line with the wrong number of cells is an error
    for that line only."""
    with path.open(encoding=options.encoding or "utf-8", newline="") as stream:
        header = stream.readline().rstrip("\r\n").split("\t")
        for number, line in enumerate(stream, start=2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            cells = line.split("\t")
            if len(cells) != len(header):
                yield f"line {number}", ValueError(f"{len(cells)} cells but the header has {len(header)} columns")
                continue
            yield f"line {number}", dict(zip(header, cells, strict=True))


@hookimpl
def import_format(register):
    register("tsv", ("tsv",), read_tsv)
