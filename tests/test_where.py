"""`--where` conditions: NaN and infinite bounds are refused with one clear message, on every backend and from
the CLI, instead of selecting nothing on SQLite and everything on PostgreSQL."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from helpers import qa

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.store import ExampleQuery


@pytest.mark.parametrize("condition", ["quality<nan", "quality>=NaN", "quality<inf", "created_at>-infinity"])
def test_non_finite_bounds_are_refused_on_every_store(store_url, condition):
    with tk.open(store_url) as kit:
        kit.add_many([qa("What is 2+2?", "4"), qa("What is 3+3?", "6")])
        with pytest.raises(tk.TrainkitError, match="needs a finite number"):
            kit.count(where=condition)
        with pytest.raises(tk.TrainkitError, match="needs a finite number"):
            ExampleQuery(where=[("quality", "<", float("nan"))])
        assert kit.count(where="quality<=1") == 2  # finite bounds work as before


def test_cli_refuses_nan_with_one_message(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--task", "qa", "--signature", "question -> answer"]).exit_code == 0
    assert runner.invoke(cli, ["add", "-i", "question=q?", "-o", "answer=a"]).exit_code == 0
    result = runner.invoke(cli, ["archive", "--where", "quality<nan"])
    assert result.exit_code == 1
    assert "--where 'quality<nan': quality needs a finite number" in result.output
    assert "Traceback" not in result.output


def test_min_quality_nan_is_refused_too(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--task", "qa", "--signature", "question -> answer"]).exit_code == 0
    result = runner.invoke(cli, ["list", "--min-quality", "nan"])
    assert result.exit_code == 1 and "--min-quality nan: needs a finite number" in result.output
    with pytest.raises(tk.TrainkitError, match="needs a finite number"):
        ExampleQuery(min_quality=float("nan"))
