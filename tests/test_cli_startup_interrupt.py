"""Ctrl-C during the command line's start-up: held until its imports are done, then status 130 and one line.

An interrupt inside orjson's module initialisation crashed `trainkit import` with a segmentation fault, and one in
the other imports of start-up printed a traceback, or click's "Aborted!" with status 1 (a stranger's findings).
The interrupt is sent from an import hook at the moment the named module starts to import, and the process
reports at exit whether that module was imported whole: held back, the import finishes first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="signal masks (POSIX)")

PROBE = """\
import atexit, os, signal, sys

target = os.environ["TK_INTERRUPT_AT"]

class InterruptAt:
    def find_spec(self, name, path=None, target_module=None):
        if name == target:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the module starts to import
        return None

atexit.register(lambda: print("imported whole:", target in sys.modules, file=sys.stderr))
sys.meta_path.insert(0, InterruptAt())
from dspy_trainkit.cli.entry import main
main()
"""


def interrupted_at(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}, "TK_INTERRUPT_AT": module}
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_ctrl_c_while_the_command_line_loads_ends_with_130_after_the_import(tmp_path):
    result = interrupted_at("dspy_trainkit.cli.main", ["stats"], tmp_path)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "Aborted!" not in result.stderr, result.stderr
    assert "interrupted: nothing was done" in result.stderr
    assert "imported whole: True" in result.stderr, result.stderr


def test_ctrl_c_while_a_commands_module_loads_ends_it_with_130_after_the_import(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"task": "qa", "inputs": {"q": "x"}, "outputs": {"a": "y"}}\n')
    result = interrupted_at("dspy_trainkit.cli.transfer", ["import", str(data)], tmp_path)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "Aborted!" not in result.stderr, result.stderr
    assert "interrupted" in result.stderr
    assert "imported whole: True" in result.stderr, result.stderr
    assert not (tmp_path / "trainkit.db").exists()  # ended before the command began


def test_ctrl_c_while_the_global_options_are_read_or_help_prints_is_130_not_aborted(monkeypatch):
    """`--help` and `--version` print while click reads the options, before any command: a Ctrl-C then was click's
    "Aborted!" with status 1 (a stranger's finding, 60 to 140 ms after start)."""
    from click.testing import CliRunner

    from dspy_trainkit.cli.main import cli

    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "get_help", interrupted)
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 130, result.output
    assert "Aborted!" not in result.output and "interrupted: nothing was done" in result.stderr
