"""The `trainkit` entry point: global options, lazy command loading, plugin commands, one-line errors.

Built-in commands are imported only when invoked, and plugins only load when a command needs them or help
lists commands, so `trainkit --help` stays fast. Any TrainkitError becomes one `Error: ...` line on stderr and
exit status 1; click's usage errors exit with 2. Every error line and log line goes through
`redaction.redact`, so no secret (a store password, an API key) is ever printed. With `--log-format json` each
of these is one JSON line instead, click's "Usage: ... Error: ..." block included (`_usage_error_as_json`).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

from ..errors import TrainkitError
from ..thread_signals import interrupts_deferred
from . import startup
from .state import CliState

BUILTIN_COMMANDS = {
    "init": ("dspy_trainkit.cli.project", "init"),
    "add": ("dspy_trainkit.cli.examples", "add"),
    "list": ("dspy_trainkit.cli.examples", "list_examples"),
    "show": ("dspy_trainkit.cli.examples", "show"),
    "stats": ("dspy_trainkit.cli.examples", "stats"),
    "import": ("dspy_trainkit.cli.transfer", "import_"),
    "export": ("dspy_trainkit.cli.transfer", "export"),
    "accept": ("dspy_trainkit.cli.curation", "accept"),
    "reject": ("dspy_trainkit.cli.curation", "reject"),
    "archive": ("dspy_trainkit.cli.curation", "archive"),
    "score": ("dspy_trainkit.cli.curation", "score"),
    "log": ("dspy_trainkit.cli.curation", "log"),
    "review": ("dspy_trainkit.cli.review", "review"),
    "report": ("dspy_trainkit.cli.report", "report"),
    "plugins": ("dspy_trainkit.cli.plugins", "plugins"),
    "config": ("dspy_trainkit.cli.project", "config"),
    "snapshot": ("dspy_trainkit.cli.lifecycle", "snapshot"),
    "balance": ("dspy_trainkit.cli.lifecycle", "balance"),
    "cleanup": ("dspy_trainkit.cli.lifecycle", "cleanup"),
    "freshness": ("dspy_trainkit.cli.lifecycle", "freshness"),
    "backup": ("dspy_trainkit.cli.lifecycle", "backup"),
    "restore": ("dspy_trainkit.cli.lifecycle", "restore"),
    "synthesize": ("dspy_trainkit.cli.synthesis", "synthesize"),
    "lm": ("dspy_trainkit.cli.generation", "lm"),
    "bootstrap": ("dspy_trainkit.cli.generation", "bootstrap"),
    "ready": ("dspy_trainkit.cli.optimization", "ready"),
    "optimize": ("dspy_trainkit.cli.optimization", "optimize"),
    "runs": ("dspy_trainkit.cli.optimization", "runs"),
    "watch": ("dspy_trainkit.cli.watch", "watch"),
    "value": ("dspy_trainkit.cli.effectiveness", "value"),
    "recommend": ("dspy_trainkit.cli.effectiveness", "recommend"),
    "alerts": ("dspy_trainkit.cli.effectiveness", "alerts"),
    "impact": ("dspy_trainkit.cli.effectiveness", "impact"),
    "doctor": ("dspy_trainkit.cli.operations", "doctor"),
    "migrate": ("dspy_trainkit.cli.operations", "migrate"),
    "metrics": ("dspy_trainkit.cli.operations", "metrics"),
}

#: The first sentence of each built-in command's help, all that `trainkit --help` shows of it: listing the
#: commands from here spares importing every command module (tests/test_startup_imports.py checks the text).
BUILTIN_SUMMARIES = {
    'init': 'Create trainkit.toml (commented) and the store in a project folder.',
    'add': 'Add one example through validation, dedup and scoring.',
    'list': 'List examples, filtered and paged.',
    'show': 'Show one example by id, or by a unique start or end of it (4+ characters).',
    'stats': 'Counts by task, status, source and domain/topic/difficulty.',
    'import': 'Import examples from JSON, JSONL, CSV or YAML files.',
    'export': 'Export examples to a file, streaming (written to a temporary file, renamed when complete).',
    'accept': 'Accept the selected examples for training.',
    'reject': 'Reject the selected examples (with --reason).',
    'archive': 'Archive the selected examples (kept, not used).',
    'score': 'Validate and score stored examples again with the plugins loaded now, in batches.',
    'log': 'Show the audit trail: who changed what, when and why (before and after for edits).',
    'review': 'Review examples one by one (default: the candidates waiting for review).',
    'report': 'Reports on the stored data.',
    'plugins': 'List plugins: name, version, distribution, hooks, built-in or not, and status.',
    'config': 'Inspect settings.',
    'snapshot': 'Immutable, named sets of examples that optimization reads (reproducible trainsets).',
    'balance': 'Balance of the data over domain x topic x difficulty cells.',
    'cleanup': 'Archive examples by the [cleanup] policies (max_age_days, min_quality, superseded, over_full).',
    'freshness': 'Age and last-used distributions per task and cell.',
    'backup': ('Write a consistent backup of the store to FILE (or a timestamped file in --dir) while writers keep '
        'working, with checksums; `trainkit backup verify FILE` checks one by a trial restore.'),
    'restore': ("Check a backup's checksums (and signature, with TRAINKIT_BACKUP_KEY) and restore it into an empty "
        'store, all or nothing.'),
    'synthesize': 'Make synthetic examples with a strategy, through validation, dedup and scoring.',
    'lm': 'The LMs trainkit calls ([lm.PURPOSE] in trainkit.toml, per-task overrides in [tasks.T.lm.PURPOSE]).',
    'bootstrap': ('Generate examples for every domain x topic x difficulty cell of a task with its DSPy program, '
        'through intake.'),
    'ready': ('Is there enough accepted data to optimize each task? Counts per domain/topic/difficulty cell against'
        " the optimizer's minimums, the dev set the split will give, quality, balance gaps, a verdict and "
        'next steps.'),
    'optimize': ("Optimize a task's DSPy program on a snapshot: split train/dev, score the current program, compile, "
        'score the result on the same dev set, save it as JSON and keep it as champion if it wins by the '
        'margin.'),
    'runs': ("Optimization history, oldest first: snapshot, optimizer, status, dev scores; * marks each task's "
        'champion.'),
    'watch': ('Re-optimize tasks when their triggers fire ([optimize.triggers]: new_accepted, growth, '
        'quality_shift, every, on_ready).'),
    'value': ("Which examples help TASK's program: each accepted example's value as a demonstration, estimated from"
        ' the random-search candidates of the stored optimization runs and valuation runs (--budget) (metric '
        'points per inclusion, with its standard error and the number of candidates that showed it).'),
    'recommend': ("What to do next with TASK's data: ranked recommendations (review examples that hurt as demos, add "
        'examples to thin cells, value again, ...), each with its reason and either an id to --apply or a '
        'command to run.'),
    'alerts': ('Alerts on the data and runs: rejection spikes, stalled collection, quality shifts, lost readiness, '
        'failed runs, ...'),
    'impact': ('The impact of a change from A to B (snapshots or runs): what changed in the data per cell, the two '
        "programs' scores on one common dev set (A scored again on B's dev set when they differ), the dev "
        'examples that flipped, and which added or removed examples carry the most value.'),
    'doctor': ('Check settings, store (reachable, migrations, integrity or privileges), plugins, disk, spill files, '
        'backups and (--lm) the LMs; say what to do for each problem.'),
    'migrate': "Apply the store's pending schema migrations (back up first: `trainkit backup FILE`).",
    'metrics': ('Prometheus metrics computed from the store: print one scrape, write it as a node-exporter textfile '
        '(--textfile PATH), or serve them (`trainkit metrics serve`).'),
}


class TrainkitGroup(click.Group):
    """A group that imports built-in commands on demand and asks plugins for theirs."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """Commands added by plugins, each plugin into its own group so that clashes can name both sides."""
        from ..errors import PluginError, TrainkitError
        from ..plugin_manager import call_impls, hook_impls

        state: CliState = ctx.ensure_object(CliState)
        if state.plugin_commands is not None:
            return state.plugin_commands
        state.apply_options(ctx.params)  # click resolves the subcommand before the group callback runs
        owners: dict[str, str] = {}
        state.plugin_commands = {}
        try:
            impls = hook_impls(state.plugin_manager(), "register_commands")
        except TrainkitError as exc:  # help must work even with a broken config
            state.plugin_error = str(exc)
            return {}
        for impl in impls:
            group = click.Group()
            try:
                call_impls([impl], "register_commands", cli=group)
            except PluginError as exc:
                state.plugin_error = str(exc)
                logging.getLogger("dspy_trainkit").warning("%s; its commands are not available", exc)
                continue
            for name, command in group.commands.items():
                owner = "trainkit itself" if name in BUILTIN_COMMANDS else owners.get(name)
                if owner:
                    state.plugin_clash = True
                    logging.getLogger("dspy_trainkit").warning(
                        "plugin %r adds command %r, which %s provides already; ignoring the plugin's",
                        impl.plugin_name, name, owner if owner == "trainkit itself" else f"plugin {owner!r}")
                    continue
                owners[name] = impl.plugin_name
                state.plugin_commands[name] = command
        return state.plugin_commands

    def _listed_plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """The plugin commands help lists: as remembered by `help_index` while nothing they depend on changed,
        else from the plugins (and then remembered, when that went without a word)."""
        from . import help_index

        state: CliState = ctx.ensure_object(CliState)
        before = help_index.key(ctx.params) if state.plugin_commands is None else None
        remembered = help_index.read(before) if before is not None else None
        if remembered is not None:
            return {row["name"]: click.Command(row["name"], help=row["help"], short_help=row["short_help"],
                                               hidden=row["hidden"], deprecated=row["deprecated"])
                    for row in remembered}
        commands = self._plugin_commands(ctx)
        pm = state._pm
        if (state.plugin_error is None and not state.plugin_clash and pm is not None
                and not any(info.status == "failed" for info in pm.known_infos().values())):
            after = help_index.key(ctx.params)  # the first run writes the tables the key reads
            if after is not None and before in (None, after):
                help_index.write(after, commands)
        return commands

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command listing, with each built-in command's line from BUILTIN_SUMMARIES instead of its
        module (importing every command module was a third of `trainkit --help`) and the plugins' commands as
        `help_index` remembers them."""
        listed: dict[str, click.Command] = {
            name: click.Command(name, help=summary) for name, summary in BUILTIN_SUMMARIES.items()}
        listed.update((name, command) for name, command in self._listed_plugin_commands(ctx).items()
                      if name not in BUILTIN_COMMANDS)
        rows = [(name, listed[name]) for name in sorted(listed) if not listed[name].hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _command in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*BUILTIN_COMMANDS, *self._plugin_commands(ctx)})

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        raw = list(args)  # the parser consumes the list
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
            ctx.meta["trainkit.arguments"] = raw  # for a value that is not UTF-8 (invoke)
            return ctx
        except click.ClickException as exc:  # a bad global option: the callback that sets up logging never ran
            if _wants_json(raw):
                _usage_error_as_json(exc)
            raise
        except KeyboardInterrupt:  # while the options are read (or --help, --version print): 130 as in a command,
            # not click's "Aborted!" with status 1
            from .exits import EXIT_INTERRUPTED

            click.echo("\ninterrupted: nothing was done", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in BUILTIN_COMMANDS:
            module, attr = BUILTIN_COMMANDS[name]
            with interrupts_deferred(startup.is_command()):  # a Ctrl-C in the command's imports: after them
                # (see cli/entry.py: one inside orjson's module initialisation crashed the process)
                loaded = importlib.import_module(module)
            return getattr(loaded, attr)
        return self._plugin_commands(ctx).get(name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            state: CliState = ctx.ensure_object(CliState)
            if state.plugin_error:
                raise click.UsageError(f"{exc.message} (a plugin could not add its commands: "
                                       f"{state.plugin_error})", ctx) from None
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:  # nothing before it: a Ctrl-C there was click's "Aborted!" with status 1, not the command's 130
            return super().invoke(ctx)
        except TrainkitError as exc:
            from ..redaction import redact

            if ctx.params.get("log_format") == "json":  # the error as a log line, so stderr stays JSON
                logging.getLogger("dspy_trainkit.cli").error(redact(str(exc)), extra={"error": type(exc).__name__})
            else:
                from .output import printable

                click.echo(f"Error: {printable(redact(str(exc)))}", err=True)  # a file name may hold escapes
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:  # click prints these itself: redact what it will print
            from ..redaction import redact
            from .output import printable

            exc.message = printable(redact(exc.message))  # type: ignore[misc]  # click's Final is advisory
            if ctx.params.get("log_format") == "json":
                _usage_error_as_json(exc)
            raise
        except click.Abort:  # a prompt answered with Ctrl-C or end of input: click would print "Aborted!"
            if ctx.params.get("log_format") != "json":
                raise
            from .logs import write_json

            write_json("aborted", level="error", error="Abort")
            ctx.exit(1)
        except (UnicodeEncodeError, TypeError) as exc:  # a lone surrogate, Python's stand-in for a byte that is
            # not UTF-8, reaching the store (its text columns, or orjson's "str is not valid UTF-8")
            not_utf8 = isinstance(exc, UnicodeEncodeError) or "not valid UTF-8" in str(exc)
            text = _not_utf8(ctx.meta.get("trainkit.arguments", ())) if not_utf8 else None
            if text is None:  # not from the command line: a bug, with its traceback
                raise
            from .output import printable

            click.echo(f"Error: the argument '{printable(text)}' is not UTF-8 text (the bytes that are not shown as "
                       "\\xNN), which trainkit cannot store or search for; give it in UTF-8", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:  # a command without its own Ctrl-C message: the shell's 130, not click's 1
            from .exits import EXIT_INTERRUPTED
            from .logs import note

            note("\ninterrupted: what was finished before is kept", level="warning")
            ctx.exit(EXIT_INTERRUPTED)
        finally:
            _close_quietly(ctx.ensure_object(CliState))


def _not_utf8(arguments: Any) -> str | None:
    """The first of the command line's `arguments` that UTF-8 cannot encode (a byte that is not UTF-8 in it), shown
    with that byte as `\\xff`; None when all encode."""
    for argument in arguments:
        if isinstance(argument, str) and not argument.isascii():
            try:
                argument.encode("utf-8")
            except UnicodeEncodeError:
                from ..json_values import bytes_escaped

                return bytes_escaped(argument)
    return None


def _wants_json(args: list[str]) -> bool:
    """`--log-format json` among the global options in `args`, or TRAINKIT_LOG_FORMAT=json: read by hand for an
    error raised while click parses them."""
    import os

    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--log-format":
            return args[i + 1:i + 2] == ["json"]
        if arg.startswith("--log-format="):
            return arg.partition("=")[2] == "json"
    return os.environ.get("TRAINKIT_LOG_FORMAT") == "json"


def _usage_error_as_json(exc: click.ClickException) -> None:
    """Make click show `exc` as one JSON line (message, the error's class, and the usage line for a usage
    error) instead of its "Usage: ... / Try ... / Error: ..." block of prose; its exit status stays."""
    from .logs import write_json

    def show(file: Any = None) -> None:
        fields: dict[str, Any] = {"error": type(exc).__name__}
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            fields["usage"] = " ".join(exc.ctx.get_usage().split())
            fields["help"] = f"{exc.ctx.command_path} {exc.ctx.help_option_names[0]}"
        write_json(exc.format_message(), level="error", **fields)

    exc.show = show  # type: ignore[method-assign]  # this one exception's rendering


def _close_quietly(state: CliState) -> None:
    """Close the kit; after Ctrl-C or a dropped connection closing can fail too, which must not hide the
    command's own message behind a driver's traceback."""
    try:
        state.close()
    except Exception as exc:  # the store's own transactions already decided what was kept
        logging.getLogger("dspy_trainkit.cli").debug("closing the store failed: %s", exc)


@click.group(cls=TrainkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
# Global options are eager so that `--disable-plugin X --help` lists commands without X's.
@click.option("--db", metavar="URL", is_eager=True, help="Store URL (sqlite:///file.db or postgresql://...); "
              "overrides store.url and TRAINKIT_STORE_URL.")
@click.option("--config", "config_path", metavar="FILE", is_eager=True, type=click.Path(dir_okay=False),
              help="Settings file (default: the nearest trainkit.toml, or TRAINKIT_CONFIG).")
@click.option("--disable-plugin", "disable", metavar="NAME", multiple=True, is_eager=True,
              help="Do not load this plugin (repeatable; adds to TRAINKIT_DISABLE_PLUGINS).")
@click.option("--strict-plugins", is_flag=True, default=None, is_eager=True,
              help="Fail when any plugin cannot load (as TRAINKIT_STRICT_PLUGINS=1).")
@click.option("-v", "--verbose", count=True, help="More log output, DSPy's included (-vv for debug).")
@click.option("--log-format", type=click.Choice(["human", "json"]), envvar="TRAINKIT_LOG_FORMAT", default="human",
              show_default=True, help="Log lines for people, or one JSON object per line (TRAINKIT_LOG_FORMAT).")
@click.version_option(package_name="dspy-trainkit", prog_name="trainkit")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_path: str | None, disable: tuple[str, ...],
        strict_plugins: bool | None, verbose: int, log_format: str) -> None:
    """trainkit: training data for DSPy programs.

    Collect, import, validate, score and curate examples in one store, and hand reproducible dspy.Example
    trainsets to DSPy optimizers. Start with `trainkit init`, then `trainkit add` and `trainkit stats`.
    """
    from ..redaction import redact_all_log_records
    from .logs import setup

    redact_all_log_records()  # every log line, ours or DSPy's, with secrets masked
    setup(verbose, log_format)  # also keeps DSPy's log lines (until -v) and, off a terminal, its bars out of stderr
    ctx.ensure_object(CliState).apply_options(ctx.params)


def main() -> None:
    """Console-script entry point."""
    from . import startup

    startup.begin()  # start-up ends when the store is open: gc.freeze() then (cli/startup.py)
    cli(prog_name="trainkit")
