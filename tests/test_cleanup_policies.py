"""Cleanup policies decided by plugins (hook `cleanup_policies`): the core never imports a plugin, a plugin's
registered planner is used and reported like a hook, and bad registrations are errors naming the plugin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import QUALITY_PLUGINS, qa

import dspy_trainkit as tk
from dspy_trainkit import hookimpl, load_settings
from dspy_trainkit.pluginkit import ExampleQuery

CORE = Path(tk.__file__).parent
TOML = "[cleanup]\nsuperseded = true\n"


def test_the_core_imports_no_plugin():
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.relative_to(CORE.parent)}:{node.lineno} imports {n}" for n in names
                      if n.startswith("dspy_trainkit_")]
    assert found == []


class Oldest:
    """A third-party `superseded`: every example but the newest is superseded."""

    def __init__(self, name="superseded", plan=None):
        self.name, self.plan = name, plan

    @hookimpl
    def cleanup_policies(self, register):
        register(self.name, self.plan or self.superseded)

    @staticmethod
    def superseded(kit, task, excluded):
        ids = sorted(kit.store.iter_ids(ExampleQuery(task=task)))
        return [(i, "older than the newest") for i in ids[:-1] if i not in excluded]


def open_kit(tmp_path, plugins=(), disable=QUALITY_PLUGINS, toml=""):
    (tmp_path / "trainkit.toml").write_text(TOML + toml)
    return tk.open(f"sqlite:///{tmp_path / 'c.db'}", settings=load_settings(env={}, cwd=tmp_path),
                   plugins=list(plugins), disable=disable)


def test_a_plugin_registered_policy_is_planned_and_applied(tmp_path):
    with open_kit(tmp_path, [("oldest", Oldest())]) as kit:
        ids = kit.add_many([qa("first"), qa("second"), qa("third")]).ids
        result = kit.manager.run()
        assert {a["example_id"]: a["detail"] for a in result["actions"]} == {
            ids[0]: "older than the newest", ids[1]: "older than the newest"}
        assert result["archived"] == {"superseded": 2}
        assert {e.reason for e in kit.events() if e.kind == "status_changed"} == {"cleanup: superseded"}


def test_the_neardup_plugin_registers_superseded(tmp_path):
    with open_kit(tmp_path, disable=[p for p in QUALITY_PLUGINS if p != "neardup"],
                  toml="[plugin.neardup]\nseverity = 'warning'\n") as kit:
        text = "what is the sum of the angles in a triangle drawn on a flat plane in degrees"
        best = kit.add(qa(text, "180 degrees"))
        near = kit.add(qa(text + " please", "180 degrees"))  # kept for review (a warning): live
        assert (best.status, near.status) == ("accepted", "candidate")
        [action] = kit.manager.plan()
        assert (action.example_id, action.policy) == (near.id, "superseded")
        assert f"of better example {best.id}" in action.detail


@pytest.mark.parametrize(("plugin", "message"), [
    (Oldest(name="fastest"), r"plugin 'oldest' made a bad registration in hook 'cleanup_policies': policy "
                             r"'fastest' is not one a plugin decides; known: superseded"),
    (Oldest(plan="not callable"), r"plan must be callable"),
    (Oldest(plan=lambda kit, task, excluded: 1 / 0), r"plugin 'oldest' failed in hook 'cleanup_policies': "
                                                     r"ZeroDivisionError"),
])
def test_bad_policies_are_errors_naming_the_plugin(tmp_path, plugin, message):
    with open_kit(tmp_path, [("oldest", plugin)]) as kit:
        kit.add_many([qa("first"), qa("second")])
        with pytest.raises(tk.PluginError, match=message):
            kit.manager.run()
        assert kit.count(status="archived") == 0


def test_two_plugins_registering_the_same_policy_are_named(tmp_path):
    with open_kit(tmp_path, [("one", Oldest()), ("two", Oldest())]) as kit:
        kit.add(qa("first"))
        with pytest.raises(tk.PluginError, match="'superseded' is registered by both plugin"):
            kit.manager.plan()
