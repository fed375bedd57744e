"""dspy-trainkit: training data for DSPy programs, collected, imported, curated and handed over reproducibly.

The public API is re-exported here; importing it is cheap (DSPy is imported only by the features that need it).
"""

from __future__ import annotations

from .errors import ConfigError, ConversionError, NotFoundError, PluginError, StoreError, TrainkitError, ValidationError
from .hookspecs import hookimpl
from .intake import IntakeReport, Problem
from .kit import Kit, open
from .models import Event, Example, Finding, Snapshot
from .settings import Settings, TaskSettings, load_settings
from .store import ExampleQuery, InsertResult, Store

__version__ = "0.1.0"
__all__ = [
    "ConfigError", "ConversionError", "Event", "Example", "ExampleQuery", "Finding", "InsertResult", "IntakeReport",
    "Kit", "NotFoundError", "PluginError", "Problem", "Settings", "Snapshot", "Store", "StoreError", "TaskSettings",
    "TrainkitError", "ValidationError", "hookimpl", "load_settings", "open",
]
