"""`trainkit plugins`: every discovered plugin with its version, distribution, hooks and load status."""

from __future__ import annotations

import click

from .logs import note
from .output import echo_json, echo_table, json_option
from .state import CliState, pass_state


@click.command()
@json_option
@pass_state
def plugins(state: CliState, as_json: bool) -> None:
    """List plugins: name, version, distribution, hooks, built-in or not, and status."""
    infos = state.plugin_manager().plugin_infos()
    if as_json:
        echo_json([info.to_dict() for info in infos])
        return
    echo_table(["name", "version", "distribution", "builtin", "status", "hooks"],
               ((i.name, i.version or "-", i.distribution or "-", "yes" if i.builtin else "no", i.status,
                 ", ".join(i.hooks)) for i in infos))
    for info in infos:
        if info.error:
            note(f"{info.name}: {info.error}", level="warning", plugin=info.name)
