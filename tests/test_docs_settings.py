"""docs/configuration.md names every settings key and every TRAINKIT_* environment variable.

The settings schema is the set of known keys that `settings.py` and `optimization/config.py` hand to
`_Reader.table(data, where, known)`, which is what rejects an unknown key; the test reads those calls from the
source (so a key added to the reader is found without listing it here) and requires each key, and each
`TRAINKIT_*` name the settings read from the environment, in the configuration reference.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"
SCHEMA_MODULES = ["dspy_trainkit.settings", "dspy_trainkit.optimization.config"]


def schema_keys(module_name: str) -> dict[str, set[str]]:
    """`{table: keys}` for each `.table(data, where, known)` call in the module whose `known` is a tuple of keys
    (a literal or a module-level name); `where` is the table's name as the source writes it."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "table"
                and len(node.args) == 3):
            continue
        known = node.args[2]
        if isinstance(known, ast.Tuple):
            keys = {elt.value for elt in known.elts if isinstance(elt, ast.Constant)}
        elif isinstance(known, ast.Name) and isinstance(getattr(module, known.id, None), tuple):
            keys = set(getattr(module, known.id))
        else:  # None (any key: task names, plugin names) or a computed set such as the optimizer names
            continue
        found.setdefault(ast.unparse(node.args[1]), set()).update(keys)
    return found


def environment_names() -> set[str]:
    """The TRAINKIT_* variables the settings read (config_location.py: which file, TRAINKIT_CONFIG)."""
    source = "".join((ROOT / "dspy_trainkit" / name).read_text(encoding="utf-8")
                     for name in ("settings.py", "config_location.py"))
    return set(re.findall(r'"(TRAINKIT_[A-Z_]+)"', source))


def undocumented(text: str) -> list[str]:
    words = set(re.findall(r"[A-Za-z_][\w-]*", text))
    missing = [f"{table or 'top level'}: {key}" for module in SCHEMA_MODULES
               for table, keys in schema_keys(module).items() for key in sorted(keys) if key not in words]
    return missing + sorted(name for name in environment_names() if name not in words)


def test_the_schema_is_found() -> None:
    keys = {key for module in SCHEMA_MODULES for keys in schema_keys(module).values() for key in keys}
    assert {"batch_size", "collection_mode", "api_key_env", "max_dev", "new_accepted", "superseded"} <= keys
    assert {"TRAINKIT_STORE_URL", "TRAINKIT_CONFIG"} <= environment_names()


def test_every_settings_key_is_documented() -> None:
    assert undocumented(PAGE.read_text(encoding="utf-8")) == []


def test_a_missing_key_is_found() -> None:
    text = PAGE.read_text(encoding="utf-8").replace("collection_mode", "collection-mode")
    assert [p for p in undocumented(text) if p.endswith(": collection_mode")] == ["where: collection_mode"]
