"""Every built-in command in one plain click group, for the generated CLI reference (docs/reference/cli.md).

The real `trainkit` group loads built-in commands on demand and asks plugins for theirs when it runs, so a
documentation tool that walks it would see whatever plugins happen to be installed, or nothing. mkdocs-click
walks `builtin_cli` instead: the same name, help and global options as `trainkit`, holding exactly the commands
in `BUILTIN_COMMANDS`. Importing this module imports every command module; only the documentation build does.
"""

from __future__ import annotations

import importlib

import click

from .main import BUILTIN_COMMANDS, cli


def builtin_commands() -> dict[str, click.Command]:
    """Each built-in command by the name `trainkit` gives it."""
    return {name: getattr(importlib.import_module(module), attr)
            for name, (module, attr) in BUILTIN_COMMANDS.items()}


builtin_cli = click.Group(name="trainkit", commands=builtin_commands(), params=cli.params, help=cli.help,
                          context_settings=cli.context_settings)
