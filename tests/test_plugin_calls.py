"""Calling plugin hooks: a plugin that calls `sys.exit()` or hangs becomes a PluginError naming the plugin and
the hook (API), or one error line and exit status 1 (CLI), and nothing of the batch is stored. The hang limit is
the `[plugins] timeout` setting (`TRAINKIT_PLUGIN_TIMEOUT`)."""

from __future__ import annotations

import importlib
import sys
import textwrap
import threading

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit import PluginError, hookimpl, load_settings
from dspy_trainkit.cli.main import cli
from dspy_trainkit.settings import DEFAULT_PLUGIN_TIMEOUT

HANG_SECONDS = 30  # far above the limits used here: a hook that returns after this means the limit failed


class Exiting:
    @hookimpl
    def validate(self, examples, context):
        sys.exit(0)


class Hanging:
    def __init__(self):
        self.calls = 0

    @hookimpl
    def score(self, examples, context):
        self.calls += 1
        threading.Event().wait(HANG_SECONDS)
        return {}


class Quick:
    @hookimpl
    def score(self, examples, context):
        return {i: {"quick": 1.0} for i in range(len(examples))}


def records(n):
    return [{"task": "qa", "inputs": {"question": f"q{i}"}, "outputs": {"answer": f"a{i}"}} for i in range(n)]


def open_kit(tmp_path, plugin, toml=""):
    (tmp_path / "trainkit.toml").write_text(toml)
    settings = load_settings(env={}, cwd=tmp_path)
    return tk.open(f"sqlite:///{tmp_path / 'x.db'}", settings=settings, plugins=[plugin])


def test_sys_exit_in_a_hook_is_a_plugin_error_and_nothing_is_stored(tmp_path):
    with open_kit(tmp_path, ("quitter", Exiting())) as kit:
        with pytest.raises(PluginError) as caught:
            kit.add_many(records(3))
        assert kit.count() == 0
    assert (caught.value.plugin, caught.value.hook) == ("quitter", "validate")
    assert "plugin 'quitter' called sys.exit(0) in hook 'validate'" in str(caught.value)


def test_a_hung_hook_is_stopped_at_the_limit_naming_plugin_and_hook(tmp_path):
    plugin = Hanging()
    with open_kit(tmp_path, ("sleeper", plugin), "[plugins]\ntimeout = 0.2\n") as kit:
        assert kit.settings.plugin_timeout == 0.2
        with pytest.raises(PluginError) as caught:
            kit.add_many(records(3))
        assert kit.count() == 0
        assert plugin.calls == 1
    assert (caught.value.plugin, caught.value.hook) == ("sleeper", "score")
    assert "plugin 'sleeper' did not finish hook 'score' within 0.2 s" in str(caught.value)


def test_fast_hooks_are_unaffected_and_the_timer_is_left_clean(tmp_path):
    import signal

    with open_kit(tmp_path, ("quick", Quick()), "[plugins]\ntimeout = 0.5\n") as kit:
        report = kit.add_many(records(5))
        assert report.stored == 5 and all(ex.scores.get("quick") == 1.0 for ex in kit.examples())
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # nothing armed after the calls


def test_timeout_setting_default_and_bad_values(tmp_path):
    assert load_settings(env={}, cwd=tmp_path).plugin_timeout == DEFAULT_PLUGIN_TIMEOUT
    assert load_settings(env={"TRAINKIT_PLUGIN_TIMEOUT": "0"}, cwd=tmp_path).plugin_timeout is None
    assert load_settings(env={"TRAINKIT_PLUGIN_TIMEOUT": "2.5"}, cwd=tmp_path).plugin_timeout == 2.5
    with pytest.raises(tk.ConfigError, match="TRAINKIT_PLUGIN_TIMEOUT='soon'.*got 'soon'$"):  # not "got -1.0"
        load_settings(env={"TRAINKIT_PLUGIN_TIMEOUT": "soon"}, cwd=tmp_path)
    (tmp_path / "trainkit.toml").write_text("[plugins]\ntimeout = -1\n")
    with pytest.raises(tk.ConfigError, match="plugins.timeout: must be a number of seconds"):
        load_settings(env={}, cwd=tmp_path)


SOURCES = {
    "quitter": "from dspy_trainkit import hookimpl\nimport sys\n\n@hookimpl\ndef validate(examples, context):\n"
               "    sys.exit(0)\n",
    "sleeper": "from dspy_trainkit import hookimpl\nimport threading\n\n@hookimpl\ndef validate(examples, context):\n"
               f"    threading.Event().wait({HANG_SECONDS})\n",
}


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The plugins above as installed distributions, found through their entry points as the CLI finds any."""
    folder = tmp_path / "site"
    folder.mkdir()
    for name, source in SOURCES.items():
        (folder / f"d1_{name}.py").write_text(textwrap.dedent(source))
        info = folder / f"d1_{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: d1-{name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[dspy_trainkit]\n{name} = d1_{name}\n")
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    yield folder
    for name in SOURCES:
        sys.modules.pop(f"d1_{name}", None)


@pytest.mark.parametrize(("plugin", "env", "message"), [
    ("quitter", {}, "Error: plugin 'quitter' called sys.exit(0) in hook 'validate'"),
    ("sleeper", {"TRAINKIT_PLUGIN_TIMEOUT": "0.2"},
     "Error: plugin 'sleeper' did not finish hook 'validate' within 0.2 s"),
])
def test_cli_import_ends_with_the_plugin_error_and_exit_1(site, tmp_path, plugin, env, message):
    other = "sleeper" if plugin == "quitter" else "quitter"
    env = {**env, "TRAINKIT_DISABLE_PLUGINS": other}
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--task", "qa", "--signature", "question -> answer"], env=env).exit_code == 0
    (tmp_path / "data.jsonl").write_text('{"question": "q1", "answer": "a1"}\n')
    result = runner.invoke(cli, ["import", "data.jsonl", "--task", "qa"], env=env)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert "examples: 0" in runner.invoke(cli, ["stats"], env=env).output


def test_nested_limits_each_report_their_own_and_leave_nothing_armed():
    import signal

    from dspy_trainkit import time_limits
    from dspy_trainkit.time_limits import TimeLimitExceeded, start, stop

    outer = start(0.1)
    try:
        inner = start(HANG_SECONDS)  # a longer inner limit: the outer one runs out first, inside the inner call
        try:
            with pytest.raises(TimeLimitExceeded) as caught:
                threading.Event().wait(HANG_SECONDS)
        finally:
            stop(inner)
        assert caught.value.entry is outer and caught.value.seconds == 0.1
    finally:
        stop(outer)
    inner_first = start(HANG_SECONDS)
    try:
        short = start(0.05)
        with pytest.raises(TimeLimitExceeded) as caught:
            threading.Event().wait(HANG_SECONDS)
        stop(short)
        assert caught.value.entry is short
    finally:
        stop(inner_first)
    assert time_limits._deadlines == [] and signal.getitimer(signal.ITIMER_REAL)[0] == 0


class HangingInPython:
    """Hangs in Python code (short sleeps in a loop), which the limit interrupts in any thread."""

    @hookimpl
    def score(self, examples, context):
        import time

        for _ in range(HANG_SECONDS * 100):
            time.sleep(0.01)
        return {}


def test_a_hook_hung_in_a_worker_thread_is_stopped_too(tmp_path):
    outcome: dict[str, object] = {}

    def work():
        try:
            with open_kit(tmp_path, ("looper", HangingInPython()), "[plugins]\ntimeout = 0.2\n") as kit:
                try:
                    kit.add_many(records(3))
                except PluginError as exc:
                    outcome["error"] = exc
                outcome["count"] = kit.count()
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["unexpected"] = exc

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert "unexpected" not in outcome, outcome
    error = outcome["error"]
    assert isinstance(error, PluginError) and (error.plugin, error.hook) == ("looper", "score")
    assert "did not finish hook 'score' within 0.2 s" in str(error)
    assert outcome["count"] == 0
