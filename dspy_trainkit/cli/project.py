"""Project commands: `init` (settings file and store) and `config show` (the effective settings)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
import click

from ..redaction import redact_data, redact_url
from .logs import note
from .output import echo_json, json_option
from .state import CliState, pass_state

TEMPLATE = '''# trainkit.toml: settings for dspy-trainkit. Environment variables TRAINKIT_* and command-line
# options override what is here. Reference: docs/configuration.md

# Task used when a command or record names none.
{default_task}

[store]
# sqlite:///file.db (relative to this file) or postgresql://user@host:5432/dbname
url = "{url}"

[plugins]
# Plugin names as `trainkit plugins` lists them.
disable = []
# load = ["sqlstore", "basic_checks"]   # an allow-list; leave out to load every installed plugin
strict = false                          # true: a plugin that fails to load stops every command

[intake]
batch_size = 1000   # examples validated, scored and stored per transaction
{task_section}'''

TASK_TEMPLATE = '''
[tasks.{name}]
{signature_line}   # input fields -> output fields, or "package.module:SignatureClass"
collection_mode = "automatic"  # automatic: accept what passes checks; manual: keep everything for review
min_quality = 0.0              # examples scored below this are rejected
# topics = ["fractions", "geometry"]
# difficulties = ["easy", "medium", "hard"]
# [tasks.{name}.weights]        # weight of each score dimension in the overall quality (default 1)
# [tasks.{name}.domains.algebra]  # per-domain overrides: topics, difficulties, min_quality, weights
'''


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              help="Project folder (default: the current one).")
@click.option("--db", "url", metavar="URL", help="Store URL to write (default: the global --db, "
              "TRAINKIT_STORE_URL, or sqlite:///trainkit.db).")
@click.option("--task", help="Declare a first task in the settings.")
@click.option("--signature", help="Its fields, e.g. 'question -> answer' (with --task).")
@click.option("--force", is_flag=True, help="Overwrite an existing trainkit.toml.")
@pass_state
def init(state: CliState, directory: Path, url: str, task: str | None, signature: str | None,
         force: bool) -> None:
    """Create trainkit.toml (commented) and the store in a project folder.

    With a trainkit.toml already there (and no --task, --signature or --db), it is used as it is and only the
    store is created. --force writes a new file over it.
    """
    from ..errors import ConfigError
    from ..models import TASK_NAME
    from ..settings import CONFIG_FILE

    if signature and not task:
        raise click.UsageError("--signature needs --task")
    if task and not TASK_NAME.match(task):
        raise click.BadParameter(f"{task!r} is not a task name (letters, digits, '_', '.', '-')",
                                 param_hint="--task")
    if signature and "->" not in signature and ":" not in signature:
        raise click.BadParameter("use 'inputs -> outputs' or 'package.module:Signature'", param_hint="--signature")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_FILE
    if path.exists() and not force:
        if task or signature or url:
            raise ConfigError(f"{path} exists already; edit it, or use --force to overwrite it")
        state.config_path = str(path)  # a hand-written config: make its store, change nothing
        kit = state.kit(create=True)
        click.echo(f"using {path} as it is")
        click.echo(f"store ready at {redact_url(kit.settings.store_url)} (migrations: "
                   f"{', '.join(kit.store.applied_migrations())})")
        return
    url = url or state.db or os.environ.get("TRAINKIT_STORE_URL") or "sqlite:///trainkit.db"
    previous = path.read_bytes() if path.exists() else None
    signature_line = f"signature = {_toml(signature)}" if signature else '# signature = "question -> answer"'
    task_section = TASK_TEMPLATE.format(name=task, signature_line=signature_line) if task else ""
    path.write_text(TEMPLATE.format(url=_toml(url)[1:-1], task_section=task_section,
                                    default_task=f"default_task = {_toml(task)}" if task else '# default_task = "qa"'),
                    encoding="utf-8")
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        note(f"warning: {path} now holds the store's password; keep it out of version control, or put the "
             "URL in TRAINKIT_STORE_URL instead", level="warning")
    state.config_path, state.db = str(path), None
    try:
        kit = state.kit(create=True)
    except BaseException:
        if previous is None:  # leave nothing half-made behind, and never lose the user's old file
            path.unlink()
        else:
            path.write_bytes(previous)
        raise
    click.echo(f"wrote {path}")
    click.echo(f"store ready at {redact_url(kit.settings.store_url)} "
               f"(migrations: {', '.join(kit.store.applied_migrations())})")
    click.echo("next: trainkit add -t TASK -i NAME=VALUE -o NAME=VALUE, then trainkit stats")


def _toml(value: str) -> str:
    """A TOML basic string (JSON's string escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


@click.group()
def config() -> None:
    """Inspect settings."""


@config.command("show")
@json_option
@pass_state
def config_show(state: CliState, as_json: bool) -> None:
    """Print the effective settings (file + TRAINKIT_* environment + options), secrets shown as ***."""
    settings = state.settings()
    data = attrs.asdict(settings, value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v)
    data = redact_data(data)
    if as_json:
        echo_json(data)
        return
    click.echo(f"config file:     {settings.config_path or '(none found; defaults)'}")
    click.echo(f"project folder:  {settings.project_dir}")
    click.echo(f"store url:       {redact_url(settings.store_url)}")
    click.echo(f"default task:    {settings.default_task or '-'}")
    click.echo(f"plugins:         load={list(settings.load_plugins) if settings.load_plugins is not None else 'all'}"
               f" disable={list(settings.disable_plugins)} strict={settings.strict_plugins}")
    click.echo(f"intake:          batch_size={settings.batch_size}")
    for name, task in sorted(settings.tasks.items()):
        fields = task.fields()
        shown = f"{', '.join(fields[0])} -> {', '.join(fields[1])}" if fields else task.signature or "-"
        click.echo(f"task {name}: {shown}; mode={task.collection_mode} collect={task.collect} "
                   f"sample_rate={task.sample_rate} min_quality={task.min_quality}"
                   + (f" domains={', '.join(sorted(task.domains))}" if task.domains else ""))
