"""The plugins' commands as `trainkit --help` last listed them, remembered, so that help needs neither the
settings parser nor the plugin manager nor the command plugins (together more than `trainkit --help` itself
should take; docs/performance.md).

What the list depends on makes its key: the settings file that applies (its path, time and size), the plugin
options and `TRAINKIT_*` variables, `sys.path`, the installed entry points (the entry-point list of
`plugin_cache`, itself checked against the installed metadata) and, for every plugin that adds commands, its
hook-table fingerprint (its files). Every other plugin's fingerprint must hold too: a changed plugin would be
imported (and could fail, with a warning) by a start that builds the plugin manager. Any change means the
plugins are asked again, as without the index. A run that had anything to say (a plugin that failed, a command
name taken twice, a broken settings file) is never remembered, so its warnings are given every time.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .. import plugin_cache

ENV_KEYS = ("TRAINKIT_CONFIG", "TRAINKIT_LOAD_PLUGINS", "TRAINKIT_DISABLE_PLUGINS", "TRAINKIT_STRICT_PLUGINS",
            "TRAINKIT_PLUGIN_TIMEOUT", "TRAINKIT_LAZY_PLUGINS")
VERSION = 1
#: Lists kept per environment, one per key (projects, option sets), newest first.
MAX_KEYS = 16


def key(params: dict[str, Any]) -> str | None:
    """The key of the command list under these global options, or None when it cannot be told cheaply (no
    entry-point list, a plugin that adds commands without a hook-table entry, no settings file where one is
    named): then the plugins are asked."""
    from ..config_location import locate_config
    from ..errors import ConfigError

    try:
        config = locate_config(params.get("config_path"), os.environ, Path.cwd())
    except ConfigError:
        return None
    found = plugin_cache.read_entry_points(plugin_cache.ENTRY_POINT_GROUP)
    if found is None:
        return None
    eps, _appended, notes = found
    if any(level >= logging.WARNING for level, _message in notes):
        return None  # discovery had a warning to give (a plugin name taken twice): give it every time
    table = plugin_cache.read()
    commanders = []
    for ep in eps:  # every plugin, as the plugin manager checks them: one that changed would load (or fail) now
        entry = table.get(ep.name)
        if not isinstance(entry, dict) or not isinstance(entry.get("locations"), list):
            return None  # not in the table: it loads (or fails) on every start, so its commands can change
        stamp = plugin_cache.fingerprint(ep, ep.dist_name, ep.dist_version, entry["locations"])
        if stamp is None or stamp != entry.get("fingerprint"):
            return None
        if "register_commands" in entry.get("hooks", ()):
            commanders.append(stamp)
    parts = {
        "config": None if config is None else [str(config.resolve()), plugin_cache.stamp(str(config))],
        "env": {name: os.environ.get(name) for name in ENV_KEYS},
        "disable": sorted(params.get("disable") or ()), "strict": params.get("strict_plugins"),
        "sys_path": sys.path, "entry_points": [[ep.name, ep.value, ep.dist_name, ep.dist_version] for ep in eps],
        "commanders": commanders,
    }
    return json.dumps(parts, sort_keys=True)


def _read() -> list[dict[str, Any]]:
    path = plugin_cache.cache_file("cli-help")
    try:
        data = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("lists"), list):
        return []
    return [item for item in data["lists"] if isinstance(item, dict)]


def read(key: str) -> list[dict[str, Any]] | None:
    """The plugin commands remembered under `key`: dicts of click.Command's `name`, `help`, `short_help`,
    `hidden`, `deprecated`; None when there are none."""
    for item in _read():
        if item.get("key") == key and isinstance(item.get("commands"), list):
            return list(item["commands"])
    return None


def write(key: str, commands: dict[str, Any]) -> None:
    """Remember the plugin commands (name -> click.Command) under `key`; failures are ignored."""
    path = plugin_cache.cache_file("cli-help")
    if path is None:
        return
    rows = [{"name": name, "help": (command.help or "").split("\n\n")[0], "short_help": command.short_help,
             "hidden": bool(command.hidden), "deprecated": command.deprecated}
            for name, command in sorted(commands.items())]
    lists = [{"key": key, "commands": rows}, *(item for item in _read() if item.get("key") != key)][:MAX_KEYS]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"version": VERSION, "lists": lists}))
        os.replace(temporary, path)
    except OSError:
        pass
