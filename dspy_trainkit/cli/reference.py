"""Every built-in command in one plain click group, for the generated CLI reference (docs/reference/cli.md).

The real `trainkit` group loads built-in commands on demand and asks plugins for theirs when it runs, so a
documentation tool that walks it would see whatever plugins happen to be installed, or nothing. mkdocs-click
walks `builtin_cli` instead: the same name, help and global options as `trainkit`, holding the core's commands
(`BUILTIN_COMMANDS`) and those that the built-in plugins (the ones shipped in the dspy-trainkit distribution)
add through `register_commands`; third-party plugins' commands are left out. Importing this module imports every
command module and the built-in plugins; only the documentation build does.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .main import BUILTIN_COMMANDS, cli


def core_commands() -> dict[str, click.Command]:
    """Each command of the core by the name `trainkit` gives it."""
    return {name: getattr(importlib.import_module(module), attr)
            for name, (module, attr) in BUILTIN_COMMANDS.items()}


def builtin_plugin_commands(pm: Any = None) -> dict[str, click.Command]:
    """Commands the built-in plugins of `pm` (default: the installed ones) register; a core command of the same
    name wins, as in `trainkit`."""
    from ..plugin_manager import call_impls, hook_impls, make_plugin_manager

    pm = pm or make_plugin_manager(strict=True)
    group = click.Group()
    builtin = [impl for impl in hook_impls(pm, "register_commands")
               if (info := pm.infos.get(impl.plugin_name)) is not None and info.builtin]
    call_impls(builtin, "register_commands", cli=group)
    return {name: command for name, command in group.commands.items() if name not in BUILTIN_COMMANDS}


def builtin_commands() -> dict[str, click.Command]:
    return {**core_commands(), **builtin_plugin_commands()}


builtin_cli = click.Group(name="trainkit", commands=builtin_commands(), params=cli.params, help=cli.help,
                          context_settings=cli.context_settings)
