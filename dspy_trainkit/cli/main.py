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
                    logging.getLogger("dspy_trainkit").warning(
                        "plugin %r adds command %r, which %s provides already; ignoring the plugin's",
                        impl.plugin_name, name, owner if owner == "trainkit itself" else f"plugin {owner!r}")
                    continue
                owners[name] = impl.plugin_name
                state.plugin_commands[name] = command
        return state.plugin_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*BUILTIN_COMMANDS, *self._plugin_commands(ctx)})

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        raw = list(args)  # the parser consumes the list
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:  # a bad global option: the callback that sets up logging never ran
            if _wants_json(raw):
                _usage_error_as_json(exc)
            raise

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in BUILTIN_COMMANDS:
            module, attr = BUILTIN_COMMANDS[name]
            return getattr(importlib.import_module(module), attr)
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
        from ..errors import TrainkitError
        from ..redaction import redact

        try:
            return super().invoke(ctx)
        except TrainkitError as exc:
            if ctx.params.get("log_format") == "json":  # the error as a log line, so stderr stays JSON
                logging.getLogger("dspy_trainkit.cli").error(redact(str(exc)), extra={"error": type(exc).__name__})
            else:
                from .output import printable

                click.echo(f"Error: {printable(redact(str(exc)))}", err=True)  # a file name may hold escapes
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:  # click prints these itself: redact what it will print
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
        except KeyboardInterrupt:  # a command without its own Ctrl-C message: the shell's 130, not click's 1
            from .exits import EXIT_INTERRUPTED
            from .logs import note

            note("\ninterrupted: what was finished before is kept", level="warning")
            ctx.exit(EXIT_INTERRUPTED)
        finally:
            _close_quietly(ctx.ensure_object(CliState))


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
    cli(prog_name="trainkit")
