"""dspy-trainkit: training data for DSPy programs, collected, imported, curated and handed over reproducibly.

The public API is re-exported here and loaded on first use (PEP 562), so that `trainkit --help` and a plugin's
`from dspy_trainkit import hookimpl` do not pay for the whole package (nor `--help` for pluggy); DSPy is
imported only by the features that need it.
"""

from __future__ import annotations

from .errors import ConfigError, ConversionError, NotFoundError, PluginError, StoreError, TrainkitError, ValidationError
from .lazy import lazy_exports

# Not `from typing import TYPE_CHECKING`: typing took most of this import's ~13 ms, all of it before the
# command line can hold a Ctrl-C (cli/entry.py), where an interrupt printed a traceback. Type checkers know it.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from .hookspecs import hookimpl
    from .intake import IntakeReport, Problem
    from .kit import Kit, open
    from .models import Event, Example, Finding, Snapshot
    from .settings import Settings, TaskSettings, load_settings
    from .store import ExampleQuery, InsertResult, Store

__version__ = "0.1.0"

_LAZY = {
    "hookimpl": "hookspecs", "IntakeReport": "intake", "Problem": "intake", "Kit": "kit", "open": "kit",
    "Event": "models", "Example": "models", "Finding": "models", "Snapshot": "models", "Settings": "settings",
    "TaskSettings": "settings", "load_settings": "settings", "ExampleQuery": "store", "InsertResult": "store",
    "Store": "store",
}

__all__ = [
    "ConfigError", "ConversionError", "Event", "Example", "ExampleQuery", "Finding", "InsertResult", "IntakeReport",
    "Kit", "NotFoundError", "PluginError", "Problem", "Settings", "Snapshot", "Store", "StoreError", "TaskSettings",
    "TrainkitError", "ValidationError", "hookimpl", "load_settings", "open",
]


__getattr__ = lazy_exports(_LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
