"""Collecting registrations from the registry hooks (`storage_backend`, `import_format`, `synthesize`).

Each plugin is called with its own `register` callback, so every registration is named after the plugin that
made it, checked where it is made, and a clash between two plugins is an error that names both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pluggy

from .errors import PluginError
from .plugins import call_impls, hook_impls


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

        call_impls([impl], hook_name, register=register)
    return found

