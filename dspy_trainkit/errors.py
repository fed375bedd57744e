"""Errors a user can cause, each carrying one clear message that names the thing and what to do.

The CLI turns any `TrainkitError` into a single line on stderr and a non-zero exit; everything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class TrainkitError(Exception):
    """Base class for errors caused by input, configuration or environment, not by a bug."""

    exit_code = 1


class ConfigError(TrainkitError):
    """A bad `trainkit.toml`, environment variable or option value."""


class PluginError(TrainkitError):
    """A plugin failed to load, register or run; the message names the plugin and the hook."""

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None):
        super().__init__(message)
        self.plugin = plugin
        self.hook = hook


class StoreError(TrainkitError):
    """The store cannot be opened or reached (bad URL, unknown scheme, server down)."""


class NotFoundError(TrainkitError):
    """A named thing (example id, snapshot) does not exist."""


class ValidationError(TrainkitError):
    """A value given to a model (Example, Finding, Event) is not acceptable."""


class ConversionError(TrainkitError):
    """Examples cannot be converted as asked (a signature that does not fit, an unknown target)."""


class LMError(TrainkitError):
    """An LM cannot be used: not configured, its API key variable unset, unreachable, or refusing the model."""
