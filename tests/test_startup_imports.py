"""The CLI's quick commands must not import DSPy, litellm or a PostgreSQL driver (seconds of start-up each).

Each command runs in a fresh interpreter that writes the heavy modules it ended up with from an exit hook, so
the check covers everything imported on the way: the CLI, plugin loading, settings and opening the store.
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

# Runs the CLI as the console script does and, at exit (click ends with SystemExit), writes the top-level
# packages of FORBIDDEN found in sys.modules to the file named by TK_REPORT.
PROBE = """\
import atexit, os, sys

def _report():
    found = sorted({name.split(".")[0] for name in sys.modules} & set(os.environ["TK_FORBIDDEN"].split(",")))
    with open(os.environ["TK_REPORT"], "w") as handle:
        handle.write(",".join(found))

atexit.register(_report)
from dspy_trainkit.cli.main import main
main()
"""


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env={**env, **probe_env(cwd)},
                          capture_output=True, text=True)


def probe_env(cwd: Path) -> dict[str, str]:
    return {"TK_REPORT": str(cwd / "imported.txt"), "TK_FORBIDDEN": ",".join(FORBIDDEN)}


def imported_by(args: list[str], cwd: Path) -> set[str]:
    report = cwd / "imported.txt"
    report.unlink(missing_ok=True)
    result = run_cli(args, cwd)
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
