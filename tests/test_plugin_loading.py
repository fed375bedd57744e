"""Loading plugins one by one: broken third-party plugins are reported by name and the rest still work.

The broken plugins here are real distributions (a module plus a `.dist-info` folder with METADATA and
entry_points.txt) put on sys.path, so they go through the same entry-point discovery as an installed plugin.
The second half checks the errors a loaded plugin can cause at run time: each names the plugin (and hook), and
nothing of an aborted batch is stored.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import textwrap

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit import PluginError, hookimpl
from dspy_trainkit.cli.main import cli
from dspy_trainkit.plugin_manager import make_plugin_manager
from dspy_trainkit.store import storage_schemes

FAKE_MODULES = ("broken_pkg", "typo_pkg", "good_pkg", "halfbad_pkg", "badcommand_pkg", "exiting_pkg")

PLUGIN_SOURCES = {
    # entry-point name: (distribution, module, source)
    "broken_plugin": ("broken-pkg", "broken_pkg", """
        raise RuntimeError("cannot import a missing dependency")
    """),
    "typo_plugin": ("typo-pkg", "typo_pkg", """
        from dspy_trainkit import hookimpl

        @hookimpl
        def validat(examples, context):
            return None
    """),
    "good_plugin": ("good-pkg", "good_pkg", """
        from dspy_trainkit import Finding, hookimpl

        @hookimpl
        def validate(examples, context):
            return {i: [Finding(severity="info", code="good-seen", message="seen")] for i in range(len(examples))}
    """),
    # a known hook with an argument the spec does not have: pluggy rejects it while registering
    "halfbad_plugin": ("halfbad-pkg", "halfbad_pkg", """
        from dspy_trainkit import hookimpl

        SEEN = []

        @hookimpl
        def on_data_changed(event, context):
            SEEN.append(event.kind)

        @hookimpl
        def validate(examples, context, extra):
            return None
    """),
    "exiting_plugin": ("exiting-pkg", "exiting_pkg", """
        import sys

        sys.exit("this plugin needs a licence key")
    """),
    "badcommand_plugin": ("badcommand-pkg", "badcommand_pkg", """
        from dspy_trainkit import hookimpl

        @hookimpl
        def register_commands(cli):
            raise RuntimeError("command setup failed")
    """),
}


@pytest.fixture(autouse=True)
def forget_fake_modules():
    """The fake plugins' modules leave sys.modules with their folder (conftest's `hermetic` cleans TRAINKIT_*)."""
    yield
    for module in FAKE_MODULES:
        sys.modules.pop(module, None)


@pytest.fixture
def install(tmp_path, monkeypatch):
    """`install(*names)` makes the named fake plugins real distributions on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(*names: str) -> None:
        for name in names:
            dist, module, source = PLUGIN_SOURCES[name]
            (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
            (info / "entry_points.txt").write_text(f"[dspy_trainkit]\n{name} = {module}\n", encoding="utf-8")
        importlib.invalidate_caches()

    return install


def infos_by_name(pm):
    return {info.name: info for info in pm.plugin_infos()}


# -- loading ------------------------------------------------------------------------------------------------

def test_broken_plugins_are_reported_and_the_others_still_load(install, caplog):
    install("broken_plugin", "typo_plugin", "good_plugin")
    with caplog.at_level(logging.WARNING, logger="dspy_trainkit"):
        pm = make_plugin_manager()
    infos = infos_by_name(pm)

    broken = infos["broken_plugin"]
    assert broken.status == "failed"
    assert "'broken_plugin'" in broken.error
    assert "RuntimeError: cannot import a missing dependency" in broken.error
    assert (broken.distribution, broken.version, broken.builtin) == ("broken-pkg", "0.1", False)

    typo = infos["typo_plugin"]
    assert typo.status == "failed"
    assert "'typo_plugin'" in typo.error
    assert "validat" in typo.error
    assert pm.get_plugin("typo_plugin") is None

    good = infos["good_plugin"]
    assert good.status == "loaded"
    assert (good.distribution, good.version, good.hooks, good.builtin) == ("good-pkg", "0.1", ("validate",), False)
    for name in ("sqlstore", "basic_checks"):
        assert infos[name].status == "loaded"
        assert infos[name].builtin is True
    assert sorted(info.name for info in pm.failures()) == ["broken_plugin", "typo_plugin"]

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("broken_plugin" in message and "cannot import" in message for message in warnings)
    assert any("typo_plugin" in message and "validat" in message for message in warnings)


def test_loaded_plugins_work_beside_a_broken_one(install, tmp_path):
    install("broken_plugin", "typo_plugin", "good_plugin")
    with tk.open("sqlite:///" + str(tmp_path / "x.db")) as kit:
        stored = kit.add(task="qa", inputs={"question": "2+2?"}, outputs={"answer": "4"})
    assert [(f.code, f.plugin) for f in stored.findings] == [("good-seen", "good_plugin")]
    assert stored.status == "accepted"


@pytest.mark.parametrize("name", ["broken_plugin", "typo_plugin"])
def test_strict_loading_raises_naming_the_plugin(install, name):
    install(name, "good_plugin")
    with pytest.raises(PluginError) as caught:
        make_plugin_manager(strict=True)
    assert caught.value.plugin == name
    assert repr(name) in str(caught.value)
    assert "strict" in str(caught.value)


def test_a_plugin_rejected_while_registering_leaves_no_hooks_behind(install):
    """A hook with a wrong signature fails the plugin; its other, valid hooks must not run either."""
    install("halfbad_plugin")
    pm = make_plugin_manager()
    info = infos_by_name(pm)["halfbad_plugin"]
    assert info.status == "failed"
    assert "'halfbad_plugin'" in info.error
    assert pm.get_plugin("halfbad_plugin") is None
    assert "halfbad_plugin" not in [impl.plugin_name for impl in pm.hook.on_data_changed.get_hookimpls()]


# -- the command line with broken plugins --------------------------------------------------------------------

def test_cli_lists_a_broken_plugin_as_failed(install):
    install("broken_plugin", "good_plugin")
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["broken_plugin"]["status"] == "failed"
    assert "cannot import a missing dependency" in listed["broken_plugin"]["error"]
    assert listed["good_plugin"]["status"] == "loaded"
    assert listed["sqlstore"]["status"] == "loaded"


def test_cli_commands_work_with_a_broken_plugin(install):
    install("broken_plugin")
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    result = runner.invoke(cli, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"] == 0


@pytest.mark.parametrize("how", ["environment", "option"])
def test_cli_strict_mode_stops_with_one_error_line(install, how):
    install("broken_plugin")
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    args, env = (["stats"], {"TRAINKIT_STRICT_PLUGINS": "1"}) if how == "environment" else \
        (["--strict-plugins", "stats"], {})
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "broken_plugin" in lines[0]
    assert "Traceback" not in result.output


def test_cli_help_works_with_a_broken_plugin_in_strict_mode(install):
    install("broken_plugin")
    result = CliRunner().invoke(cli, ["--help"], env={"TRAINKIT_STRICT_PLUGINS": "1"})
    assert result.exit_code == 0, result.output
    assert "stats" in result.stdout


def test_cli_help_works_when_a_plugin_fails_to_add_its_commands(install):
    """register_commands raising must not break every command: help still works, and a command that is not
    there is a usage error naming the plugin that failed, not a traceback."""
    install("badcommand_plugin")
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert "stats" in result.stdout
    result = runner.invoke(cli, ["no-such-command"])
    assert result.exit_code == 2, result.output
    assert "badcommand_plugin" in result.stderr


# -- errors from loaded plugins at run time ------------------------------------------------------------------

def open_kit(tmp_path, *plugins):
    return tk.open("sqlite:///" + str(tmp_path / "x.db"), plugins=list(plugins))


def records(n, start=0):
    return [{"task": "qa", "inputs": {"question": f"q{i}"}, "outputs": {"answer": f"a{i}"}}
            for i in range(start, start + n)]


class RaisingValidator:
    def __init__(self):
        self.armed = False

    @hookimpl
    def validate(self, examples, context):
        if self.armed:
            raise ValueError("validator crashed")
        return None


def test_a_plugin_raising_in_validate_aborts_the_batch(tmp_path):
    plugin = RaisingValidator()
    with open_kit(tmp_path, ("crasher", plugin)) as kit:
        kit.add_many(records(2))
        before = kit.count()
        plugin.armed = True
        with pytest.raises(PluginError) as caught:
            kit.add_many(records(5, start=10))
        assert kit.count() == before == 2
        assert list(kit.events()) and all(len(e.example_ids) == 2 for e in kit.events())
    assert caught.value.plugin == "crasher"
    assert caught.value.hook == "validate"
    assert "'crasher'" in str(caught.value) and "'validate'" in str(caught.value)
    assert "validator crashed" in str(caught.value)


class OutOfRangeScorer:
    @hookimpl
    def score(self, examples, context):
        return {i: {"too_high": 1.5} for i in range(len(examples))}


def test_a_score_outside_0_1_is_an_error_naming_the_plugin(tmp_path):
    with open_kit(tmp_path, ("overshoot", OutOfRangeScorer())) as kit:
        with pytest.raises(PluginError) as caught:
            kit.add_many(records(3))
        assert kit.count() == 0
    assert caught.value.plugin == "overshoot"
    assert caught.value.hook == "score"
    assert "'overshoot'" in str(caught.value) and "1.5" in str(caught.value)


class LengthScorer:
    @hookimpl
    def score(self, examples, context):
        return {i: {"length": 0.5} for i in range(len(examples))}


def test_two_plugins_scoring_the_same_dimension_is_an_error_naming_both(tmp_path):
    with open_kit(tmp_path, ("length_a", LengthScorer()), ("length_b", LengthScorer())) as kit:
        with pytest.raises(PluginError) as caught:
            kit.add_many(records(3))
        assert kit.count() == 0
    message = str(caught.value)
    assert "'length_a'" in message and "'length_b'" in message and "'length'" in message


class MemoryBackend:
    @hookimpl
    def storage_backend(self, register):
        register("memory", lambda url, settings, *, create=True: None)


class SqliteTakeover:
    @hookimpl
    def storage_backend(self, register):
        register("sqlite", lambda url, settings, *, create=True: None)


def test_two_plugins_registering_the_same_scheme_is_an_error_naming_both(tmp_path):
    pm = make_plugin_manager(extra_plugins=[("memory_a", MemoryBackend()), ("memory_b", MemoryBackend())])
    with pytest.raises(PluginError) as caught:
        storage_schemes(pm)
    message = str(caught.value)
    assert "'memory'" in message and "'memory_a'" in message and "'memory_b'" in message
    assert caught.value.hook == "storage_backend"

    with pytest.raises(PluginError) as caught:
        open_kit(tmp_path, ("takeover", SqliteTakeover()))
    assert "'sqlstore'" in str(caught.value) and "'takeover'" in str(caught.value)


class FailingListener:
    @hookimpl
    def on_data_changed(self, event, context):
        raise RuntimeError("listener crashed")


def test_a_plugin_failing_in_on_data_changed_is_logged_and_the_change_kept(tmp_path, caplog):
    with open_kit(tmp_path, ("listener", FailingListener())) as kit:
        with caplog.at_level(logging.ERROR, logger="dspy_trainkit"):
            report = kit.add_many(records(2))
        assert report.stored == 2
        assert kit.count() == 2
    assert any("'listener'" in r.getMessage() and "on_data_changed" in r.getMessage() for r in caplog.records)


def test_a_plugin_that_exits_while_importing_fails_alone(install):
    """sys.exit() in a plugin's module used to end every command (--help included) with only its message."""
    install("exiting_plugin", "good_plugin")
    pm = make_plugin_manager()
    infos = infos_by_name(pm)
    assert infos["exiting_plugin"].status == "failed"
    assert "sys.exit('this plugin needs a licence key')" in infos["exiting_plugin"].error
    assert infos["good_plugin"].status == "loaded"
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "Usage:" in result.stdout


def test_run_cli_hides_the_developers_trainkit_variables(tmp_path, monkeypatch):
    from dspy_trainkit.testing import run_cli

    elsewhere = tmp_path / "developer" / "real.db"
    elsewhere.parent.mkdir()
    monkeypatch.setenv("TRAINKIT_STORE_URL", f"sqlite:///{elsewhere}")
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert run_cli(["init"]).exit_code == 0
    assert not elsewhere.exists() and (project / "trainkit.db").exists()
    assert run_cli(["stats", "--json"], env={"TRAINKIT_STORE_URL": f"sqlite:///{elsewhere}"}).exit_code == 1
