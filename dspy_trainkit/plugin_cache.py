"""The plugin hook table: which hooks each installed plugin implements, remembered between runs, so that a plugin
is imported only when one of its hooks is called (`plugin_manager.make_plugin_manager(lazy=True)`).

Why: importing and registering every built-in plugin cost ~60 ms of each command's start-up, and most commands
(`stats`, `list`, `--help`) call the hooks of one or two plugins. The table is checked against the files it was
made from: an entry is used only while its plugin's entry point (name, object path, distribution and version)
and the modification times of the plugin package's files are unchanged; otherwise the plugin is imported as
before and its entry refreshed. A plugin that failed to load is never in the table, so it is imported (and its
failure reported) every time, as without the table.

The entry-point list beside it spares the entry-point discovery itself (importing `importlib.metadata` and
reading every installed distribution's metadata, ~25 ms of each start): it holds what discovery found, and is
used only while `sys.path` is the same list and nothing discovery reads has changed: the distributions'
metadata folders (`*.dist-info` / `*.egg-info`) in each path folder, installed or removed, and their
`entry_points.txt` (edited in place by a legacy editable install).

Both are JSON files per Python environment in `TRAINKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/dspy-trainkit` or
`~/.cache/dspy-trainkit`. Any problem reading or writing them only means plugins are discovered and load
eagerly, as without them.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import importlib.metadata

#: A package with more files than this is not fingerprinted (its plugin always loads eagerly): checking every
#: file of a large package on each start would cost what the table saves.
MAX_FILES = 200
VERSION = 2
#: The entry-point group plugins are registered in (`plugin_manager.ENTRY_POINT_GROUP`).
ENTRY_POINT_GROUP = "dspy_trainkit"
ENTRY_POINTS_VERSION = 1


def cache_file(kind: str = "plugin-hooks") -> Path | None:
    """This environment's table file (or its entry-point list, kind "entry-points"), or None when no cache
    folder can be named."""
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
    env = f"{sys.prefix}\0{sys.executable}\0{sys.version}".encode()
    return Path(base) / f"{kind}-{zlib.crc32(env):08x}{zlib.adler32(env):08x}.json"  # hashlib costs 3 ms to import


def locate(ep: importlib.metadata.EntryPoint | CachedEntryPoint) -> list[str] | None:
    """Where the entry point's top-level module lives: its package folders, or its one file."""
    import importlib.util

    top = ep.value.split(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return list(spec.submodule_search_locations or []) or [spec.origin]


def fingerprint(ep: importlib.metadata.EntryPoint | CachedEntryPoint, dist_name: str | None = None,
                dist_version: str | None = None, locations: list[str] | None = None) -> str | None:
    """What must not change for a remembered entry to hold, or None when it cannot be told cheaply. The
    distribution's name and version, and the module's `locations` (from the table: finding a module costs
    more than checking its files), are passed by callers that have them."""
    dist = ep.dist
    if dist_name is None and dist is not None:
        dist_name, dist_version = dist.metadata["Name"], dist.version
    parts = [ep.name, ep.value, dist_name or "", dist_version or ""]
    locations = locations if locations is not None else locate(ep)
    if not locations:
        return None
    count = 0
    for location in locations:
        if not os.path.isdir(location):
            parts.append(location + ":" + stamp(location))
            continue
        for folder, dirs, files in os.walk(location):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    count += 1
                    if count > MAX_FILES:
                        return None
                    parts.append(name + ":" + stamp(os.path.join(folder, name)))
    return "\0".join(parts)


def stamp(path: str) -> str:
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


class CachedEntryPoint:
    """An entry point from the entry-point list: what the plugin manager uses of an
    `importlib.metadata.EntryPoint` (name, value, group, `load()`), with its distribution's name and version
    remembered (`dist` is None: there is no metadata object to read)."""

    __slots__ = ("name", "value", "group", "dist_name", "dist_version")
    dist = None

    def __init__(self, name: str, value: str, group: str, dist_name: str | None = None,
                 dist_version: str | None = None) -> None:
        self.name, self.value, self.group = name, value, group
        self.dist_name, self.dist_version = dist_name, dist_version

    def load(self) -> Any:
        """The object named by `value` ("module" or "module:attr.attr"), as `EntryPoint.load` finds it."""
        module, _, attrs = self.value.partition(":")
        found: Any = importlib.import_module(module.strip())
        for name in filter(None, attrs.strip().split(".")):
            found = getattr(found, name)
        return found

    def __repr__(self) -> str:
        return f"CachedEntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def path_state(paths: list[str]) -> list[str]:
    """What entry-point discovery over `paths` depends on: the distributions' metadata folders in each folder
    (`*.dist-info`, `*.egg-info`) with the time and size of their `entry_points.txt`, and any path entry that is
    not a folder (a zip). Not a folder's own time: the project folder, on `sys.path` under `python -m`, changes
    with every write to its store."""
    state = []
    for entry in paths:
        folder = entry or "."
        try:
            names = sorted(os.listdir(folder))
        except NotADirectoryError:
            state.append(f"{entry}\0{stamp(folder)}")
            continue
        except OSError:
            state.append(f"{entry}\0missing")
            continue
        state.append(entry)
        state.extend(f"{name}\0{stamp(os.path.join(folder, name, 'entry_points.txt'))}" for name in names
                     if name.endswith((".dist-info", ".egg-info")))
    return state


#: Discoveries remembered per environment, one per `sys.path` (the console script, `python -m`, a checkout on
#: PYTHONPATH each have their own).
MAX_PATHS = 8


def _read_lists(group: str) -> list[dict[str, Any]]:
    path = cache_file("entry-points")
    try:
        data = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("version") != ENTRY_POINTS_VERSION or data.get("group") != group:
        return []
    lists = data.get("lists")
    return [item for item in lists if isinstance(item, dict)] if isinstance(lists, list) else []


def read_entry_points(group: str) -> tuple[list[CachedEntryPoint], list[str], list[tuple[int, str]]] | None:
    """The remembered discovery of `group` over this `sys.path`: (entry points, folders discovery appended to
    sys.path, its log records as (level, message)), or None when there is none or anything it depends on
    changed."""
    for item in _read_lists(group):
        if item.get("sys_path") != sys.path:
            continue
        try:
            if item.get("state") != path_state(sys.path):
                return None
            eps = [CachedEntryPoint(*entry) for entry in item["entry_points"]]
            return eps, list(item["appended"]), [(int(level), str(text)) for level, text in item["notes"]]
        except (ValueError, TypeError, KeyError):
            return None
    return None


def write_entry_points(group: str, sys_path: list[str], state: list[str],
                       eps: list[tuple[str, str, str | None, str | None]], appended: list[str],
                       notes: list[tuple[int, str]]) -> None:
    """Remember a discovery over `sys_path` (as it was before discovery appended `appended`; `state` its
    `path_state`, taken before discovery read anything): `eps` as (name, value, distribution name, version).
    Failures are ignored."""
    path = cache_file("entry-points")
    if path is None:
        return
    item = {"sys_path": sys_path, "state": state, "appended": appended, "notes": notes,
            "entry_points": [[name, value, group, dist, version] for name, value, dist, version in eps]}
    others = [other for other in _read_lists(group) if other.get("sys_path") != sys_path]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"version": ENTRY_POINTS_VERSION, "group": group,
                                         "lists": [item, *others][:MAX_PATHS]}))
        os.replace(temporary, path)
    except OSError:
        pass
