"""Names re-exported by a package but imported on first use (PEP 562), so that `import dspy_trainkit` and a
plugin's `from dspy_trainkit.pluginkit import check_each` stay cheap: `trainkit --help` must not pay for the
store, DSPy or the settings parser."""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing is most of this package's import time (see __init__)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def lazy_exports(names: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A `__getattr__` for the module whose globals are `namespace`: it imports `names[name]` (a module relative
    to that module's package) on first use of `name` and caches the value there."""
    module, package = namespace["__name__"], namespace["__package__"]

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(f".{names[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
