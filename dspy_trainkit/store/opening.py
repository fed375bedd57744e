"""Opening a store by URL with the backend plugin registered for its scheme (`storage_backend` hook)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..plugin_manager import Registration, collect_registrations
from ..redaction import redact_url
from . import Store

if TYPE_CHECKING:
    import pluggy

    from ..settings import Settings


def storage_schemes(pm: pluggy.PluginManager) -> dict[str, Registration]:
    """Every URL scheme a loaded plugin can open, with the plugin that registered it."""

    def make(plugin: str, scheme: str, factory: Any) -> Registration:
        if not isinstance(scheme, str) or not scheme.isidentifier():
            raise ValueError(f"scheme {scheme!r} must be a word such as 'sqlite'")
        if not callable(factory):
            raise ValueError(f"factory for scheme {scheme!r} is not callable")
        return Registration(key=scheme, value=factory, plugin=plugin)

    return collect_registrations(pm, "storage_backend", make)


def open_store(url: str, settings: Settings, pm: pluggy.PluginManager, *, create: bool = True,
               migrate: bool = True) -> Store:
    """Open the store named by `url` with the backend plugin registered for its scheme.

    With `create=False` a store that does not exist yet is an error (the CLI's commands other than `init`).
    With `migrate=False` pending schema migrations are left for `store.migrate()` (doctor and `trainkit migrate
    --check` look without changing anything); only then is the factory given `migrate=False`, so a backend
    written before the option still opens stores the ordinary way."""
    scheme = url.split(":", 1)[0] if ":" in url else ""
    schemes = storage_schemes(pm)
    if scheme not in schemes:
        if not schemes:
            raise StoreError(f"store URL {redact_url(url)!r}: no storage backend plugin is loaded, so no store "
                             "can be opened. The built-in one is `sqlstore`: check that it is not disabled "
                             "(`trainkit plugins`), and if dspy-trainkit's install lost its metadata, reinstall it "
                             "(`pip install --force-reinstall dspy-trainkit`)")
        known = ", ".join(f"{s}://" for s in sorted(schemes))
        raise StoreError(f"store URL {redact_url(url)!r}: unknown scheme {scheme!r}; known schemes: {known} "
                         "(a PostgreSQL URL starts with postgresql://, a SQLite one with sqlite:///)")
    if migrate:
        store = schemes[scheme].value(url, settings, create=create)
    else:
        try:
            store = schemes[scheme].value(url, settings, create=create, migrate=False)
        except TypeError as exc:
            if "migrate" not in str(exc):
                raise
            raise StoreError(f"the storage backend of plugin {schemes[scheme].plugin!r} cannot open a store "
                             "without migrating it (its factory takes no `migrate` option); update the plugin"
                             ) from None
    if not isinstance(store, Store):
        raise StoreError(f"plugin {schemes[scheme].plugin!r} returned {type(store).__name__} for {url!r}, "
                         "which does not implement dspy_trainkit.store.Store")
    return store
