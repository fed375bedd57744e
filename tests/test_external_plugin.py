"""A real third-party plugin, pip-installed and discovered through its entry point, driven through the real CLI.

The distribution in tests/sample_plugin is installed once per module with pip into a temporary folder (a copy of
its source is built, so the repository gets no build/ or egg-info folders), and every check runs `trainkit` in a
subprocess with that folder on PYTHONPATH: discovery, listing, intake, plugin commands, and the switches that
disable or allow-list plugins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dspy_trainkit
from dspy_trainkit.plugin_manager import ESSENTIAL_PLUGINS

pytestmark = pytest.mark.slow

SAMPLE_SOURCE = Path(__file__).parent / "sample_plugin"
#: Two ways to disable the sample plugin: (global options, environment).
DISABLE_SAMPLE = {
    "option": (("--disable-plugin", "sample"), None),
    "environment": ((), {"TRAINKIT_DISABLE_PLUGINS": "sample"}),
}


def trainkit_command() -> list[str]:
    if (Path(dspy_trainkit.__file__).parent / "__main__.py").exists():
        return [sys.executable, "-m", "dspy_trainkit"]
    script = Path(sys.executable).parent / ("trainkit.exe" if os.name == "nt" else "trainkit")
    if not script.exists():
        pytest.fail(f"no dspy_trainkit/__main__.py and no trainkit script beside {sys.executable}; "
                    "install the project (pip install -e .[test])")
    return [str(script)]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A folder holding the installed sample plugin, as `pip install --target` leaves it."""
    base = tmp_path_factory.mktemp("sample_plugin")
    source, site = base / "src", base / "site"
    shutil.copytree(SAMPLE_SOURCE, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "tests", "__pycache__", ".tox"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-input",
         "--disable-pip-version-check", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail("pip could not install tests/sample_plugin (the test environment needs setuptools>=64 and "
                    f"wheel for --no-build-isolation):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    assert (site / "trainkit_sample_plugin-0.3.0.dist-info").is_dir()
    return site


@pytest.fixture
def run(plugin_site, tmp_path):
    """Run `trainkit ARGS` in a fresh project folder with the plugin importable and no TRAINKIT_* settings."""
    command = trainkit_command()
    project = tmp_path / "project"
    project.mkdir()

    def run(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_site), os.environ.get("PYTHONPATH")]))
        environ.update(env or {})
        result = subprocess.run([*command, *args], cwd=project, env=environ, capture_output=True, text=True,
                                timeout=120)
        if check and result.returncode != 0:
            pytest.fail(f"trainkit {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    return run


def plugins_json(run, *args: str, env: dict[str, str] | None = None) -> dict[str, dict]:
    result = run(*args, "plugins", "--json", env=env)
    return {p["name"]: p for p in json.loads(result.stdout)}


def add_todo(run, *args: str, env: dict[str, str] | None = None) -> dict:
    run("init", "--task", "qa", "--signature", "question -> answer")
    result = run(*args, "add", "-i", "question=What is 2+2?", "-o", "answer=TODO later", "--json", env=env)
    return json.loads(result.stdout)


def test_plugins_lists_the_sample_plugin_beside_the_builtins(run):
    listed = plugins_json(run)
    assert listed["sample"] == {
        "name": "sample", "status": "loaded", "version": "0.3.0", "distribution": "trainkit-sample-plugin",
        "hooks": ["import_format", "on_data_changed", "register_commands", "score", "validate"],
        "builtin": False, "error": None,
    }
    for name in ("sqlstore", "basic_checks"):
        assert listed[name]["status"] == "loaded"
        assert listed[name]["builtin"] is True
        assert listed[name]["distribution"] == "dspy-trainkit"


def test_sample_plugin_takes_part_in_intake(run):
    result = add_todo(run)
    assert result["added"] is True
    example = result["example"]
    assert example["status"] == "candidate"  # the sample-todo warning sends it to review
    assert ("sample-todo", "warning", "sample") in [(f["code"], f["severity"], f["plugin"])
                                                     for f in example["findings"]]
    assert example["scores"]["sample_length"] == pytest.approx(len("TODO later") / 200)
    assert example["provenance"]["scorers"]["sample_length"] == {"plugin": "sample", "version": "0.3.0"}

    shown = json.loads(run("show", example["id"], "--json").stdout)
    assert [f["code"] for f in shown["findings"]] == ["sample-todo"]


def test_sample_plugin_command(run):
    run("init")
    assert run("sample-hello").stdout.splitlines() == ["hello from sample", "examples: 0"]
    run("add", "-t", "qa", "-i", "question=2+2?", "-o", "answer=4")
    assert run("sample-hello").stdout.splitlines() == ["hello from sample", "examples: 1"]
    assert "sample-hello" in run("--help").stdout


@pytest.mark.parametrize("how", sorted(DISABLE_SAMPLE))
def test_disabling_the_sample_plugin(run, how):
    args, env = DISABLE_SAMPLE[how]
    listed = plugins_json(run, *args, env=env)
    assert listed["sample"]["status"] == "disabled"
    assert listed["sample"]["hooks"] == []
    assert listed["sample"]["version"] == "0.3.0"
    assert listed["basic_checks"]["status"] == "loaded"

    example = add_todo(run, *args, env=env)["example"]
    assert example["findings"] == []
    assert "sample_length" not in example["scores"]
    assert example["status"] == "accepted"


@pytest.mark.parametrize("how", sorted(DISABLE_SAMPLE))
def test_a_disabled_plugin_adds_no_command(run, how):
    args, env = DISABLE_SAMPLE[how]
    run("init")
    result = run(*args, "sample-hello", env=env, check=False)
    assert result.returncode == 2, result.stdout
    assert "sample-hello" in result.stderr
    assert "sample-hello" not in run(*args, "--help", env=env).stdout


def test_global_options_apply_to_plugin_commands(run, tmp_path):
    other = tmp_path / "other.db"
    run("init")
    run("add", "-t", "qa", "-i", "question=2+2?", "-o", "answer=4")
    run("--db", f"sqlite:///{other}", "init", "--dir", str(tmp_path / "other"))
    assert run("--db", f"sqlite:///{other}", "stats", "--json").stdout.count('"total": 0') == 1
    assert run("--db", f"sqlite:///{other}", "sample-hello").stdout.splitlines() == [
        "hello from sample", "examples: 0"]


def test_disabling_an_unknown_plugin_is_one_clear_error(run):
    result = run("plugins", "--json", env={"TRAINKIT_DISABLE_PLUGINS": "nosuch"}, check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "nosuch" in lines[0]
    assert "Traceback" not in result.stderr


def test_load_allow_list(run):
    listed = plugins_json(run, env={"TRAINKIT_LOAD_PLUGINS": "sample"})
    assert {n for n, p in listed.items() if p["status"] == "loaded"} == {"sample", "sqlstore"} | ESSENTIAL_PLUGINS
    assert listed["basic_checks"]["status"] == "disabled"

    listed = plugins_json(run, env={"TRAINKIT_LOAD_PLUGINS": ""})
    assert {n for n, p in listed.items() if p["status"] == "loaded"} == {"sqlstore"} | ESSENTIAL_PLUGINS
    assert listed["sample"]["status"] == "disabled"
    assert listed["basic_checks"]["status"] == "disabled"


def test_sample_plugin_adds_a_tsv_import_format(run, tmp_path):
    run("init", "--task", "qa", "--signature", "question -> answer")
    (tmp_path / "project" / "data.tsv").write_text(
        "question\tanswer\nWhat is 2+2?\t4\ntoo\tmany\tcells\nCapital?\tParis\n")

    result = run("import", "data.tsv", "--json", check=False)
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["read"], summary["imported"], summary["rejected"]) == (3, 2, 1)
    (problem,) = summary["files"]["data.tsv"]["problems"]
    assert problem == {"position": "data.tsv:line 3", "message": "3 cells but the header has 2 columns"}
    listed = json.loads(run("list", "--json").stdout)
    assert sorted((ex["inputs"]["question"], ex["outputs"]["answer"], ex["provenance"]["format"]) for ex in listed) \
        == [("Capital?", "Paris", "tsv"), ("What is 2+2?", "4", "tsv")]

    # the format is the plugin's: named in the known formats, and gone when the plugin is disabled
    unknown = run("import", "data.tsv", "--format", "nosuch", check=False)
    assert unknown.returncode == 1 and "tsv (.tsv)" in unknown.stderr
    disabled = run("--disable-plugin", "sample", "import", "data.tsv", check=False)
    assert disabled.returncode == 1
    assert "data.tsv: cannot tell the format" in disabled.stderr and "tsv" not in disabled.stderr.split("known")[1]
