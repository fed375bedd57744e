"""docs/plugins.md and docs/hooks.md match the plugin API and the built-in plugins as they are.

* The built-in plugin table lists every plugin of setup.cfg's entry points, each with the hooks it implements.
* The Python in both pages imports only the public plugin API.
* The "Testing a plugin" example runs, as written, under pytest with the page's own example plugin.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

from dspy_trainkit.plugin_manager import make_plugin_manager

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_MD = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
HOOKS_MD = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
PUBLIC = ("dspy_trainkit", "dspy_trainkit.pluginkit", "dspy_trainkit.testing")


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def builtin_table() -> dict[str, set[str]]:
    section = PLUGINS_MD.split("## The built-in plugins", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]*) \|", section, flags=re.MULTILINE)
    return {name: set(re.findall(r"`(\w+)`", hooks)) for name, hooks in rows}


def test_every_builtin_plugin_is_listed_with_its_hooks():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    declared = [line.split("=")[0].strip()
                for line in parser["options.entry_points"]["dspy_trainkit"].strip().splitlines()]
    loaded = {info.name: set(info.hooks) for info in make_plugin_manager(strict=True).plugin_infos()}
    table = builtin_table()
    assert sorted(table) == sorted(declared)
    assert {name: table[name] for name in declared} == {name: loaded[name] for name in declared}


def test_plugin_pages_import_only_the_public_api():
    found = []
    for page, text in (("plugins.md", PLUGINS_MD), ("hooks.md", HOOKS_MD)):
        for block in python_blocks(text):
            for module in re.findall(r"^\s*(?:from|import) (dspy_trainkit[\w.]*)", block, flags=re.MULTILINE):
                if module not in PUBLIC:
                    found.append(f"{page}: {module}")
    assert found == []


def test_the_testing_example_runs(tmp_path):
    blocks = python_blocks(PLUGINS_MD)
    plugin = next(block for block in blocks if block.startswith("# trainkit_no_todo.py"))
    test = next(block for block in blocks if "def test_todo_goes_to_review(trainkit_kit)" in block)
    (tmp_path / "trainkit_no_todo.py").write_text(plugin, encoding="utf-8")
    (tmp_path / "test_no_todo.py").write_text(test, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                             str(tmp_path), str(tmp_path / "test_no_todo.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
