"""The guides' commands and Python snippets run, and print what the pages show (see tests/doccheck.py for how
blocks are marked and what may differ between runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from doccheck import PageRun, read_page, run_page

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHECKED_PAGES = ["quickstart.md", "importing.md", "dspy.md", "optimization.md", "effectiveness.md", "plugins.md"]


@pytest.mark.slow
@pytest.mark.parametrize("page", CHECKED_PAGES)
def test_page_examples_print_what_the_page_shows(page: str, tmp_path: Path) -> None:
    steps, problems = run_page(DOCS / page, tmp_path)
    assert steps >= 2, f"docs/{page} has only {steps} checked examples"
    assert problems == [], "\n".join(problems)


def test_a_wrong_output_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- check: run -->\n```console\n$ echo one\ntwo\n$ echo fine\nfine\n```\n", encoding="utf-8")
    steps, problems = run_page(page, tmp_path)
    assert steps == 1
    assert len(problems) == 1 and "`echo one` printed\none" in problems[0]


def test_ids_are_learned_and_reused(tmp_path: Path) -> None:
    run = PageRun(tmp_path, {})
    shown_id, other = "0" * 31 + "1", "0" * 31 + "2"
    printed_id = "a" * 32
    assert run.matches(f"added {shown_id} at 2026-11-24 19:33:55 UTC", f"added {printed_id} at 2027-01-01 00:00:00 UTC")
    assert run.translate(f"trainkit show {shown_id}") == f"trainkit show {printed_id}"
    assert not run.matches(f"again {shown_id}", f"again {'b' * 32}")  # the same shown id is the same real id
    assert run.matches(f"{other} {other}", f"{'c' * 32} {'c' * 32}")
    assert not run.matches(f"{shown_id} x", f"{printed_id} y")


def test_blocks_and_marks_are_read() -> None:
    items = read_page("text\n<!-- check: file a.py -->\n```python\nprint(1)\n```\n\n```console\n$ x\n```\n")
    assert [(getattr(i, "mark", None), getattr(i, "arg", None)) for i in items] == [("file", "a.py"), ("", "")]
