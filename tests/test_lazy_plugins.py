"""Lazy plugin loading: with the hook table warm, a plugin is imported when one of its hooks is first used, and
every hook's implementations come in the same order, with the same plugin listing, as when all load eagerly."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap

from dspy_trainkit import plugin_cache
from dspy_trainkit.plugin_manager import hook_impls, make_plugin_manager


def _hook_names() -> list[str]:
    return sorted(name for name in make_plugin_manager(load=[]).hook.__dict__ if not name.startswith("_"))


def test_lazy_manager_matches_the_eager_one():
    make_plugin_manager()  # writes the hook table
    assert plugin_cache.read(), "the hook table was not written"
    eager = make_plugin_manager(lazy=False, disable=["llm_judge"])
    lazy = make_plugin_manager(disable=["llm_judge"])
    assert lazy._pending, "a warm hook table left nothing to load lazily"
    hooks = _hook_names()
    assert {"validate", "score", "convert", "storage_backend"} <= set(hooks)
    for hook in hooks:
        assert [i.plugin_name for i in hook_impls(lazy, hook)] == [i.plugin_name for i in hook_impls(eager, hook)]
    assert lazy.plugin_infos() == eager.plugin_infos()
    assert not lazy._pending


def test_a_plugin_is_imported_when_its_hook_is_used(tmp_path):
    code = textwrap.dedent("""
        import sys
        from dspy_trainkit.plugin_manager import hook_impls, make_plugin_manager
        make_plugin_manager()  # cold: loads everything and writes the table
        for name in [m for m in sys.modules if m.startswith("dspy_trainkit_")]:
            del sys.modules[name]
        from dspy_trainkit import hookimpl

        class Probe:  # registering a plugin of the same hook must not import the pending ones
            @hookimpl
            def validate(self, examples, context):
                return None

        pm = make_plugin_manager(extra_plugins=[("probe", Probe())])
        before = "dspy_trainkit_pii" in sys.modules
        names = [i.plugin_name for i in hook_impls(pm, "validate")]
        print(before, "dspy_trainkit_pii" in sys.modules, "pii" in names, "dspy_trainkit_template" in sys.modules,
              names[0])
    """)
    env = {**os.environ, "TRAINKIT_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True", "False", "probe"]  # registered last, called first


def test_a_changed_plugin_file_invalidates_its_entry(tmp_path, monkeypatch):
    package = tmp_path / "tk_lazy_probe"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint(name="probe", value="tk_lazy_probe", group="dspy_trainkit")
    first = plugin_cache.fingerprint(ep)
    assert first is not None and plugin_cache.fingerprint(ep) == first
    (package / "__init__.py").write_text("X = 22\n")  # a new size (and time)
    assert plugin_cache.fingerprint(ep) != first
    (package / "helpers.py").write_text("")
    assert plugin_cache.fingerprint(ep) not in (first, None)


def test_an_unreadable_table_means_eager_loading(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "c"))
    make_plugin_manager()
    path = plugin_cache.cache_file()
    path.write_text("{not json")
    pm = make_plugin_manager()
    assert not pm._pending and "sqlstore" in pm.known_infos()
    assert json.loads(path.read_text())["plugins"]["sqlstore"]["hooks"] == ["storage_backend"]  # rewritten


def _described(eps) -> list[tuple]:
    from dspy_trainkit.plugin_manager import dist_info

    return [(ep.name, ep.value, *dist_info(ep)) for ep in eps]


def test_the_entry_point_list_gives_what_discovery_gives(tmp_path, monkeypatch):
    from dspy_trainkit.plugin_manager import discover_entry_points, installed_entry_points

    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "c"))
    assert plugin_cache.read_entry_points(plugin_cache.ENTRY_POINT_GROUP) is None
    cold = installed_entry_points()  # discovers and writes the list
    warm = installed_entry_points()
    assert all(isinstance(ep, plugin_cache.CachedEntryPoint) for ep in warm)
    assert _described(warm) == _described(cold) == _described(discover_entry_points())
    assert {"sqlstore", "web", "pii"} <= {ep.name for ep in warm}
    assert warm[[ep.name for ep in warm].index("sqlstore")].load() is cold[
        [ep.name for ep in cold].index("sqlstore")].load()


def test_an_installed_or_edited_distribution_invalidates_the_entry_point_list(tmp_path, monkeypatch):
    """A distribution added to a folder already on sys.path, or its entry_points.txt edited in place, is seen."""
    from dspy_trainkit.plugin_manager import installed_entry_points

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("TRAINKIT_CACHE_DIR", str(tmp_path / "c"))
    importlib.invalidate_caches()
    before = {ep.name for ep in installed_entry_points()}
    assert "tk_probe_a" not in before and plugin_cache.read_entry_points(plugin_cache.ENTRY_POINT_GROUP)
    info = site / "tk_probe-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tk-probe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dspy_trainkit]\ntk_probe_a = tk_probe_a\n")
    importlib.invalidate_caches()
    assert {ep.name for ep in installed_entry_points()} == before | {"tk_probe_a"}
    assert "tk_probe_a" in {ep.name for ep in installed_entry_points()}  # from the list written just now
    (info / "entry_points.txt").write_text("[dspy_trainkit]\ntk_probe_a = tk_probe_a\ntk_probe_bb = tk_probe_b\n")
    assert {ep.name for ep in installed_entry_points()} == before | {"tk_probe_a", "tk_probe_bb"}


def test_a_warm_start_does_not_import_importlib_metadata(tmp_path):
    code = textwrap.dedent("""
        import sys
        from dspy_trainkit.plugin_manager import make_plugin_manager
        pm = make_plugin_manager()
        print("importlib.metadata" in sys.modules, "sqlstore" in pm._pending)
    """)
    env = {**os.environ, "TRAINKIT_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]
    assert [run.stdout.split() for run in runs] == [["True", "False"], ["False", "True"]]
