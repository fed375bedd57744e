"""Which settings file applies: `--config`, else `$TRAINKIT_CONFIG`, else the nearest `trainkit.toml`.

Apart from the settings parser because `trainkit --help` asks it too (to tell whether the command list it
remembers still holds, `cli/help_index.py`) without paying for reading the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

CONFIG_FILE = "trainkit.toml"


def find_config(start: Path) -> Path | None:
    """The nearest `trainkit.toml` in `start` or its parents, as git finds its repository."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def locate_config(config: str | Path | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    """The settings file: `config` (an option), else TRAINKIT_CONFIG, else the nearest one; None when there is
    none. A file named explicitly that does not exist is a ConfigError."""
    config = config or env.get("TRAINKIT_CONFIG") or None
    if config is None:
        return find_config(cwd)
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found (run `trainkit init` to create one)")
    return path
