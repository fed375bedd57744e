"""Objects named by an import path ("package.module:name") in settings or options: programs, metrics,
signatures, verifiers, templates.

Users keep such modules beside their trainkit.toml, so a module that is not importable from sys.path is looked
up in the project folder too, but only when the module itself is what is missing: when something it imports is
missing, that is the error to report, not a reason to guess another folder.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import ConfigError


def is_import_path(spec: Any) -> bool:
    """"pkg.module:name" (and not a signature string like "question -> answer")."""
    return isinstance(spec, str) and "->" not in spec and ":" in spec


def import_module(module_name: str, project_dir: Path | str | None) -> ModuleType:
    """`importlib.import_module`, falling back to the project folder when the module itself is not found."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        own = module_name == missing or module_name.startswith(missing + ".")
        if project_dir is None or not own or str(project_dir) in sys.path:
            raise
    sys.path.append(str(project_dir))
    importlib.invalidate_caches()
    return importlib.import_module(module_name)


def import_object(spec: str, project_dir: Path | str | None, what: str) -> Any:
    """The object "package.module:name" (or "module:Class.attr") names; a ConfigError starting with `what`
    (e.g. "[tasks.qa] program") that says what to check when it cannot be had."""
    if not is_import_path(spec):
        raise ConfigError(f"{what} {spec!r}: give an import path 'package.module:name'")
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what} {spec!r}: give an import path 'package.module:name'")
    try:
        value: Any = import_module(module_name, project_dir)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {spec!r}: cannot import it ({exc}); check the path, and that the module is "
                          f"installed or in the project folder {project_dir}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module raised while importing
        raise ConfigError(f"{what} {spec!r}: importing it failed: {type(exc).__name__}: {exc}") from None
    return value
