"""The plugin hook table: which hooks each installed plugin implements, remembered between runs, so that a plugin
is imported only when one of its hooks is called (`plugin_manager.make_plugin_manager(lazy=True)`).

Why: importing and registering every built-in plugin cost ~60 ms of each command's start-up, and most commands
(`stats`, `list`, `--help`) call the hooks of one or two plugins. The table is checked against the files it was
made from: an entry is used only while its plugin's entry point (name, object path, distribution and version)
and the modification times of the plugin package's files are unchanged; otherwise the plugin is imported as
before and its entry refreshed. A plugin that failed to load is never in the table, so it is imported (and its
failure reported) every time, as without the table.

The table is a JSON file per Python environment in `TRAINKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/dspy-trainkit`
or `~/.cache/dspy-trainkit`. Any problem reading or writing it only means plugins load eagerly.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

#: A package with more files than this is not fingerprinted (its plugin always loads eagerly): checking every
#: file of a large package on each start would cost what the table saves.
MAX_FILES = 200
VERSION = 2


def cache_file() -> Path | None:
    """This environment's table file, or None when no cache folder can be named."""
    base = os.environ.get("TRAINKIT_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME")
        home = os.environ.get("HOME")
        if xdg:
            base = os.path.join(xdg, "dspy-trainkit")
        elif home:
            base = os.path.join(home, ".cache", "dspy-trainkit")
        else:
            return None
    env = hashlib.sha256(f"{sys.prefix}\0{sys.executable}\0{sys.version}".encode()).hexdigest()[:16]
    return Path(base) / f"plugin-hooks-{env}.json"


def locate(ep: importlib.metadata.EntryPoint) -> list[str] | None:
    """Where the entry point's top-level module lives: its package folders, or its one file."""
    top = ep.value.split(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return list(spec.submodule_search_locations or []) or [spec.origin]


def fingerprint(ep: importlib.metadata.EntryPoint, dist_name: str | None = None,
                dist_version: str | None = None, locations: list[str] | None = None) -> str | None:
    """What must not change for a remembered entry to hold, or None when it cannot be told cheaply. The
    distribution's name and version, and the module's `locations` (from the table: finding a module costs
    more than checking its files), are passed by callers that have them."""
    if dist_name is None and ep.dist is not None:
        dist_name, dist_version = ep.dist.metadata["Name"], ep.dist.version
    parts = [ep.name, ep.value, dist_name or "", dist_version or ""]
    locations = locations if locations is not None else locate(ep)
    if not locations:
        return None
    count = 0
    for location in locations:
        if not os.path.isdir(location):
            parts.append(location + ":" + _stamp(location))
            continue
        for folder, dirs, files in os.walk(location):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    count += 1
                    if count > MAX_FILES:
                        return None
                    parts.append(name + ":" + _stamp(os.path.join(folder, name)))
    return "\0".join(parts)


def _stamp(path: str) -> str:
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def read() -> dict[str, Any]:
    """`{plugin name: {"fingerprint": ..., "hooks": [...]}}` as last written, or {}."""
    path = cache_file()
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("plugins"), dict):
        return {}
    return data["plugins"]


def write(plugins: dict[str, Any]) -> None:
    """Replace the table atomically; failures are ignored (the next run loads eagerly again)."""
    path = cache_file()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"version": VERSION, "plugins": plugins}, sort_keys=True))
        os.replace(temporary, path)
    except OSError:
        pass
