"""Making a plugin manager: entry-point discovery, allow/deny lists, loading each plugin on its own, calling
hooks plugin by plugin, and collecting what the registry hooks (`storage_backend`, `import_format`,
`synthesize`, ...) register.

There is no import-time global manager: `make_plugin_manager()` builds a fresh one each time, so tests and
embedded uses are hermetic. One broken plugin does not break every command: it is reported by name with its
error and the others still load, unless strict mode (`TRAINKIT_STRICT_PLUGINS=1`) makes that fatal, as CI wants.
A plugin's canonical name is its entry-point name; listing, disabling and configuration all use it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from . import hookspecs, plugin_cache
from .errors import ConfigError, ConversionError, PluginError, ValidationError
from .settings import DEFAULT_PLUGIN_TIMEOUT
from .time_limits import TimeLimitExceeded, start, stop

if TYPE_CHECKING:
    import importlib.metadata

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = plugin_cache.ENTRY_POINT_GROUP
BUILTIN_DISTRIBUTION = "dspy-trainkit"
#: Hooks called through pluggy as a whole, where wrappers work; the others are called plugin by plugin.
WRAPPABLE_HOOKS = frozenset({"convert"})
#: Plugins that load even when `TRAINKIT_LOAD_PLUGINS` is empty: without a store nothing works.
ESSENTIAL_PLUGINS = frozenset({"sqlstore"})
#: The built-ins found by module name when the installed metadata has no entry point for them (a checkout on
#: PYTHONPATH, a broken egg-info): the store, the file formats, DSPy conversion and the basic checks, so the
#: tool still works. Module names only: the core never imports a plugin, it asks importlib for one.
FALLBACK_BUILTINS = {
    "sqlstore": "dspy_trainkit_sqlstore", "json": "dspy_trainkit_json", "jsonl": "dspy_trainkit_jsonl",
    "csv": "dspy_trainkit_csv", "yaml": "dspy_trainkit_yaml", "dspy": "dspy_trainkit_dspy",
    "basic_checks": "dspy_trainkit_basic_checks",
}


@attrs.frozen
class PluginInfo:
    """What `trainkit plugins` shows about one plugin, loaded or not."""

    name: str
    status: str  # "loaded", "disabled", "failed"
    version: str | None = None
    distribution: str | None = None
    hooks: tuple[str, ...] = ()
    builtin: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False) | {"hooks": list(self.hooks)}


class _LazyHookRelay:
    """`pm.hook`: reading a hook's caller first imports the pending plugins that implement it. The manager
    lives in a slot, outside `__dict__`, where pluggy looks for hook callers only."""

    __slots__ = ("__dict__", "_manager")  # hook callers live in __dict__, as in pluggy's HookRelay

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            manager = object.__getattribute__(self, "_manager")
            if manager is not None:
                manager.load_for_hook(name)
        return object.__getattribute__(self, name)


class TrainkitPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers what happened to every discovered plugin.

    Plugins may be registered lazily (`make_plugin_manager(lazy=True)`): a plugin whose hooks are known from
    the hook table (`plugin_cache`) is imported when one of those hooks is first read through `pm.hook`, and
    every hook's implementations are kept in the order eager loading gives them (entry-point order), so lazy
    loading changes when a plugin is imported, never what a hook call returns. Anything that lists plugins
    (`plugin_infos`, `failures`, `get_plugins`, ...) loads them all first.
    """

    def __init__(self, *, call_timeout: float | None = DEFAULT_PLUGIN_TIMEOUT) -> None:
        super().__init__(hookspecs.PROJECT)
        relay = _LazyHookRelay()
        object.__setattr__(relay, "_manager", None)
        self.hook = relay  # type: ignore[misc,assignment]  # pluggy's Final HookRelay, before any hook exists
        self.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        #: seconds one hook call of one plugin may take (`[plugins] timeout`); None or 0: no limit
        self.call_timeout = call_timeout
        #: pending entry points (name -> (entry point, hooks it implements)), imported on first use
        self._pending: dict[str, tuple[importlib.metadata.EntryPoint, frozenset[str]]] = {}
        self._loader: Callable[[importlib.metadata.EntryPoint], None] | None = None
        self._order: dict[str, int] = {}
        self._loading = False
        object.__setattr__(relay, "_manager", self)

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """pluggy's register; the hook callers it reads while registering must not import pending plugins."""
        with self._internal():
            return super().register(plugin, name)

    def check_pending(self) -> None:
        with self._internal():
            super().check_pending()

    @contextlib.contextmanager
    def _internal(self) -> Iterator[None]:
        """pluggy's own reads of `self.hook` inside: they must not import pending plugins."""
        loading, self._loading = self._loading, True
        try:
            yield
        finally:
            self._loading = loading

    @property
    def infos(self) -> dict[str, PluginInfo]:
        self.load_all()
        return self._infos

    def load_for_hook(self, hook_name: str) -> None:
        """Import the pending plugins that implement `hook_name` (in entry-point order)."""
        if self._loading or not self._pending:
            return
        wanted = [name for name, (_ep, hooks) in self._pending.items() if hook_name in hooks]
        if wanted:
            self._load_pending(wanted)

    def load_all(self) -> None:
        if self._pending and not self._loading:
            self._load_pending(list(self._pending))

    def _load_pending(self, names: list[str]) -> None:
        assert self._loader is not None
        self._loading = True
        try:
            for name in names:
                ep, _hooks = self._pending.pop(name)
                self._loader(ep)
            self._restore_order()
        finally:
            self._loading = False

    def _restore_order(self) -> None:
        """Sort each hook's implementations as eager registration would have (pluggy keeps them in
        registration order within wrappers / trylast / plain / tryfirst groups)."""
        def key(impl: Any) -> tuple[int, int, int]:
            group = 0 if impl.trylast else 2 if impl.tryfirst else 1
            return (int(bool(impl.wrapper or impl.hookwrapper)), group, self._order.get(impl.plugin_name, 1 << 30))

        for caller in self.hook.__dict__.values():
            impls = getattr(caller, "_hookimpls", None)
            if isinstance(impls, list) and len(impls) > 1:
                impls.sort(key=key)

    def get_plugins(self) -> set[Any]:
        self.load_all()
        return super().get_plugins()

    def list_name_plugin(self) -> list[tuple[str, Any]]:
        self.load_all()
        return super().list_name_plugin()

    def get_plugin(self, name: str) -> Any | None:
        if name in self._pending:
            self._load_pending([name])
        return super().get_plugin(name)

    def is_registered(self, plugin: Any) -> bool:
        self.load_all()
        return super().is_registered(plugin)

    def register_plugin(self, plugin: Any, name: str, *, distribution: str | None = None,
                        version: str | None = None) -> None:
        """Register one plugin and check its hook names now, so a typo is blamed on the right plugin."""
        try:
            self.register(plugin, name=name)
        except ValueError as exc:  # name already taken
            raise PluginError(f"plugin {name!r}: {exc}", plugin=name) from None
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r}: {exc}", plugin=name) from None
        try:
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            self.unregister(name=name)
            raise PluginError(f"plugin {name!r}: {exc}. Check the hook name against docs/hooks.md",
                              plugin=name) from None
        callers = self.get_hookcallers(plugin) or ()
        wrapped = sorted(c.name for c in callers if c.name not in WRAPPABLE_HOOKS and any(
            impl.plugin is plugin and (impl.wrapper or impl.hookwrapper) for impl in c.get_hookimpls()))
        if wrapped:
            self.unregister(name=name)
            raise PluginError(f"plugin {name!r}: hook wrappers are not supported for {', '.join(wrapped)}: the core "
                              "calls each plugin of these hooks on its own, to attribute results and errors; "
                              "implement the hook plainly", plugin=name)
        hooks = tuple(sorted(caller.name for caller in callers))
        self._order.setdefault(name, len(self._order))
        self._infos[name] = PluginInfo(name=name, status="loaded", version=version, distribution=distribution,
                                      hooks=hooks, builtin=distribution == BUILTIN_DISTRIBUTION)

    def plugin_infos(self) -> list[PluginInfo]:
        return sorted(self.infos.values(), key=lambda info: info.name)

    def failures(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.status == "failed"]

    def known_infos(self) -> dict[str, PluginInfo]:
        """What is known without importing pending plugins (those are absent)."""
        return self._infos


def parse_name_list(value: str | Sequence[str] | None) -> list[str] | None:
    """`"a, b"` or `["a", "b"]` -> `["a", "b"]`; `None` stays `None` (no list given); `""` is an empty list."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def discover_entry_points() -> list[importlib.metadata.EntryPoint]:
    """All entry points in the group, first one per name (a name provided twice is a warning), plus the
    essential built-ins the metadata lacks (see FALLBACK_BUILTINS)."""
    eps, notes = _discover()
    for level, message in notes:
        log.log(level, message)
    return eps


def installed_entry_points() -> list[Any]:
    """`discover_entry_points()`, from the entry-point list (`plugin_cache`) while nothing it was made from has
    changed, so that a start does not import `importlib.metadata` nor read every distribution's metadata."""
    import sys

    cached = plugin_cache.read_entry_points(ENTRY_POINT_GROUP)
    if cached is not None:
        eps, appended, notes = cached
        sys.path.extend(folder for folder in appended if folder not in sys.path)
        for level, message in notes:
            log.log(level, message)
        return eps
    before = list(sys.path)
    state = plugin_cache.path_state(before)  # before discovery reads anything: a change meanwhile shows next time
    found, notes = _discover()
    for level, message in notes:
        log.log(level, message)
    plugin_cache.write_entry_points(ENTRY_POINT_GROUP, before, state,
                                    [(ep.name, ep.value, *dist_info(ep)) for ep in found],
                                    [folder for folder in sys.path if folder not in before], notes)
    return found


def _discover() -> tuple[list[importlib.metadata.EntryPoint], list[tuple[int, str]]]:
    """The discovery itself, and what it has to say as (log level, message)."""
    import importlib.metadata

    notes: list[tuple[int, str]] = []
    chosen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in chosen:
            notes.append((logging.WARNING, f"plugin name {ep.name!r} is provided by two distributions "
                                           f"({_dist_name(chosen[ep.name])}, {_dist_name(ep)}); using the first"))
            continue
        chosen[ep.name] = ep
    missing = {name: module for name, module in FALLBACK_BUILTINS.items() if name not in chosen}
    if missing and _builtins_importable(missing.values()):
        notes.append((logging.INFO, "dspy-trainkit's entry points are missing (a checkout on PYTHONPATH or a broken "
                                    "install); loading the essential built-in plugins by module name: "
                                    + ", ".join(sorted(missing))))
        for name, module in missing.items():
            chosen[name] = importlib.metadata.EntryPoint(name=name, value=module, group=ENTRY_POINT_GROUP)
    return list(chosen.values()), notes


def _builtins_importable(modules: Iterable[str]) -> bool:
    """Whether the built-in plugin modules can be imported, adding a source checkout's `plugins/` folder (next
    to the `dspy_trainkit` package) to `sys.path` when that is where they are."""
    import importlib.util
    import sys
    from pathlib import Path

    modules = list(modules)
    if all(importlib.util.find_spec(module) is not None for module in modules):
        return True
    checkout_plugins = Path(__file__).resolve().parent.parent / "plugins"
    if not (checkout_plugins / modules[0]).is_dir():
        return False
    sys.path.append(str(checkout_plugins))
    importlib.invalidate_caches()
    return all(importlib.util.find_spec(module) is not None for module in modules)


def _load(ep: importlib.metadata.EntryPoint) -> Any:
    """Import an entry point's object; a plugin that exits the interpreter while importing (`sys.exit`,
    KeyboardInterrupt aside) fails like one that raises, instead of ending every command. A built-in plugin
    registered by metadata but not importable (a checkout on PYTHONPATH with a stale egg-info) is looked for
    in the checkout's `plugins/` folder before it counts as failed."""
    try:
        return ep.load()
    except ModuleNotFoundError:
        if _dist_name(ep) != BUILTIN_DISTRIBUTION or not _builtins_importable([ep.value.split(":")[0]]):
            raise
        return ep.load()
    except SystemExit as exc:
        raise PluginError(f"plugin {ep.name!r} called sys.exit({exc.code!r}) while loading", plugin=ep.name) from None


def _dist_name(ep: importlib.metadata.EntryPoint) -> str | None:
    return dist_info(ep)[0]


_DIST_INFO: dict[Any, tuple[str, str]] = {}


def dist_info(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    """(name, version) of the entry point's distribution, read once per distribution: `dist.metadata` parses
    the METADATA file again on every access, and four reads per plugin were most of making a plugin manager."""
    if isinstance(ep, plugin_cache.CachedEntryPoint):
        return ep.dist_name, ep.dist_version
    dist = ep.dist
    if dist is None:
        return None, None
    key = getattr(dist, "_path", None) or id(dist)
    found = _DIST_INFO.get(key)
    if found is None:
        metadata = dist.metadata
        found = _DIST_INFO[key] = (metadata["Name"], metadata["Version"])
    return found


def make_plugin_manager(*, load: Sequence[str] | None = None, disable: Iterable[str] = (),
                        strict: bool = False, extra_plugins: Iterable[tuple[str, Any]] = (),
                        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
                        timeout: float | None = DEFAULT_PLUGIN_TIMEOUT, lazy: bool | None = None
                        ) -> TrainkitPluginManager:
    """Build a plugin manager from installed entry points.

    `load` is an allow-list of plugin names (`None` = all; empty = only the essential store plugin);
    `disable` a deny-list. A name in either that no installed plugin has is an error listing the known names.
    `extra_plugins` are `(name, object)` pairs registered after the entry points (for programs and tests).
    `timeout` is the time limit in seconds of one hook call of one plugin (None or 0: none).
    `lazy` (default: on for installed entry points unless strict, off when `entry_points` are given or
    TRAINKIT_LAZY_PLUGINS=0): plugins whose hooks the hook table (`plugin_cache`) knows are imported when one
    of their hooks is first used; the others load now, as always.
    """
    import os

    pm = TrainkitPluginManager(call_timeout=timeout)
    if lazy is None:
        lazy = entry_points is None and not strict and os.environ.get("TRAINKIT_LAZY_PLUGINS", "1") != "0"
    if entry_points is not None:
        eps = list(entry_points)
    else:
        eps = installed_entry_points() if lazy else discover_entry_points()
    known = {ep.name for ep in eps}
    disable = set(disable)
    for label, names in (("the plugin allow-list (plugins.load / TRAINKIT_LOAD_PLUGINS)", load or ()),
                         ("the plugin deny-list (plugins.disable / TRAINKIT_DISABLE_PLUGINS / --disable-plugin)",
                          disable)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise PluginError(f"{label} names unknown plugin(s) {', '.join(unknown)}; "
                              f"installed plugins: {', '.join(sorted(known)) or 'none'} (see `trainkit plugins`)",
                              plugin=unknown[0])
    allowed = None if load is None else set(load) | ESSENTIAL_PLUGINS

    def load_one(ep: importlib.metadata.EntryPoint) -> None:
        dist, version = _ep_dist(ep)
        try:
            plugin = _load(ep)
            pm.register_plugin(plugin, ep.name, distribution=dist, version=version)
        except Exception as exc:  # one broken plugin must not break every command
            message = str(exc) if isinstance(exc, PluginError) else f"plugin {ep.name!r} failed to load: " \
                f"{type(exc).__name__}: {exc}"
            if strict:
                raise PluginError(message + " (strict plugin loading is on)", plugin=ep.name) from exc
            log.warning("%s; continuing without it (set TRAINKIT_DISABLE_PLUGINS=%s to silence this)",
                        message, ep.name, extra={"plugin": ep.name})
            pm._infos[ep.name] = PluginInfo(name=ep.name, status="failed", version=version, distribution=dist,
                                            builtin=dist == BUILTIN_DISTRIBUTION, error=message)

    pm._loader = load_one
    table = plugin_cache.read() if lazy else {}
    refreshed: dict[str, Any] = {}
    for position, ep in enumerate(eps):
        pm._order[ep.name] = position
        dist, version = _ep_dist(ep)
        if ep.name in disable or (allowed is not None and ep.name not in allowed):
            pm._infos[ep.name] = PluginInfo(name=ep.name, status="disabled", version=version, distribution=dist,
                                            builtin=dist == BUILTIN_DISTRIBUTION)
            continue
        entry = table.get(ep.name) if lazy else None
        if isinstance(entry, dict) and isinstance(entry.get("locations"), list) and entry.get(
                "fingerprint") == plugin_cache.fingerprint(ep, dist, version, entry["locations"]):
            pm._pending[ep.name] = (ep, frozenset(entry.get("hooks", ())))
            refreshed[ep.name] = entry
            continue
        load_one(ep)
        info = pm._infos.get(ep.name)
        if lazy and info is not None and info.status == "loaded":
            locations = plugin_cache.locate(ep)
            stamp = plugin_cache.fingerprint(ep, dist, version, locations) if locations else None
            if stamp is not None:
                refreshed[ep.name] = {"fingerprint": stamp, "hooks": list(info.hooks), "locations": locations}
    if lazy and {**table, **refreshed} != table:
        plugin_cache.write({**table, **refreshed})
    for name, plugin in extra_plugins:
        pm.register_plugin(plugin, name)
    if pm._pending:
        pm._restore_order()  # the extras registered before pending plugins load: order them after all
    return pm


def _ep_dist(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist, version = dist_info(ep)
    if ep.dist is None and FALLBACK_BUILTINS.get(ep.name) == ep.value:
        dist = BUILTIN_DISTRIBUTION
    return dist, version


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call a hook's implementations one at a time, in pluggy's order, pairing each result with its plugin.

    Used where results must be attributed (findings, scores, registrations) and where an exception must name
    the plugin and hook that raised it.
    """
    return call_impls(hook_impls(pm, hook_name), hook_name, timeout=timeout_of(pm), **kwargs)


def timeout_of(pm: pluggy.PluginManager) -> float | None:
    """The per-call time limit of `pm`'s plugins (a plain pluggy manager has the default)."""
    return getattr(pm, "call_timeout", DEFAULT_PLUGIN_TIMEOUT)


def hook_impls(pm: pluggy.PluginManager, hook_name: str) -> list[Any]:
    """A hook's implementations in the order pluggy calls them (last registered, tryfirst first)."""
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


def call_impls(impls: Iterable[Any], hook_name: str, *, timeout: float | None = DEFAULT_PLUGIN_TIMEOUT,
               **kwargs: Any) -> list[tuple[str, Any]]:
    """Call the given hook implementations in order, each within `timeout` seconds (None or 0: no limit; see
    `time_limits`); see `call_each`. A plugin that raises, calls `sys.exit()` or runs past the limit becomes a
    PluginError naming the plugin and the hook."""
    results: list[tuple[str, Any]] = []
    for impl in impls:
        args = {name: kwargs[name] for name in impl.argnames}
        limit = None
        try:
            limit = start(timeout)
            try:
                result = impl.function(**args)
            finally:  # inside the outer try: a limit that runs out just as the call returns is still reported
                stop(limit)
        except (PluginError, ValidationError, ConversionError, ConfigError):
            raise  # already says what is wrong: a bad record, a conversion that cannot work
        except TimeLimitExceeded as exc:
            if exc.entry is not limit:
                raise  # an outer call's limit: that call reports it
            raise PluginError(f"plugin {impl.plugin_name!r} did not finish hook {hook_name!r} within "
                              f"{exc.seconds:g} s (the per-call limit, [plugins] timeout or TRAINKIT_PLUGIN_TIMEOUT); "
                              f"fix or disable the plugin (--disable-plugin {impl.plugin_name}), or raise the limit",
                              plugin=impl.plugin_name, hook=hook_name) from None
        except SystemExit as exc:  # would end the command with its code and nothing said, or stored
            raise PluginError(f"plugin {impl.plugin_name!r} called sys.exit({exc.code!r}) in hook {hook_name!r}; "
                              "a plugin must raise an exception instead of ending the process",
                              plugin=impl.plugin_name, hook=hook_name) from None
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in hook {hook_name!r}: "
                              f"{type(exc).__name__}: {exc}", plugin=impl.plugin_name, hook=hook_name) from exc
        if result is not None:
            results.append((impl.plugin_name, result))
    return results

@attrs.frozen
class Registration:
    """One thing a plugin contributed: its key (scheme, format name, strategy name), the value, the plugin."""

    key: str
    value: Any
    plugin: str
    extra: dict[str, Any] = attrs.field(factory=dict)


def collect_registrations(pm: pluggy.PluginManager, hook_name: str,
                          make: Callable[..., Registration]) -> dict[str, Registration]:
    """Call `hook_name` on every plugin with a `register` callback that builds entries with `make`.

    `make(plugin_name, *args, **kwargs)` validates one call of `register` and returns its Registration, or
    raises TypeError/ValueError with a message that is reported against the plugin.
    """
    found: dict[str, Registration] = {}
    for impl in hook_impls(pm, hook_name):
        plugin = impl.plugin_name

        def register(*args: Any, _plugin: str = plugin, **kwargs: Any) -> None:
            try:
                entry = make(_plugin, *args, **kwargs)
            except (TypeError, ValueError) as exc:
                raise PluginError(f"plugin {_plugin!r} made a bad registration in hook {hook_name!r}: {exc}",
                                  plugin=_plugin, hook=hook_name) from None
            if entry.key in found:
                raise PluginError(f"{entry.key!r} is registered by both plugin {found[entry.key].plugin!r} and "
                                  f"plugin {_plugin!r} in hook {hook_name!r}; disable one of them",
                                  plugin=_plugin, hook=hook_name)
            found[entry.key] = entry

        call_impls([impl], hook_name, timeout=timeout_of(pm), register=register)
    return found

