"""Operations commands: `doctor` (is this deployment healthy, and what to do if not), `migrate` (explicit schema
upgrades) and `metrics` (Prometheus). The work is done in `dspy_trainkit.operations`; this module parses options
and prints."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click

from .exits import EXIT_PENDING
from .logs import note
from .output import echo_json, echo_table, json_option, printable
from .state import CliState, pass_state


class FiniteRange(click.FloatRange):
    """A FloatRange that also refuses nan and inf (click's bounds compare false with nan, so it passes them, and
    an infinite wait is the hang the option exists to prevent)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of {param.metavar.lower() if param else 'units'}.",
                      param, ctx)
        return number


backup_dir_option = click.option("--backup-dir", type=click.Path(file_okay=False), metavar="DIR",
                                 help="Folder the backups are written to: its newest file's age is checked.")


@click.command()
@click.option("--lm", "check_lms", is_flag=True, help="Also make one tiny call to every configured LM.")
@click.option("--lm-timeout", type=FiniteRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="How long --lm waits for each LM's answer before reporting it unreachable (no retries).")
@backup_dir_option
@click.option("--max-backup-age", type=FiniteRange(min=0), default=26.0, show_default=True, metavar="HOURS",
              help="A newest backup older than this is a warning.")
@json_option
@pass_state
def doctor(state: CliState, check_lms: bool, lm_timeout: float, backup_dir: str | None, max_backup_age: float,
           as_json: bool) -> None:
    """Check settings, store (reachable, migrations, integrity or privileges), plugins, disk, spill files,
    backups and (--lm) the LMs; say what to do for each problem. Exit status 0 healthy, 3 degraded (warnings
    only), 1 broken. Changes nothing: pending migrations are reported, not applied."""
    from ..operations.doctor import run_checks

    def make_pm(_settings: Any) -> Any:
        return state.plugin_manager()

    report = run_checks(state.settings, make_pm, lm=check_lms, backup_dir=backup_dir,
                        max_backup_age=max_backup_age * 3600, store_url=state.db,
                        lm_timeout=lm_timeout)
    if as_json:
        echo_json(report.to_dict())
    else:
        echo_table(["check", "status", "message"], [(c.name, c.status, c.message) for c in report.checks])
        for check in report.problems():
            if check.fix:
                click.echo(f"fix {check.name}: {printable(check.fix)}")
        click.echo(report.status)
    sys.exit(report.exit_code)


@click.command()
@click.option("--check", is_flag=True, help="Only list pending migrations; exit status 3 when there are some.")
@json_option
@pass_state
def migrate(state: CliState, check: bool, as_json: bool) -> None:
    """Apply the store's pending schema migrations (back up first: `trainkit backup FILE`). Stores also migrate
    when opened; this upgrades on purpose, and --check looks without changing anything."""
    from ..operations.migrations import migrate as run

    status = run(settings=state.settings(), pm=state.plugin_manager(), check=check)
    if as_json:
        echo_json(status.to_dict())
    elif status.ran:
        click.echo(f"applied {len(status.ran)} migration(s) to {status.store}: {', '.join(status.ran)}")
    elif status.pending:
        click.echo(f"{len(status.pending)} pending migration(s) in {status.store}: {', '.join(status.pending)}; "
                   "apply them with `trainkit migrate`")
    else:
        click.echo(f"{status.store} is current ({len(status.applied)} migrations applied)")
    if check and status.pending:
        sys.exit(EXIT_PENDING)


@click.group(invoke_without_command=True)
@click.option("--textfile", type=click.Path(dir_okay=False), metavar="PATH",
              help="Write one scrape to PATH for node-exporter's textfile collector (atomically), and exit.")
@backup_dir_option
@pass_state
@click.pass_context
def metrics(ctx: click.Context, state: CliState, textfile: str | None, backup_dir: str | None) -> None:
    """Prometheus metrics computed from the store: print one scrape, write it as a node-exporter textfile
    (--textfile PATH), or serve them (`trainkit metrics serve`)."""
    ctx.meta["trainkit.metrics.backup_dir"] = backup_dir  # read by `serve`
    if ctx.invoked_subcommand is not None:
        return
    from ..operations import metrics as ops_metrics

    kit = state.kit(migrate=False)  # an observer: it must not upgrade the schema (the backup unit runs it hourly)
    if textfile is not None:
        path = Path(textfile)
        if not path.parent.is_dir():
            raise click.UsageError(f"--textfile {textfile}: folder {path.parent} does not exist")
        ops_metrics.write_textfile(kit, path, backup_dir)
        note(f"wrote {path}")
        return
    click.echo(ops_metrics.render(kit, backup_dir, process=False), nl=False)  # this process did no work


@metrics.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; metrics name your tasks).")
@click.option("--port", type=click.IntRange(0, 65535), default=9464, show_default=True,
              help="Port to listen on (0 picks a free one).")
@pass_state
@click.pass_context
def serve(ctx: click.Context, state: CliState, host: str, port: int) -> None:
    """Serve /metrics over HTTP until interrupted (Ctrl-C)."""
    from ..operations import metrics as ops_metrics

    backup_dir = ctx.meta.get("trainkit.metrics.backup_dir")

    def ready(server: Any) -> None:
        note(f"serving metrics on http://{host}:{server.server_port}/metrics",
             url=f"http://{host}:{server.server_port}/metrics")

    try:
        ops_metrics.serve(state.kit(migrate=False), host, port, backup_dir, ready=ready)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass
