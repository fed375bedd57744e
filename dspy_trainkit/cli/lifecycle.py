"""Lifecycle commands: `snapshot` (create, list, show, diff, export), `balance report`, `cleanup`,
`freshness`, `backup` and `restore`. The work is done in `dspy_trainkit.lifecycle`; this module parses
options and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .logs import note
from .output import count_of, echo_json, echo_table, json_option, when
from .progress import Progress
from .selection import query_fields, resolve_ids, selection_options
from .state import CliState, pass_state


@click.group()
def snapshot() -> None:
    """Immutable, named sets of examples that optimization reads (reproducible trainsets)."""


@snapshot.command("create")
@click.argument("name")
@selection_options
@click.option("--balanced", is_flag=True, help="At most --cap examples per domain/topic/difficulty cell, best "
              "quality first (needs --task).")
@click.option("--cap", type=click.IntRange(min=1), help="Per-cell cap for --balanced (default: the task's cell_cap).")
@click.option("--total", type=click.IntRange(min=1), help="With --balanced: at most this many, spread over cells.")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@json_option
@pass_state
def snapshot_create(state: CliState, name: str, balanced: bool, cap: int | None, total: int | None, reason: str,
                    quiet: bool, as_json: bool, **options: Any) -> None:
    """Take snapshot NAME of the selected examples (default: accepted ones); it never changes afterwards."""
    from ..lifecycle import snapshots
    from ..store import ExampleQuery

    fields = query_fields(options)
    fields.setdefault("status", "accepted")
    kit = state.kit()
    bar = Progress("snapshot", quiet=quiet)
    try:
        snap = snapshots.create(kit, name, ExampleQuery(**resolve_ids(kit, fields)), balanced=balanced, cap=cap,
                                total=total, actor="cli", reason=reason, progress=bar.update)
    finally:
        bar.close()
    if as_json:
        echo_json({"name": snap.name, "size": len(snap.members), "config": snap.config})
    else:
        click.echo(f"snapshot {snap.name}: {count_of(len(snap.members), 'example')}")


@snapshot.command("list")
@json_option
@pass_state
def snapshot_list(state: CliState, as_json: bool) -> None:
    """List snapshots, oldest first."""
    found = state.kit().store.list_snapshots()
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo("no snapshots yet; take one with `trainkit snapshot create NAME`")
        return
    echo_table(["name", "created", "size", "digest"], [(s["name"], when(s["created_at"]), s["size"],
                                                         s["digest"][:12]) for s in found])


@snapshot.command("show")
@click.argument("name")
@json_option
@pass_state
def snapshot_show(state: CliState, name: str, as_json: bool) -> None:
    """Show a snapshot: its config, counts per task and cell, and (with --json) its members."""
    from ..lifecycle import snapshots

    kit = state.kit()
    info = snapshots.info(kit, name)
    members = list(kit.store.snapshot_members(name))
    if as_json:
        echo_json({**info, "members": [{"id": m[0], "content_hash": m[1], "task": m[2], "domain": m[3],
                                        "topic": m[4], "difficulty": m[5]} for m in members]})
        return
    click.echo(f"snapshot {name}: {count_of(info['size'], 'example')}, taken {when(info['created_at'])}, "
               f"digest {info['digest'][:16]}")
    click.echo(f"selection: {info['config'].get('query')}" + ("  (balanced)" if info["config"].get("balanced") else ""))
    counts: dict[tuple[Any, ...], int] = {}
    for m in members:
        counts[m[2:]] = counts.get(m[2:], 0) + 1
    echo_table(["task", "domain", "topic", "difficulty", "count"],
               [(*k, n) for k, n in sorted(counts.items(), key=lambda kv: tuple(str(v) for v in kv[0]))])


@snapshot.command("diff")
@click.argument("a")
@click.argument("b")
@json_option
@pass_state
def snapshot_diff(state: CliState, a: str, b: str, as_json: bool) -> None:
    """What changed from snapshot A to snapshot B: added, removed, changed (by content hash), grouped."""
    from ..lifecycle import snapshots

    result = snapshots.diff(state.kit(), a, b)
    if as_json:
        echo_json(result)
        return
    click.echo(f"{a} -> {b}: added {len(result['added'])}, removed {len(result['removed'])}, "
               f"changed {len(result['changed'])}, unchanged {result['unchanged']}")
    for group, rows in result["by"].items():
        if rows:
            click.echo(f"by {group}:")
            for label, counts in rows.items():
                click.echo(f"  {label:<24} +{counts['added']} -{counts['removed']} ~{counts['changed']}")


@snapshot.command("export")
@click.argument("name")
@click.argument("output", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "format_name", help="Export format (default: from the file extension).")
@click.option("--task", "-t", help="Only this task's examples.")
@click.option("--provenance", is_flag=True, help="Include id, status, scores, provenance and times.")
@pass_state
def snapshot_export(state: CliState, name: str, output: str, format_name: str | None, task: str | None,
                    provenance: bool) -> None:
    """Write a snapshot's examples, as they were when it was taken, to OUTPUT ('-': standard output)."""
    from ..lifecycle import snapshots

    target = None if output == "-" else Path(output)
    count = snapshots.export(state.kit(), name, target, format_name=format_name, provenance=provenance, task=task)
    if target is not None:
        note(f"wrote {count_of(count, 'example')} of snapshot {name} to {output}")


@click.group()
def balance() -> None:
    """Balance of the data over domain x topic x difficulty cells."""


@balance.command("report")
@click.option("--task", "-t", help="Only this task.")
@click.option("--status", default="accepted", show_default=True, help="Count examples with this status.")
@json_option
@pass_state
def balance_report(state: CliState, task: str | None, status: str, as_json: bool) -> None:
    """Counts and mean quality per cell against cell_target / cell_cap; names short and over-full cells."""
    from ..lifecycle import balance as balancing

    rows = [r.to_dict() for r in balancing.report(state.kit(), task=task, status=status)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no examples and no cells defined")
        return
    echo_table(["task", "domain", "topic", "difficulty", "count", "quality", "target", "cap", "state"],
               [(r["task"], r["domain"] or "-", r["topic"] or "-", r["difficulty"] or "-", r["count"],
                 "-" if r["mean_quality"] is None else f"{r['mean_quality']:.2f}", r["target"], r["cap"],
                 r["state"]) for r in rows])
    short = [r for r in rows if r["state"] == "short"]
    full = [r for r in rows if r["state"] == "over-full"]
    click.echo(f"{count_of(len(short), 'short cell')}, {count_of(len(full), 'over-full cell')}")


@click.command()
@click.option("--task", "-t", help="Only this task.")
@click.option("--dry-run", is_flag=True, help="Show what would be archived; change nothing.")
@click.option("--actor", default="cleanup", show_default=True, help="Who (kept in the audit trail).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@json_option
@pass_state
def cleanup(state: CliState, task: str | None, dry_run: bool, actor: str, quiet: bool, as_json: bool) -> None:
    """Archive examples by the [cleanup] policies (max_age_days, min_quality, superseded, over_full).

    Nothing is deleted; each example's audit entry names the policy. Snapshots keep their copies."""
    bar = Progress("cleanup", quiet=quiet or dry_run)
    try:
        result = state.kit().manager.run(task=task, dry_run=dry_run, actor=actor, progress=bar.update)
    finally:
        bar.close()
    if as_json:
        echo_json(result)
        return
    for action in result["actions"][:50]:
        click.echo(f"{action['example_id']}  {action['policy']:<13} {action['detail']}")
    if len(result["actions"]) > 50:
        click.echo(f"... and {len(result['actions']) - 50} more (use --json)")
    summary = ", ".join(f"{p} {n}" for p, n in result["by_policy"].items()) or "nothing to do"
    verb = "would archive" if dry_run else "archived"
    click.echo(f"{verb} {len(result['actions'])}: {summary}"
               + (f" ({result['in_snapshots']} stay available to snapshots)" if result["in_snapshots"] else ""))


@click.command()
@click.option("--task", "-t", help="Only this task.")
@click.option("--status", default="accepted", show_default=True, help="Only examples with this status.")
@json_option
@pass_state
def freshness(state: CliState, task: str | None, status: str, as_json: bool) -> None:
    """Age and last-used distributions per task and cell."""
    result = state.kit().manager.freshness(task=task, status=status)
    if as_json:
        echo_json(result)
        return
    rows = []
    for name, s in result["tasks"].items():
        rows.append((name, "(all)", s["count"], s["age_days"]["median"], s["age_days"]["max"], s["never_used"],
                     s["last_used_days"]["median"]))
    for c in result["cells"]:
        cell = "/".join(v or "-" for v in (c["domain"], c["topic"], c["difficulty"]))
        rows.append((c["task"], cell, c["count"], c["age_days"]["median"], c["age_days"]["max"], c["never_used"],
                     c["last_used_days"]["median"]))
    if not rows:
        click.echo("no examples")
        return
    echo_table(["task", "cell", "count", "median age d", "max age d", "never used", "median since use d"], rows)


class BackupGroup(click.Group):
    """`trainkit backup FILE`, `trainkit backup --dir D --keep N` and `trainkit backup verify FILE` under one
    name: a first word that names a subcommand selects it, anything else is the plain backup (a file actually
    called "verify" is written as `./verify`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:
            click.Command.parse_args(self, ctx, [])  # the plain form's options take their defaults
            ctx._protected_args, ctx.args = args[:1], args[1:]
            return ctx.args
        ctx.allow_interspersed_args = True  # `backup FILE --json` as well as `backup --json FILE`
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] FILE | --dir DIR [--keep N] | verify FILE")


class _PlainFile(click.Argument):
    """The plain form's FILE, left out of the subcommands' usage line (`trainkit backup verify FILE`)."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


@click.group(cls=BackupGroup, invoke_without_command=True)
@click.argument("file", type=click.Path(dir_okay=False), required=False, cls=_PlainFile)
@click.option("--dir", "folder", type=click.Path(file_okay=False), metavar="DIR",
              help="Write a timestamped backup (trainkit-YYYYMMDDTHHMMSSZ.tgz) into DIR instead of FILE.")
@click.option("--keep", type=click.IntRange(min=1), metavar="N",
              help="With --dir: then delete all but the newest N backups of this store in DIR (only files "
                   "this command names and made for this store; never the one just written).")
@click.option("--portable", is_flag=True, default=None,
              help="JSON-lines archive restorable into any backend (default for PostgreSQL; SQLite stores get "
                   "a file copy by SQLite's online backup).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@json_option
@pass_state
@click.pass_context
def backup(ctx: click.Context, state: CliState, file: str | None, folder: str | None, keep: int | None,
           portable: bool | None, quiet: bool, as_json: bool) -> None:
    """Write a consistent backup of the store to FILE (or a timestamped file in --dir) while writers keep
    working, with checksums; `trainkit backup verify FILE` checks one by a trial restore."""
    if ctx.invoked_subcommand is not None:
        return
    from ..lifecycle.backup import backup as make_backup
    from ..lifecycle.rotation import backup_name, clean_reservations, reserved_by, rotate
    from ..scratch import terminated_as_exit
    from ..store import redact_url

    if (file is None) == (folder is None):
        raise click.UsageError("give either FILE or --dir DIR (see `trainkit backup --help`)")
    if keep is not None and folder is None:
        raise click.UsageError("--keep N rotates the backups in --dir DIR; give --dir too")
    if folder is not None:
        where = Path(folder)
        if not where.is_dir():
            raise click.UsageError(f"--dir {folder}: no such folder (create it first)")
        clean_reservations(where)  # names reserved by backups that were killed (SIGKILL, a power cut)
        target = backup_name(where)
    else:
        target = Path(file)  # type: ignore[arg-type]
    bar = Progress("backup", quiet=quiet)
    try:
        kit = state.kit(migrate=False)  # the store as it is: a backup before an upgrade must not upgrade it
        with terminated_as_exit():  # SIGTERM (systemd stopping the unit) removes the partial file too
            manifest = make_backup(kit, target, portable=portable, progress=bar.update)
    except BaseException as exc:
        if folder is not None and reserved_by(target) is not None:
            target.unlink(missing_ok=True)  # the name reserved for this backup, which was not written
        if type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg2", "peewee"):  # a full disk, a bad page
            from ..lifecycle.restore import BackupError

            raise BackupError(f"backup {target} not written: the database said {exc}; free disk space beside "
                              "the store and the backup (SQLite copies the store first), or run `trainkit "
                              "doctor` if the store itself is damaged") from None
        raise
    finally:
        bar.close()
    deleted = rotate(target.parent, redact_url(kit.store.url), keep, target) if keep is not None else []
    if as_json:
        echo_json({"file": str(target), **manifest, "deleted": [str(p) for p in deleted]})
    else:
        counts = manifest["counts"]
        click.echo(f"backup {target} ({manifest['kind']}): {_counted(counts)}")
        if keep is not None:
            click.echo(f"kept the newest {keep}; deleted {len(deleted)}"
                       + (f": {', '.join(p.name for p in deleted)}" if deleted else ""))


@backup.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--max-unpacked", type=click.IntRange(min=1), metavar="MIB",
              help="Refuse a backup that unpacks to more than this many MiB (as `trainkit restore`).")
@json_option
@pass_state
def backup_verify(state: CliState, file: str, max_unpacked: int | None, as_json: bool) -> None:
    """Check a backup's checksums (and signature, with TRAINKIT_BACKUP_KEY) and restore it into a scratch
    store that is then removed. Exit status 0 when it passes, 1 when it does not."""
    from ..lifecycle.verification import verify_backup

    result = verify_backup(Path(file), state.settings(), state.plugin_manager(),
                           max_bytes=max_unpacked << 20 if max_unpacked else None)
    if as_json:
        echo_json(result)
        return
    click.echo(f"backup {file} ({result['kind']}) is good: checksums match, signature {result['signature']}, "
               f"a trial restore loaded {_counted(result['counts'])}")
    click.echo(f"content digest {result['digest']}")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--into", "into", metavar="URL", help="Restore into this store (default: the project's store); "
              "it must be empty.")
@click.option("--max-unpacked", type=click.IntRange(min=1), metavar="MIB",
              help="Refuse a backup that unpacks to more than this many MiB (default: 200 times the file's "
                   "size, at least 256 MiB, within the free space of the temporary folder).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@json_option
@pass_state
def restore(state: CliState, file: str, into: str | None, max_unpacked: int | None, quiet: bool,
            as_json: bool) -> None:
    """Check a backup's checksums (and signature, with TRAINKIT_BACKUP_KEY) and restore it into an empty store,
    all or nothing."""
    from ..kit import open as open_kit
    from ..lifecycle.restore import restore as do_restore

    settings, pm = state.settings(), state.plugin_manager()
    target = open_kit(into, settings=settings, pm=pm) if into else state.kit(create=True)
    bar = Progress("restore", quiet=quiet)
    try:
        result = do_restore(Path(file), target, progress=bar.update,
                            open_store=lambda url: open_kit(url, settings=settings, pm=pm),
                            max_bytes=max_unpacked << 20 if max_unpacked else None)
    finally:
        bar.close()
        if into:
            target.close()
    if as_json:
        echo_json(result)
    else:
        counts = result["counts"]
        click.echo(f"restored {_counted(counts)} from {file}")


def _counted(counts: dict[str, int]) -> str:
    """"3 examples, 1 snapshot, 7 events, 2 runs, 1 plan": what a backup or restore holds."""
    nouns = (("examples", "example"), ("snapshots", "snapshot"), ("events", "event"), ("runs", "run"),
             ("plans", "plan"))
    return ", ".join(count_of(counts[key], noun) for key, noun in nouns if key in counts)
