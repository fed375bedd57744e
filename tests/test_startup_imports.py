"""The CLI's quick commands must not import what they do not use: DSPy, litellm or a PostgreSQL driver (seconds
of start-up each), and, for `trainkit --help` once its tables are warm, not even the settings parser, pluggy,
peewee or a plugin; `stats` not the intake pipeline, curation, the file formats or importlib.metadata.

Each command runs in a fresh interpreter that writes the modules it ended up with from an exit hook, so the check
covers everything imported on the way: the CLI, plugin loading, settings and opening the store.
No timing is asserted here; benchmarks/cli_startup.py measures the start-up time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FORBIDDEN = ("dspy", "litellm", "psycopg2")
#: Not imported by a warm `trainkit --help`: it lists built-in commands from BUILTIN_SUMMARIES and plugin commands
#: from the help index (cli/help_index.py).
NOT_FOR_HELP = ("peewee", "psycopg2", "dspy", "litellm", "pluggy", "attrs", "tomllib", "importlib.metadata",
                "dspy_trainkit.settings", "dspy_trainkit.plugin_manager", "dspy_trainkit.models",
                "dspy_trainkit.cli.examples", "dspy_trainkit.cli.transfer", "dspy_trainkit.cli.optimization",
                "dspy_trainkit_web", "dspy_trainkit_sqlstore")
#: Not imported by a warm `trainkit stats` on SQLite: what intake, curation, imports and exports need, the
#: entry-point discovery (the entry-point list stands in for it), the PostgreSQL driver (peewee would import it;
#: plugins/dspy_trainkit_sqlstore/driver.py) and importlib.abc (it imports importlib.resources, tempfile, shutil).
NOT_FOR_STATS = ("dspy", "litellm", "importlib.metadata", "psycopg2", "ssl", "importlib.abc", "importlib.resources",
                 "dspy_trainkit.intake", "dspy_trainkit.curation",
                 "dspy_trainkit.collection", "dspy_trainkit.conversion", "dspy_trainkit.files.importing",
                 "dspy_trainkit.files.exporting", "dspy_trainkit.store.where", "dspy_trainkit.cli.transfer",
                 "dspy_trainkit.effectiveness.alerts", "dspy_trainkit.generation.plan", "dspy_trainkit_web",
                 "dspy_trainkit_neardup", "dspy_trainkit_pii", "dspy_trainkit_coherence")

# Runs the CLI as the console script does and, at exit (click ends with SystemExit), writes the modules of
# TK_FORBIDDEN found in sys.modules to the file named by TK_REPORT.
PROBE = """\
import atexit, os, sys

def _report():
    found = sorted(name for name in os.environ["TK_FORBIDDEN"].split(",") if name in sys.modules)
    with open(os.environ["TK_REPORT"], "w") as handle:
        handle.write(",".join(found))

atexit.register(_report)
from dspy_trainkit.cli.entry import main
main()
"""


def run_cli(args: list[str], cwd: Path, forbidden: tuple[str, ...] = FORBIDDEN,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd,
                          env={**base, **probe_env(cwd, forbidden), **(env or {})}, capture_output=True, text=True)


def probe_env(cwd: Path, forbidden: tuple[str, ...] = FORBIDDEN) -> dict[str, str]:
    """The probe's settings, and a cache folder of this project's own (the hook table, the entry-point list and
    the help index), so that no other run's tables are read."""
    return {"TK_REPORT": str(cwd / "imported.txt"), "TK_FORBIDDEN": ",".join(forbidden),
            "TRAINKIT_CACHE_DIR": str(cwd / "cache")}


def imported_by(args: list[str], cwd: Path, forbidden: tuple[str, ...] = FORBIDDEN,
                env: dict[str, str] | None = None) -> set[str]:
    report = cwd / "imported.txt"
    report.unlink(missing_ok=True)
    result = run_cli(args, cwd, forbidden, env)
    assert result.returncode == 0, f"trainkit {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    text = report.read_text()
    return set(text.split(",")) if text else set()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with trainkit.toml and a SQLite store holding one example."""
    folder = tmp_path_factory.mktemp("startup")
    for args in (["init", "--task", "qa", "--signature", "question -> answer"],
                 ["add", "-i", "question=What is 2+2?", "-o", "answer=4", "--domain", "arithmetic"]):
        result = run_cli(args, folder)
        assert result.returncode == 0, f"trainkit {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return folder


def test_help_imports_no_heavy_module(project: Path) -> None:
    assert imported_by(["--help"], project) == set()


def test_stats_imports_neither_dspy_nor_litellm(project: Path) -> None:
    assert imported_by(["stats"], project) & {"dspy", "litellm"} == set()


def test_probe_runs_the_command(project: Path) -> None:
    """The probe really ran the commands (so the checks above are not vacuous)."""
    result = run_cli(["stats"], project)
    assert result.returncode == 0, result.stderr
    assert "examples: 1" in result.stdout
    assert (project / "imported.txt").exists()


def test_warm_help_imports_neither_settings_nor_plugins_nor_peewee(project: Path) -> None:
    run_cli(["--help"], project)  # writes the tables a warm start reads
    assert imported_by(["--help"], project, NOT_FOR_HELP) == set()
    result = run_cli(["--help"], project, NOT_FOR_HELP)
    assert "serve " in result.stdout, "the web plugin's command is listed from the help index"
    assert "stats " in result.stdout and "Counts by task, status, source" in result.stdout


def test_the_help_probe_sees_what_a_cold_help_imports(tmp_path: Path, project: Path) -> None:
    """The check above could fail: without the tables (a fresh cache folder) help builds the plugin manager."""
    found = imported_by(["--help"], project, NOT_FOR_HELP, env={"TRAINKIT_CACHE_DIR": str(tmp_path / "cold")})
    assert {"pluggy", "dspy_trainkit.settings", "dspy_trainkit.plugin_manager", "dspy_trainkit_web"} <= found


def test_warm_stats_imports_nothing_it_does_not_use(project: Path) -> None:
    run_cli(["stats"], project)
    assert imported_by(["stats"], project, NOT_FOR_STATS) == set()
    assert {"dspy_trainkit.kit", "dspy_trainkit_sqlstore"} <= imported_by(
        ["stats"], project, ("dspy_trainkit.kit", "dspy_trainkit_sqlstore")), "the probe sees the store open"


@pytest.mark.parametrize("how", ["option", "environment", "settings file"])
def test_the_help_index_follows_the_plugin_selection(project: Path, how: str) -> None:
    """A remembered command list is not used once the plugins it came from are disabled, and comes back after."""
    config = project / "trainkit.toml"
    original = config.read_text()
    run_cli(["--help"], project)
    assert "serve " in run_cli(["--help"], project).stdout
    args, env = ["--help"], None
    if how == "option":
        args = ["--disable-plugin", "web", "--help"]
    elif how == "environment":
        env = {"TRAINKIT_DISABLE_PLUGINS": "web"}
    else:
        assert "\ndisable = []\n" in original  # as `trainkit init` writes it
        config.write_text(original.replace("\ndisable = []\n", '\ndisable = ["web"]\n', 1))
        assert run_cli(["stats"], project).returncode == 0, "the changed settings file is valid"
    try:
        for _ in range(2):  # the second run may read the index the first one wrote
            result = run_cli(args, project, env=env)
            assert result.returncode == 0, result.stderr
            assert "serve " not in result.stdout
    finally:
        config.write_text(original)
    assert "serve " in run_cli(["--help"], project).stdout


def test_builtin_summaries_give_the_commands_own_help_lines() -> None:
    """`--help` lists built-in commands from BUILTIN_SUMMARIES: each gives the line the command itself gives."""
    import importlib

    import click

    from dspy_trainkit.cli.main import BUILTIN_COMMANDS, BUILTIN_SUMMARIES

    assert set(BUILTIN_SUMMARIES) == set(BUILTIN_COMMANDS)
    for name, (module, attr) in BUILTIN_COMMANDS.items():
        command = getattr(importlib.import_module(module), attr)
        stub = click.Command(name, help=BUILTIN_SUMMARIES[name])
        assert not command.hidden
        for limit in (20, 45, 66, 72, 200):
            assert stub.get_short_help_str(limit) == command.get_short_help_str(limit), (name, limit)
