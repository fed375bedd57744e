"""The end of the `trainkit` process's start-up (dspy_trainkit/cli/startup.py): the console script freezes what
start-up built once the store is open and leaves the collector's settings as they were; the click group called
in-process (a program, CliRunner) leaves the caller's collector alone.

No timing is asserted; benchmarks/cli_startup.py measures the start-up time.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dspy_trainkit.cli.main import cli

# `trainkit ARGS` as the console script runs it, printing at exit the collector's state and whether it was on.
PROBE = """\
import atexit, gc, sys
before = gc.get_threshold()
atexit.register(lambda: print("gc", gc.get_freeze_count() > 0, gc.get_threshold() == before, gc.isenabled()))
from dspy_trainkit.cli.main import main
main()
"""


def run_main(args: list[str], cwd: Path) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_command_freezes_its_start_up_once_the_store_is_open(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["init", "--task", "qa", "--signature", "question -> answer"]).exit_code == 0
    assert run_main(["stats"], tmp_path) == "gc True True True", "start-up frozen; threshold and collector as usual"


def test_a_command_without_a_store_freezes_nothing(tmp_path: Path) -> None:
    assert run_main(["--help"], tmp_path) == "gc False True True"


def test_the_group_called_in_process_leaves_the_collector_alone(tmp_path: Path) -> None:
    frozen, threshold = gc.get_freeze_count(), gc.get_threshold()
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--task", "qa", "--signature", "question -> answer"]).exit_code == 0
    result = runner.invoke(cli, ["stats"])
    assert result.exit_code == 0 and "examples: 0" in result.output
    assert (gc.get_freeze_count(), gc.get_threshold()) == (frozen, threshold)
