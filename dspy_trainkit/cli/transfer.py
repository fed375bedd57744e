"""`trainkit import` and `trainkit export`: files in and out, streaming, with progress and a summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click
import orjson

from .exits import EXIT_INTERRUPTED, EXIT_REJECTED
from .logs import note
from .output import count_of, echo_json, json_option, printable
from .progress import Progress
from .selection import query_fields, resolve_ids, selection_options
from .state import CliState, pass_state

#: Exit status of an import that stored the good records but rejected some.


def _split_names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


class RejectsFile:
    """Collects every rejected record with its position and reasons: the first few for the summary, all of
    them as JSON lines in `path` (re-importable after a fix). The file is written through `SafeOutput`: beside
    its destination and renamed into place at the end (so an input file named as the rejects file is never cut
    short mid-read), or directly to a FIFO or `/dev/stdout`; a device node is never replaced."""

    SHOWN = 20

    def __init__(self, path: Path | None):
        from ..files.writing import SafeOutput

        self.path, self.count = path, 0
        self.first: list[tuple[str, list[str]]] = []
        self.output = SafeOutput(path, "--rejects") if path else None
        self.stream: IO[bytes] | None = self.output.stream if self.output else None

    def __call__(self, position: str, record: Any, reasons: list[str]) -> None:
        self.count += 1
        if len(self.first) < self.SHOWN:
            self.first.append((position, reasons))
        if self.stream is None:
            return
        info = {"position": position, "reasons": reasons}
        if isinstance(record, dict):
            line = {"_trainkit_reject": info, **record}
        else:
            line = {"_trainkit_reject": info, "_trainkit_raw": record}
        try:
            self.stream.write(_json_line(line))
        except OSError as exc:  # a full disk, or /dev/full
            from ..files.writing import OutputError

            raise OutputError(f"--rejects {self.path}: cannot be written ({exc.strerror})") from None

    def close(self) -> None:
        if self.output is not None:
            self.output.commit()
            self.output = None


def _json_line(line: dict[str, Any]) -> bytes:
    """One rejects-file line. orjson writes no integer wider than 64 bits, which a JSON or YAML record may hold
    (the readers keep it whole): such a line is written by the standard library instead, digits intact."""
    try:
        return orjson.dumps(line, default=str) + b"\n"
    except TypeError:
        import json

        return json.dumps(line, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"


def _second_interrupt_ends_at_once() -> None:
    """While an interrupted `trainkit import` finishes (the rejects file, the interpreter's own clean-up), a
    second Ctrl-C ends the process at once with the same status, instead of a traceback from wherever it lands.
    Nothing is lost: the stored batches are committed, and a re-run writes the rejects file again. Only when the
    process is the command itself (`startup.is_command`): a program that runs the CLI in process keeps its own
    Ctrl-C."""
    import os
    import signal

    from .startup import is_command

    if is_command():
        signal.signal(signal.SIGINT, lambda *_: os._exit(EXIT_INTERRUPTED))


@click.command("import")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--task", "-t", help="Task of the records (default: a 'task' field, or default_task).")
@click.option("--format", "format_name", help="Read as this format instead of guessing from the extension.")
@click.option("--map", "maps", multiple=True, metavar="DEST=SOURCE",
              help="Rename a field; SOURCE may be a dotted path (meta.level), DEST inputs.X / outputs.X / a label.")
@click.option("--input-fields", metavar="A,B",
              help="Fields that are inputs, each required (default: the task's signature).")
@click.option("--output-fields", metavar="C,D",
              help="Fields that are outputs, each required (default: the task's signature).")
@click.option("--domain", help="Domain label for records that have none.")
@click.option("--topic", help="Topic label for records that have none.")
@click.option("--difficulty", help="Difficulty label for records that have none.")
@click.option("--encoding", help="Text encoding of the files (default UTF-8, BOM or not), e.g. latin-1.")
@click.option("--dry-run", is_flag=True, help="Read, map, validate and score, but store nothing.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write rejected records with their reasons to this JSONL file (re-importable).")
@click.option("--workers", metavar="N|auto",
              help="Worker processes that prepare batches while this one stores them (0: none; default: the "
                   "intake.workers setting).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@json_option
@pass_state
def import_(state: CliState, files: tuple[Path, ...], task: str | None, format_name: str | None,
            maps: tuple[str, ...], input_fields: str | None, output_fields: str | None, domain: str | None,
            topic: str | None, difficulty: str | None, encoding: str | None, dry_run: bool,
            rejects: Path | None, workers: str | None, quiet: bool, as_json: bool) -> None:
    """Import examples from JSON, JSONL, CSV or YAML files.

    Every record goes through validation, dedup and scoring. Good records are stored; bad ones are reported
    with file, line and reason (and written to --rejects). Re-running an import adds nothing new, so an
    interrupted import can simply be run again. A FILE of - reads standard input (give --format).

    \b
    Exit status: 0 all imported or duplicate, 3 some records rejected, 1 error, 130 interrupted.

    \b
    Example:
      trainkit import problems.jsonl --task problems --map problem=body.text --rejects bad.jsonl
    """
    from ..errors import TrainkitError
    from ..files.mapping import parse_map_options

    kit = state.kit()
    from ..files.importing import check_paths

    if workers is not None:
        import attrs

        from ..settings import MAX_INTAKE_WORKERS

        if workers != "auto" and not (workers.isascii() and workers.isdigit() and len(workers) <= 3
                                      and int(workers) <= MAX_INTAKE_WORKERS):
            raise click.BadParameter(f'expected a whole number from 0 to {MAX_INTAKE_WORKERS} or "auto", '
                                     f'got {workers!r}', param_hint="--workers")
        kit.settings = attrs.evolve(kit.settings, intake_workers=workers if workers == "auto" else int(workers))

    check_paths(kit, list(files), format_name, encoding)  # every path checked before anything is read
    if rejects is not None and any(rejects.resolve() == f.resolve() for f in files):
        raise TrainkitError(f"--rejects {rejects} is also one of the files to import; name another file")
    reject_sink = RejectsFile(rejects)
    bars: dict[str, Progress] = {}

    def progress(name: str, report: Any) -> None:
        if name not in bars:
            bars[name] = Progress(f"import {Path(name).name}", quiet=quiet)
        bars[name].update(report.read, stored=report.stored, dup=report.duplicates,
                          rejected=report.invalid + report.rejected)

    from ..scratch import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():  # SIGTERM as Ctrl-C: exit 130 saying what is kept, the rejects file written
            report = kit.import_files(files, task=task, input_fields=_split_names(input_fields),
                                      output_fields=_split_names(output_fields),
                                      field_map=parse_map_options(maps),
                                      labels={k: v for k, v in (("domain", domain), ("topic", topic),
                                                                ("difficulty", difficulty)) if v is not None},
                                      format=format_name, encoding=encoding, dry_run=dry_run,
                                      on_reject=reject_sink, progress=progress)
    except KeyboardInterrupt:
        _second_interrupt_ends_at_once()
        note("\ninterrupted: a dry run stores nothing" if dry_run else
             "\ninterrupted: the batches already stored are kept; run the same command again to finish "
             "(stored records are skipped as duplicates)", level="warning")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        for bar in bars.values():
            bar.close()
        reject_sink.close()
    if as_json:
        echo_json({**report.to_dict(), "dry_run": dry_run, "rejects_file": str(rejects) if rejects else None})
    else:
        _print_summary(report, dry_run, rejects, reject_sink)
    if report.rejected:
        sys.exit(EXIT_REJECTED)


def _print_summary(report: Any, dry_run: bool, rejects: Path | None, sink: RejectsFile) -> None:
    """The first rejected records with their reasons on stderr, then the counts."""
    for position, reasons in sink.first:
        note(printable(f"{position}: {'; '.join(reasons)}"), level="warning", position=str(position),
             reasons=list(reasons))
    prefix = "dry run, nothing stored: " if dry_run else ""
    click.echo(f"{prefix}read {report.read}, imported {report.imported}, duplicates {report.duplicates}, "
               f"rejected {report.rejected}")
    hidden = sink.count - len(sink.first)
    if hidden > 0:
        where = f"all are in {rejects}" if rejects else "use --rejects FILE to get every one with its reason"
        note(f"({hidden} more rejected records not shown above; {where})", level="warning")
    elif rejects and sink.count:
        note(f"rejected records written to {rejects}")


@click.command()
@click.option("--format", "format_name", help="jsonl, json, csv, yaml, dspy, ... (default: from -o's extension).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write ('-' for standard output, with --format).")
@selection_options
@click.option("--provenance", is_flag=True, help="Add id, status, source, scores, provenance and times.")
@click.option("--keep-formulas", is_flag=True, help="CSV: write text that starts with = + - @ as it is (by default "
              "it gets a leading ' so a spreadsheet shows it as text instead of running it).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (count, file) as JSON.")
@pass_state
def export(state: CliState, format_name: str | None, output: Path, provenance: bool, keep_formulas: bool,
           quiet: bool, as_json: bool, **options: Any) -> None:
    """Export examples to a file, streaming (written to a temporary file, renamed when complete).

    The selection options choose what is exported (default: every example; for --format dspy: the accepted
    ones, since that file is a trainset).

    \b
    The dspy format loads back in DSPy alone:
      d = json.load(open("train.dspy.json"))
      trainset = [dspy.Example(**e).with_inputs(*d["input_keys"]) for e in d["examples"]]
    """
    kit = state.kit()
    fields = resolve_ids(kit, query_fields(options))
    is_dspy = format_name == "dspy" or (format_name is None and output.name.endswith(".dspy.json"))
    if is_dspy and "status" not in fields and "ids" not in fields:
        fields["status"] = "accepted"
    to_stdout = str(output) == "-"
    bar = Progress(f"export {output.name}", quiet=quiet or to_stdout)
    from ..scratch import terminated_as_exit

    try:
        with terminated_as_exit():  # SIGTERM removes the temporary file, as Ctrl-C does
            count = kit.export(None if to_stdout else output, format=format_name, provenance=provenance,
                               keep_formulas=keep_formulas, progress=lambda n: bar.update(n), **fields)
    finally:
        bar.close()
    if to_stdout:
        return
    if as_json:
        echo_json({"exported": count, "output": str(output)})
    else:
        click.echo(f"exported {count_of(count, 'example')} to {output}")
