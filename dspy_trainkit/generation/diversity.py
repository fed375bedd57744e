"""Diversity of a batch of generated examples: distinct n-gram ratios and coverage of the task's cells.

Why: a generator can pass every validator and still teach one thing a hundred times (the same phrasing, the same
two topics). These numbers make that visible per synthesis run, cheaply and without an LM:

* `distinct_1` / `distinct_2`: distinct word unigrams (bigrams) over all unigrams (bigrams) of the batch's texts
  (Li et al., 2016, "A Diversity-Promoting Objective Function for Neural Conversation Models"). 1.0 means no
  word (pair) repeats; values near 0 mean the batch repeats itself. Texts are the string values of inputs and
  outputs, lowercased and cut into words by `text.words`, as the near-duplicate check does.
* coverage: how many of the task's (domain, topic, difficulty) cells the batch has at least one example in,
  and how many examples each cell got (`min_per_cell`/`max_per_cell` show how even the spread is).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .text import words

Cell = tuple[str | None, str | None, str | None]


@attrs.define
class DiversityCounter:
    """Accumulates one batch's n-grams and cells as examples are made (nothing is kept per example)."""

    cells: Sequence[Cell] = ()
    total: list[int] = attrs.field(factory=lambda: [0, 0])
    distinct: list[set[Any]] = attrs.field(factory=lambda: [set(), set()])
    per_cell: Counter[Cell] = attrs.field(factory=Counter)
    examples: int = 0

    def add(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any], cell: Cell) -> None:
        self.examples += 1
        self.per_cell[cell] += 1
        for part in (inputs, outputs):
            for value in part.values():
                tokens = words(value)
                self.total[0] += len(tokens)
                self.distinct[0].update(tokens)
                bigrams = list(zip(tokens, tokens[1:], strict=False))
                self.total[1] += len(bigrams)
                self.distinct[1].update(bigrams)

    def metrics(self) -> dict[str, Any]:
        """`distinct_1`, `distinct_2`, `examples`, and coverage of the known cells (None when none are known)."""
        result: dict[str, Any] = {
            "examples": self.examples,
            "distinct_1": _ratio(len(self.distinct[0]), self.total[0]),
            "distinct_2": _ratio(len(self.distinct[1]), self.total[1]),
        }
        result.update(coverage(self.per_cell, self.cells))
        return result


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def coverage(per_cell: Mapping[Cell, int], cells: Iterable[Cell]) -> dict[str, Any]:
    """Which of `cells` hold examples: counts, the share covered, and the emptiest and fullest cell."""
    cells = list(cells)
    known = set(cells)
    counts = [per_cell.get(cell, 0) for cell in cells]
    covered = sum(1 for n in counts if n)
    return {
        "cells_total": len(cells),
        "cells_covered": covered,
        "coverage": round(covered / len(cells), 4) if cells else None,
        "min_per_cell": min(counts) if counts else None,
        "max_per_cell": max(counts) if counts else None,
        "outside_cells": sum(n for cell, n in per_cell.items() if cell not in known),
        "by_cell": [{"domain": c[0], "topic": c[1], "difficulty": c[2], "count": per_cell.get(c, 0)}
                    for c in cells],
    }


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Distinct n-grams over all n-grams of `texts` (words as `words` cuts them); None for no n-grams."""
    total, seen = 0, set()
    for text in texts:
        tokens = words(text)
        grams = list(zip(*(tokens[i:] for i in range(n)), strict=False))
        total += len(grams)
        seen.update(grams)
    return _ratio(len(seen), total)
