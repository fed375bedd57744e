"""The trainkit command line, through click's CliRunner: happy paths and one-line errors that change nothing."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from dspy_trainkit.cli.main import cli


def run(*args: str, env: dict | None = None, input: str | None = None):
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def one_error_line(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.fixture
def project(tmp_path):
    result = run("init", "--task", "qa", "--signature", "question -> answer")
    assert result.exit_code == 0, result.output
    return tmp_path


def test_init_writes_a_commented_config_and_the_store(tmp_path):
    result = run("init", "--task", "qa", "--signature", "question -> answer")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "trainkit.toml").read_text()
    assert 'default_task = "qa"' in text and 'signature = "question -> answer"' in text and "# " in text
    assert (tmp_path / "trainkit.db").exists() and "0001_initial" in result.output
    again = run("init", "--task", "other")
    one_error_line(again, "exists already", "--force")
    kept = run("init")  # a config that is there is used as it is: only the store is made
    assert kept.exit_code == 0 and "using" in kept.output
    assert (tmp_path / "trainkit.toml").read_text() == text
    assert run("init", "--force").exit_code == 0


def test_init_refuses_bad_task_names_and_signatures(tmp_path):
    assert run("init", "--task", "bad name").exit_code == 2
    assert run("init", "--task", "qa", "--signature", "no arrow").exit_code == 2
    assert not (tmp_path / "trainkit.toml").exists()


def test_add_list_show_stats(project):
    added = run("add", "-i", "question=What is 2+2?", "-o", "answer=4", "--topic", "arithmetic", "--json")
    assert added.exit_code == 0, added.output
    data = json.loads(added.output)
    assert data["added"] is True and data["example"]["status"] == "accepted"
    assert data["example"]["outputs"] == {"answer": "4"}  # option values are text as typed
    example_id = data["example"]["id"]

    dup = run("add", "-i", "question=What is 2+2? ", "-o", "answer=4")
    assert dup.exit_code == 0 and f"already stored as {example_id}" in dup.output

    bad = run("add", "-i", "question=Capital of France?", "-o", "answer=")
    assert bad.exit_code == 3 and "rejected" in bad.output and "outputs.answer is empty" in bad.output

    listed = json.loads(run("list", "--json").output)
    assert [ex["status"] for ex in listed] == ["accepted", "rejected"]
    assert json.loads(run("list", "--json", "--status", "rejected").output)[0]["inputs"]["question"] == \
        "Capital of France?"
    table = run("list").output
    assert example_id in table and "arithmetic" in table

    shown = run("show", example_id)
    assert "What is 2+2?" in shown.output and "arithmetic" in shown.output
    assert json.loads(run("show", example_id, "--json").output)["content_hash"] == data["example"]["content_hash"]

    stats = json.loads(run("stats", "--json").output)
    assert stats["total"] == 2 and stats["by_status"] == {"accepted": 1, "rejected": 1}
    assert "by status: accepted 1, rejected 1" in run("stats").output


def test_add_from_json_and_stdin(project):
    result = run("add", "--from-json", '{"inputs": {"question": "q"}, "outputs": {"answer": "a"}, "domain": "d"}')
    assert result.exit_code == 0, result.output
    result = run("add", "--from-json", "-", "--json", input='{"inputs": {"question": "r"}, "outputs": {"answer": "b"}}')
    assert json.loads(result.output)["example"]["inputs"] == {"question": "r"}
    assert run("add", "--from-json", "[1]").exit_code == 2
    assert run("add", "--from-json", "{nope").exit_code == 2
    assert run("add", "-o", "answer=1").exit_code == 2


def test_add_of_a_malformed_example_is_one_line_and_stores_nothing(project):
    result = run("add", "-t", "bad task", "-i", "q=1")
    one_error_line(result, "example not added", "task")
    assert json.loads(run("stats", "--json").output)["total"] == 0


def test_show_of_a_missing_id(project):
    one_error_line(run("show", "0123456789abcdef"), "no example with id '0123456789abcdef'")


def test_commands_other_than_init_do_not_create_a_store(tmp_path):
    one_error_line(run("stats"), "no store at", "trainkit init")
    assert not (tmp_path / "trainkit.db").exists()


@pytest.mark.parametrize(("toml", "fragments"), [
    ("[store\n", ("trainkit.toml", "not valid TOML", "line 1")),
    ("[store]\nurl = 'sqlite:///x.db'\nflavour = 1\n", ("trainkit.toml:3", "store.flavour", "unknown key")),
    ("[store]\nurl = 'mongodb://x'\n", ("unknown scheme 'mongodb'",)),
    ("[store]\nurl = 'postgresql://nobody@127.0.0.1:1/x'\n", ("cannot connect to PostgreSQL",)),
])
def test_bad_configuration_is_one_line(tmp_path, toml, fragments):
    (tmp_path / "trainkit.toml").write_text(toml)
    one_error_line(run("stats"), *fragments)
    assert sorted(os.listdir(tmp_path)) == ["trainkit.toml"]


def test_unknown_plugin_names_are_errors(project):
    one_error_line(run("stats", env={"TRAINKIT_DISABLE_PLUGINS": "nosuch"}), "TRAINKIT_DISABLE_PLUGINS", "nosuch")
    one_error_line(run("--disable-plugin", "nosuch", "plugins"), "nosuch", "installed plugins")
    one_error_line(run("stats", env={"TRAINKIT_LOAD_PLUGINS": "basic_checks,nosuch"}), "TRAINKIT_LOAD_PLUGINS")


def test_disabling_a_plugin_changes_intake(project):
    result = run("--disable-plugin", "basic_checks", "add", "-i", "question=q", "-o", "answer=", "--json")
    assert json.loads(result.output)["example"]["status"] == "accepted"
    plugins = {p["name"]: p for p in json.loads(run("--disable-plugin", "basic_checks", "plugins", "--json").output)}
    assert plugins["basic_checks"]["status"] == "disabled" and plugins["sqlstore"]["status"] == "loaded"


def test_plugins_lists_builtins_with_versions_and_hooks(project):
    plugins = {p["name"]: p for p in json.loads(run("plugins", "--json").output)}
    assert plugins["sqlstore"]["hooks"] == ["storage_backend"] and plugins["sqlstore"]["builtin"] is True
    assert plugins["basic_checks"]["hooks"] == ["validate"] and plugins["basic_checks"]["version"] == "0.1.0"
    assert plugins["sqlstore"]["distribution"] == "dspy-trainkit"
    assert "sqlstore" in run("plugins").output


def test_db_option_and_env_pick_the_store(project, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    assert run("--db", "sqlite:///other/o.db", "stats").exit_code == 1  # not created by a read
    url = f"sqlite:///{other / 'o.db'}"
    import dspy_trainkit as tk

    tk.open(url).close()
    run("--db", url, "add", "-i", "question=x", "-o", "answer=y")
    assert json.loads(run("--db", url, "stats", "--json").output)["total"] == 1
    assert json.loads(run("stats", "--json", env={"TRAINKIT_STORE_URL": url}).output)["total"] == 1
    assert json.loads(run("stats", "--json").output)["total"] == 0


def test_config_show(project):
    data = json.loads(run("config", "show", "--json").output)
    assert data["default_task"] == "qa" and data["tasks"]["qa"]["signature"] == "question -> answer"
    assert data["store_url"].endswith("trainkit.db")
    text = run("config", "show", env={"TRAINKIT_BATCH_SIZE": "7"}).output
    assert "batch_size=7" in text and "task qa: question -> answer" in text
    assert "collect=True sample_rate=1.0" in text


def test_help_lists_commands_and_usage_errors_exit_2(project):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("init", "add", "list", "show", "stats", "plugins", "config"):
        assert command in result.output
    assert run("nosuchcommand").exit_code == 2
    assert run("list", "--status", "weird").exit_code == 2


def test_init_force_that_fails_keeps_the_old_file(tmp_path):
    assert run("init", "--task", "qa").exit_code == 0
    before = (tmp_path / "trainkit.toml").read_text()
    one_error_line(run("init", "--force", "--db", "mongodb://x/y"), "unknown scheme 'mongodb'")
    assert (tmp_path / "trainkit.toml").read_text() == before


def test_init_writes_the_store_url_it_uses(tmp_path):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert run("init", env={"TRAINKIT_STORE_URL": url}).exit_code == 0
    assert f'url = "{url}"' in (tmp_path / "trainkit.toml").read_text()
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "trainkit.db").exists()


def test_ctrl_c_in_a_command_without_its_own_handler_exits_130_with_one_line(project, monkeypatch):
    """click would print "Aborted!" and exit 1; a shell script must see 130, as for the commands that say more.
    A store whose closing fails after the interrupt (a dropped connection) does not add a traceback."""
    from dspy_trainkit.cli.state import CliState
    from dspy_trainkit.lifecycle import snapshots

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    def broken_close(self):
        raise RuntimeError("server closed the connection unexpectedly")

    run("add", "--json", '{"inputs": {"question": "q"}, "outputs": {"answer": "a"}}')
    monkeypatch.setattr(snapshots, "create", interrupted)
    monkeypatch.setattr(CliState, "close", broken_close)
    result = run("snapshot", "create", "s1")
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted: what was finished before is kept"
    assert "Aborted" not in result.output and "Traceback" not in result.output
