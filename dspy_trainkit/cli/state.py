"""What the global options decide, shared by every command: settings, plugins and the open kit.

Each piece is made on first use, so a command that only needs settings never opens the store and
`trainkit --help` never loads the store backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..kit import Kit
    from ..plugin_manager import TrainkitPluginManager
    from ..settings import Settings


class CliState:
    def __init__(self) -> None:
        self.db: str | None = None
        self.config_path: str | None = None
        self.disable: tuple[str, ...] = ()
        self.strict: bool | None = None
        self.plugin_commands: dict[str, Any] | None = None
        self.plugin_error: str | None = None
        self.plugin_clash = False  # a plugin command's name was taken already (a warning was given)
        self._settings: Settings | None = None
        self._pm: TrainkitPluginManager | None = None
        self._kit: Kit | None = None

    def apply_options(self, params: dict[str, Any]) -> None:
        """Take the global options (`--db`, `--config`, `--disable-plugin`, `--strict-plugins`)."""
        self.db = params.get("db")
        self.config_path = params.get("config_path")
        self.disable = tuple(params.get("disable") or ())
        self.strict = params.get("strict_plugins")

    def settings(self) -> Settings:
        if self._settings is None:
            from pathlib import Path

            import attrs

            from ..settings import load_settings, resolve_store_url

            settings = load_settings(self.config_path, overrides={"strict_plugins": self.strict})
            if self.db:  # an option's relative path is relative to where the user typed it
                settings = attrs.evolve(settings, store_url=resolve_store_url(self.db, Path.cwd()))
            self._settings = settings
        return self._settings

    def plugin_manager(self) -> TrainkitPluginManager:
        if self._pm is None:
            from ..plugin_manager import make_plugin_manager

            s = self.settings()
            self._pm = make_plugin_manager(load=s.load_plugins, disable=(*s.disable_plugins, *self.disable),
                                           strict=s.strict_plugins, timeout=s.plugin_timeout)
        return self._pm

    def kit(self, *, create: bool = False, migrate: bool = True) -> Kit:
        """The open kit; with create=False a store that does not exist yet is an error; with migrate=False an
        older store is read as it is (observers such as metrics must not upgrade a schema behind an operator)."""
        if self._kit is None:
            from ..kit import open as open_kit
            from .startup import end as end_startup

            self._kit = open_kit(settings=self.settings(), pm=self.plugin_manager(), create=create,
                                 migrate=migrate)
            end_startup()  # the command's own work starts: gc.freeze() what start-up built (cli/startup.py)
        return self._kit

    def close(self) -> None:
        if self._kit is not None:
            self._kit.close()
            self._kit = None


#: Gives a command the CliState of its invocation.
pass_state = click.make_pass_decorator(CliState, ensure=True)
