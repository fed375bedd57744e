"""The review queue ordered by what a decision is worth (dspy_trainkit.effectiveness.queue): `doubt` puts the
labels the program most doubts first, `need` the examples of the cells that need examples most."""

from __future__ import annotations

import re

from click.testing import CliRunner
from helpers import QUALITY_PLUGINS
from optimize_support import TASK, cell_records, import_generated, make_project, open_project
from test_effectiveness import TOML, records

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.effectiveness.signals import ExampleValue, ValueSignal


def _signals(example_id: str, *signals: tuple[str, float, dict]) -> ExampleValue:
    return ExampleValue.combine("sums", example_id, [ValueSignal(example_id=example_id, signal=name, value=value,
                                                                 stderr=2.0, observations=3, detail=detail)
                                                     for name, value, detail in signals], 0.0)


def test_doubt_puts_the_labels_the_program_doubts_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trainkit.toml").write_text(TOML, encoding="utf-8")
    with tk.open(disable=QUALITY_PLUGINS) as kit:
        ids = kit.add_many(records(6, set())).ids
        kit.set_status("candidate", ids=ids[:5], reason="sent back")
        plain, valued, doubted, suspect, agreed = ids[:5]
        kit.store.save_values("sums", [
            _signals(valued, ("demo_value", -5.0, {})),
            _signals(doubted, ("label_agreement", -30.0, {"suspect": False})),
            _signals(suspect, ("label_agreement", -20.0, {"suspect": True}), ("demo_value", 3.0, {})),
            _signals(agreed, ("label_agreement", 15.0, {"suspect": False})),
            _signals(ids[5], ("demo_value", -50.0, {})),  # accepted: not in the queue
        ])
        queue = kit.review_queue("sums", order="doubt")
        assert [e.example_id for e in queue] == [suspect, doubted, agreed, valued, plain]
        assert queue[0].reason.startswith("suspect label: ") and "-20.0 points" in queue[0].reason
        assert queue[-1].reason == "no stored evidence about this example"
        assert [e.example_id for e in kit.review_queue("sums", order="doubt", ids=[plain, valued])] == [valued, plain]
        runner = CliRunner()
        shown = runner.invoke(cli, ["review", "--task", "sums", "--order", "doubt"], input="s\n" * 5)
        assert shown.exit_code == 0, shown.output
        order = re.findall(r"^\(\d/5\) (\w+) ", shown.stdout, flags=re.M)
        assert order == [suspect, doubted, agreed, valued, plain]
        assert "  why now: suspect label: the program's agreement" in shown.stdout
        assert "reviewed: accepted 0, rejected 0, edited 0, skipped 5" in shown.stdout
        plain_order = runner.invoke(cli, ["review", "--task", "sums"], input="s\n" * 5)
        assert re.findall(r"^\(\d/5\) (\w+) ", plain_order.stdout, flags=re.M) == ids[:5]
        assert "why now" not in plain_order.stdout
        bad = runner.invoke(cli, ["review", "--order", "doubt"])
        assert bad.exit_code == 2 and "--order doubt ranks by a task's evidence: add --task T" in bad.output


def test_need_puts_the_cells_short_of_examples_first(tmp_path, monkeypatch):
    config = make_project(tmp_path / "p", extra="[tasks.problems.optimize]\nmin_per_cell = 2\n")
    monkeypatch.chdir(tmp_path / "p")
    with open_project(config) as kit:
        cells = kit.settings.task(TASK).cells()
        full = cells[0]
        short_one, short_two = [c for c in cells if c[0] == "physics"][:2]
        import_generated(kit, tmp_path, cell_records({full: 4, short_one: 2, short_two: 2}))
        by_cell: dict[tuple, list[str]] = {}
        for example in kit.examples(task=TASK):
            by_cell.setdefault((example.domain, example.topic, example.difficulty), []).append(example.id)
        # accepted after this: full 3 (none missing), short_one 1 (one missing), short_two 0 (two missing)
        waiting = [by_cell[full][-1], by_cell[short_one][-1], *by_cell[short_two]]
        kit.set_status("candidate", ids=waiting, reason="to review")
        queue = kit.review_queue(TASK, order="need")
        assert [e.example_id for e in queue] == [*by_cell[short_two], by_cell[short_one][-1], by_cell[full][-1]]
        assert queue[0].reason == f"cell {'/'.join(short_two)}: 2 short of min_per_cell"
        assert queue[2].reason.endswith("1 short of min_per_cell")
        assert queue[3].reason.endswith("no shortage and no weakness known")
